"""Drift: what differs in the live app from the manifest, field by field — a read-only plan.

Contract: `check_drift(client, desired) -> DriftReport` reads the live app (GET requests only; no
write is ever made) and plans exactly as `reconciler plan` does (`pipeline.plan_app`), so drift and
plan can never disagree; `render_text` and `report_to_dict` (`--json`: the plan's machine format
plus ``"drift": bool``) present it. The CLI exits 0 when there is no drift, 2 when there is, 1 on
error.

Every planned action is drift: a resource missing from the app (`create`), a field that differs
(`update`, `new_version`, `repoint`, `set_default`), a managed resource the manifest no longer has
(`delete`), and an unmarked resource the manifest names (`adopt`: the app matches, but nothing marks
it as managed yet). Notes (unmanaged resources, concepts the API cannot delete) are shown, not
counted. Changes read "live → manifest".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.core.printable import printable
from reconciler.planning import render
from reconciler.planning.actions import Op, Plan

if TYPE_CHECKING:
    from reconciler.api.client import Client
    from reconciler.core.state import State


@dataclass(frozen=True)
class DriftReport:
    plan: Plan

    @property
    def drifted(self) -> bool:
        return not self.plan.empty


def check_drift(client: Client, desired: State) -> DriftReport:
    from reconciler.planning.pipeline import plan_app

    return DriftReport(plan_app(client, desired))


def report_to_dict(report: DriftReport) -> dict[str, Any]:
    return {**render.plan_to_dict(report.plan), "drift": report.drifted}


def render_text(data: dict[str, Any]) -> str:
    app = data["app"]
    who = f" (user {printable(app['user_id'])})" if app.get("user_id") else ""
    n = len({(a["kind"], a["id"]) for a in data["actions"]})
    lines = [
        f"Drift in app {printable(app['id'])}{who}: "
        + (f"{n} resource(s) differ from the manifest." if data["drift"] else "none; the app matches the manifest.")
    ]
    if data.get("endpoint"):
        lines.append(f"Endpoint: {printable(data['endpoint'])}")
    for a in data["actions"]:
        op = Op(a["op"])
        lines.append(f"  {op.glyph} {printable(a['kind'])}/{printable(a['id'])}: {op.drift}")
        for c in a["changes"]:
            lines.append(
                f"      {printable(c['path'])}: live {render.format_value(c['before'], c['path'])}, "
                f"manifest {render.format_value(c['after'], c['path'])}"
            )
            lines.extend(f"        {w}" for w in render.config_change_words(c))
    if data["notes"]:
        lines.append("Notes:")
        lines.extend(f"  - {printable(note)}" for note in data["notes"])
    return "\n".join(lines) + "\n"
