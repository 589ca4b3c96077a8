"""Apply one app under its lease: the order of plan, confirmation, lease, re-check and writes.

Contract: `apply_app(client, desired, ...) -> ApplyOutcome`, the one way `reconciler apply` (and
the project runner) changes an app. Three ways in:

- **auto** (`--auto-approve`; no `reviewed`, no `confirm`): plan (a read before any write: a
  server whose answers cannot be read gets none; nothing to do: no lease either), check
  `max_deletes`, take the lease, plan again under it (the app may have changed while the lease
  was held by another apply), show that plan (`show`), check `max_deletes`, apply, release.
- **interactive** (`confirm` given): plan and `show` without the lease, so a prompt blocks
  nobody; check `max_deletes`; ask; then take the lease and plan again: the app must be as it was
  shown (`pipeline.check_reviewed`), else nothing is written.
- **reviewed** (a saved plan, `reviewed` given; the client comes from
  `pipeline.saved_plan_client`): GetApp, take the lease, plan again, and refuse unless the live
  app is the one the plan was made from and the actions are the same; `show` it, check
  `max_deletes`; apply.

The lease (`apply/lease.py`) is a dataset of the app, so an app that does not exist yet is created
first, outside the lease (PostApps of the manifest's app; an app someone else created meanwhile is
left as it is: the plan made under the lease then shows it, and a reviewed plan is refused). The
lease is released in a `finally`: on success, on failure and on Ctrl-C / SIGTERM (the command turns
SIGTERM into KeyboardInterrupt). While the plan is applied the applier checks the lease before each
write (`Lease.check`); a lost lease stops it like any failure. `no_lock` skips the lease (Terraform's
`-lock=false`). `max_deletes`: a plan deleting more resources is refused before any write
(`check_max_deletes`). Nothing here prints; `show` and `progress` do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reconciler.api.client import Client
from reconciler.api.codecs import AppCodec
from reconciler.api.live import app_exists
from reconciler.api.transport import api_path
from reconciler.apply import scheduler
from reconciler.apply.base import ApplyResult, Progress, _is_duplicate
from reconciler.apply.events import Emit
from reconciler.apply.lease import AppMissing, Lease, LeaseOptions
from reconciler.core.errors import ApiError, PlanError
from reconciler.core.state import State
from reconciler.planning.actions import Op, Plan
from reconciler.planning.pipeline import check_reviewed, creates_app, plan_app

__all__ = ["ApplyOutcome", "apply_app", "check_max_deletes"]


@dataclass
class ApplyOutcome:
    """What `apply_app` did: the plan it applied (or showed), the result (None when nothing was
    applied: an empty plan, or a cancelled confirmation)."""

    plan: Plan
    result: ApplyResult | None = None
    cancelled: bool = False


def check_max_deletes(plan: Plan, max_deletes: int | None) -> None:
    """Refuse a plan that deletes more than `max_deletes` resources (None: no limit)."""
    if max_deletes is None:
        return
    deletes = [a.address for a in plan.actions if a.op is Op.DELETE]
    if len(deletes) > max_deletes:
        shown = ", ".join(deletes[:5]) + (f", … and {len(deletes) - 5} more" if len(deletes) > 5 else "")
        raise PlanError(
            f"the plan deletes {len(deletes)} resources ({shown}), more than --max-deletes {max_deletes}; nothing was changed"
        )


def apply_app(
    client: Client,
    desired: State,
    *,
    reviewed: Plan | None = None,
    source: str = "",
    targets: Sequence[str] = (),
    confirm: Callable[[Plan], bool] | None = None,
    show: Callable[[Plan], None] | None = None,
    lease_options: LeaseOptions | None = None,
    no_lock: bool = False,
    unlock_hint: str = "reconciler unlock MANIFEST",
    max_deletes: int | None = None,
    progress: Progress | None = None,
    train_timeout_s: float = 600.0,
    poll_s: float = 0.5,
    events: Emit | None = None,
) -> ApplyOutcome:
    """Plan and apply `desired` (or the `reviewed` plan) under the app lease; see the module
    docstring. `targets`: `--target`s (a reviewed plan carries its own)."""
    say = progress or (lambda _line: None)
    shown = show or (lambda _plan: None)
    saved = reviewed is not None
    if reviewed is not None:
        desired, targets = reviewed.desired, reviewed.targets
        if not creates_app(reviewed) and not app_exists(client, desired.app.id, user_id=desired.user_id):
            raise PlanError(
                f"the live app {desired.app.id} changed since the plan in {source} was made (it was deleted); "
                "nothing was changed; make a new plan"
            )
        first = reviewed
    else:
        # Read (and plan) before anything is written: a server whose answers cannot be read gets
        # no write, and a plan with nothing to do takes no lease.
        first = plan_app(client, desired, targets=targets)
        if confirm is not None or first.empty:
            shown(first)
        if first.empty:
            return ApplyOutcome(first)
        check_max_deletes(first, max_deletes)
        if confirm is not None:
            if not confirm(first):
                return ApplyOutcome(first, cancelled=True)
            reviewed = first
    created = creates_app(first) and _create_app(client, desired, say)  # the lease lives in the app
    lease = (
        None
        if no_lock
        else Lease(
            client,
            desired.app.id,
            desired.user_id,
            options=lease_options,
            progress=say,
            unlock_hint=unlock_hint,
            events=events,
        )
    )
    try:
        if lease is not None:
            try:
                lease.acquire()
            except AppMissing:  # deleted since it was read
                raise PlanError(f"app {desired.app.id} was deleted while this apply started; nothing was changed") from None
        fresh = plan_app(client, desired, targets=targets)
        if reviewed is not None:
            check_reviewed(reviewed, fresh, saved=saved, source=source, app_created=created)
        if reviewed is None or saved:  # what is applied (a saved plan: as it was reviewed)
            shown(fresh)
        if fresh.empty:
            return ApplyOutcome(fresh)
        check_max_deletes(fresh, max_deletes)
        result = scheduler.apply_plan(
            client,
            fresh,
            progress=say,
            train_timeout_s=train_timeout_s,
            poll_s=poll_s,
            lease_check=lease.check if lease is not None else None,
            events=events,
        )
        return ApplyOutcome(fresh, result)
    finally:
        if lease is not None:
            lease.release()


def _create_app(client: Client, desired: State, say: Progress) -> bool:
    """Create the app (the lease lives in it), as the plan's `create app` would; an app that exists
    by now (someone else's, or an earlier run's) is left as it is for the plan to compare."""
    user = desired.user_id or client.user_id or "me"
    try:
        client.post(api_path("v2", "users", user, "apps"), {"apps": [AppCodec.to_api(desired.app)]})
    except ApiError as err:
        if not _is_duplicate(err):
            raise
        return False
    say(f"created app {desired.app.id} (first: the app lease lives in the app)")
    return True
