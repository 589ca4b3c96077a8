"""Saved plan files (`plan --out`, `apply PLAN`, `show PLAN`): telling one from a manifest and reading
it. The JSON layout is `serialize.py`'s; this module only meets the file system.

Contract:
- `read_plan_file(path) -> dict | None`: the saved plan's JSON, or None when `path` is not a saved
  plan (then the caller reads it as a manifest). A file is a saved plan when it starts with ``{``
  and names our kind (``"reconciler-plan"``) near its start, or parses as JSON with that kind; one
  that looks like a plan but cannot be read as one (truncated, too deep, not JSON) is a
  `ReconcilerError`, not a manifest to parse as YAML.
- `load_saved_plan(path, data) -> Plan`: the Plan in that JSON, derived again from the file's
  verified content, or `PlanError` naming `path`. A saved plan is data anyone can edit, and only
  part of it is what `apply` acts on: apply re-plans from the stored desired state against the
  live app it reads, once the live fingerprint matches. So what `show` prints (and apply takes as
  the reviewed plan) is not the file's actions, configuration words and notes as written, but
  the plan made again from the stored desired and live states, after checking that the stored
  live state has the stored live fingerprint; a file whose actions, words or notes differ from
  that re-made plan (edited after it was saved) is refused in one line. A live state edited
  together with its fingerprint is caught by apply, whose live read then no longer matches.
- `check_plan_target(path)`: `plan --out PATH` may replace only a saved plan (or an empty file);
  anything else that is there (the manifest itself, any other file) is a `ReconcilerError`, checked
  before planning. A file looks like a saved plan when it starts with ``{`` and names our kind near
  its start (a truncated or corrupt plan still counts: it is ours to replace).
Writing one is `reconciler plan --out` (`commands/plan.py`), through the CLI's one output writer.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from reconciler.core.errors import ReconcilerError

if TYPE_CHECKING:
    from reconciler.planning.actions import Plan

#: A saved plan larger than this is not read as one (the manifest reader then words the refusal).
MAX_PLAN_BYTES = 256 * 1024 * 1024

#: How far into a file to look for the saved-plan marker (it is the second key we write).
_PLAN_MARKER_WINDOW = 4096


def read_plan_file(path: str) -> dict[str, Any] | None:
    """A saved plan's JSON, or None when `path` is not a saved plan (see the module docstring)."""
    from reconciler.core.fileio import read_regular
    from reconciler.planning.serialize import PLAN_FILE_KIND

    try:
        # a FIFO or device is refused (then as a manifest, with one line), not waited on
        raw = read_regular(path, MAX_PLAN_BYTES + 1)
    except OSError:
        return None  # the manifest loader reports unreadable files, with the same wording as always
    if not raw.lstrip().startswith(b"{") or len(raw) > MAX_PLAN_BYTES:
        return None
    looks_like_plan = f'"{PLAN_FILE_KIND}"'.encode() in raw[:_PLAN_MARKER_WINDOW]
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as err:
        if not looks_like_plan:
            return None
        why = "nested too deeply" if isinstance(err, RecursionError) else f"not valid JSON (truncated?): {err}".splitlines()[0]
        raise ReconcilerError(f"{path} is not a usable saved plan: {why}") from None
    if isinstance(data, dict) and data.get("kind") == PLAN_FILE_KIND:
        return data
    if looks_like_plan:
        raise ReconcilerError(f'{path} is not a usable saved plan: no "kind": "{PLAN_FILE_KIND}" at the top')
    return None


def load_saved_plan(path: str, data: dict[str, Any]) -> Plan:
    """The Plan in a saved plan's JSON; `PlanError` (naming `path`) when it is not a usable one."""
    from reconciler.core.errors import PlanError
    from reconciler.planning.serialize import plan_from_file_dict

    try:
        return derived_again(plan_from_file_dict(data))
    except (PlanError, RecursionError) as err:
        why = str(err) if isinstance(err, PlanError) else "nested too deeply"
        raise PlanError(f"{path} is not a usable saved plan: {why}") from None


def check_plan_target(path: str) -> None:
    """Refuse to let `plan --out` replace a file that is not a saved plan (see the module docstring)."""
    import os

    from reconciler.core.fileio import read_regular
    from reconciler.planning.serialize import PLAN_FILE_KIND

    if not os.path.lexists(path) or os.path.islink(path):
        return  # a new file, or a symlink the writer replaces (never written through)
    try:
        head = read_regular(path, _PLAN_MARKER_WINDOW)
    except OSError:
        return  # a directory, a FIFO, an unreadable file: the writer words the refusal
    if not head.strip() or (head.lstrip().startswith(b"{") and f'"{PLAN_FILE_KIND}"'.encode() in head):
        return
    raise ReconcilerError(
        f"--out {path}: the file exists and is not a saved plan (a manifest?); a plan replaces only "
        "a saved plan: give another file name, or delete it first to replace it"
    )


def derived_again(stored: Plan) -> Plan:
    """`stored` made again from its desired and live states (module docstring); `PlanError` when
    the live state is not the one its fingerprint names, or when what the file says the plan
    does (actions, the configuration words of its repoints, notes) is not what that gives."""
    from reconciler.api.live import fingerprint
    from reconciler.core.errors import PlanError
    from reconciler.planning.plan import make_plan

    if (fingerprint(stored.live) if stored.live is not None else "") != stored.live_fingerprint:
        raise PlanError("its live state does not have its live fingerprint (was it edited?); make a new plan")
    again = make_plan(
        stored.desired, stored.live, live_fingerprint=stored.live_fingerprint, targets=stored.targets, endpoint=stored.endpoint
    )
    if same_plan(again, stored):
        return again
    raise PlanError(
        "its actions, their configuration changes or its notes are not what its manifest and live state "
        "give (was it edited?); make a new plan"
    )


def same_plan(a: Plan, b: Plan) -> bool:
    """Whether two plans do the same and say the same: their actions (with the configuration
    words of repoints, which `Action` equality leaves out), notes, app and user."""
    return (
        (a.app_id, a.user_id, a.actions) == (b.app_id, b.user_id, b.actions)
        and [x.version_changes for x in a.actions] == [x.version_changes for x in b.actions]
        and [n.text for n in a.notes] == [n.text for n in b.notes]
    )
