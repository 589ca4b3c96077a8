"""The plan pipeline, once: read the live app a manifest describes, plan, and re-check a saved plan.

Contract:
- `read_app(client, desired) -> State | None` reads the live app `desired` names (its user, else
  the client's), asking only for the manifest's models' versions and for as many concept pages as
  the manifest's concept count needs at once (`live.read_live`); None when the app does not exist.
- `plan_app(client, desired, *, targets=()) -> Plan` reads the live app and plans with
  `plan.make_plan`, recording the live app's fingerprint and the client's endpoint, as every plan
  shown, saved, applied or checked for drift is made.
- `apply_saved_plan(stored, connect, *, source, user_id=None) -> (client, plan)` prepares applying
  a plan loaded from a file (`source` names it in messages): refused (`PlanError`, one line) when
  `user_id` (an explicit --user) is not the plan's user, when the client `connect(user_id,
  sandbox_db)` gives writes to another endpoint or as another user, when the live app changed since
  (the endpoint-bound fingerprints differ), or when planning again no longer gives the same actions.
  Otherwise it returns the client and the plan made again now, for `apply.apply_plan` to execute.
No output here and no exit codes: callers present the plan and map errors (`cli.main`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from reconciler.core.errors import PlanError

if TYPE_CHECKING:
    from reconciler.api.client import Client
    from reconciler.core.state import State
    from reconciler.planning.actions import Plan


def read_app(client: Client, desired: State) -> State | None:
    """The live app `desired` describes, or None when it does not exist."""
    from reconciler.api.live import read_live

    return read_live(
        client,
        desired.app.id,
        user_id=desired.user_id,
        want_models={m.id for m in desired.models},
        expect_concepts=len(desired.concepts),
    )


def plan_app(client: Client, desired: State, *, targets: Sequence[str] = ()) -> Plan:
    """The plan that turns the live app into `desired`, with the live fingerprint and endpoint."""
    from reconciler.api.live import fingerprint
    from reconciler.planning.plan import make_plan

    live = read_app(client, desired)
    return make_plan(desired, live, live_fingerprint=fingerprint(live) if live else "", targets=targets, endpoint=client.endpoint)


def apply_saved_plan(
    stored: Plan, connect: Callable[[str | None, str | None], Client], *, source: str, user_id: str | None = None
) -> tuple[Client, Plan]:
    """The client and the re-checked plan for applying `stored` (see the module docstring).
    `connect(user_id, sandbox_db)` makes the client: `sandbox_db` is the embedded sandbox file the
    plan was made on, when it was made on one."""
    from reconciler.api.endpoint import sandbox_of_endpoint
    from reconciler.api.live import fingerprint
    from reconciler.planning.plan import make_plan
    from reconciler.planning.planfile import same_plan
    from reconciler.planning.serialize import bound_fingerprint

    if user_id and user_id != stored.user_id:
        raise PlanError(f"the plan in {source} was made for user {stored.user_id or 'me'}, not {user_id}; make a new plan")
    client = connect(stored.user_id, sandbox_of_endpoint(stored.endpoint))
    if client.endpoint != stored.endpoint:
        raise PlanError(
            f"the plan in {source} was made against {stored.endpoint}, but this apply would "
            f"write to {client.endpoint}; apply it where it was made, or make a new plan"
        )
    if client.user_id != stored.user_id:
        raise PlanError(
            f"the plan in {source} was made for user {stored.user_id or 'me'}, but this apply "
            f"would write as user {client.user_id or 'me'}; make a new plan"
        )
    live = read_app(client, stored.desired)
    now = fingerprint(live) if live else ""
    if bound_fingerprint(client.endpoint, stored.user_id, stored.app_id, now) != bound_fingerprint(
        stored.endpoint, stored.user_id, stored.app_id, stored.live_fingerprint
    ):
        raise PlanError(f"the live app {stored.app_id} changed since the plan in {source} was made; make a new plan")
    plan = make_plan(stored.desired, live, live_fingerprint=now, targets=stored.targets, endpoint=client.endpoint)
    if not same_plan(plan, stored):
        raise PlanError(
            f"the plan in {source} no longer matches what applying it would do "
            "(was it made by another version of reconciler?); make a new plan"
        )
    return client, plan
