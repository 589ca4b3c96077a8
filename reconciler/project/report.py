"""Presenting a project's runs together: one section per app, the summary table, one Markdown
comment, one JSON document.

Contract (all pure: strings and dicts from `run.AppRun`s, nothing printed):
- `section_header(run)`: ``== shelf-dev (acme/shelf-dev @ https://api.clarifai.com) ==``.
- Every string that came from a user or a server passes `core.printable` before it is shown.
- `counts(plan)`: the plan's actions as the table's columns ``+ ~ - ±`` (create; update, adopt,
  repoint, set_default; delete; new_version).
- `summary_table(runs)` / `summary_line(runs)`: the text table (app, environment, result, the
  four counts, notes) and ``Project: 3 apps: 1 with changes, 1 unchanged, 1 failed.``
- `project_markdown(project, runs, max_chars)`: one pull-request comment for the whole project,
  under `max_chars`: a title, the summary table, then each app's plan (`render.render_markdown`)
  in a `<details>` block, open when it has changes or failed. The budget left after the table is
  shared out by water-filling: small plans take what they need, the rest split what is left
  evenly; an app whose share is too small to say anything useful reads "plan too long for one
  comment" with the command that shows it.
- `project_document(project, runs, kind, exit_code, app_doc)`: the `--json` document
  ``{format_version: 1, kind, project, apps: [{name, environment, result, exit_code, error, ...}],
  summary: {apps, <result>: n ...}, exit_code}``; `app_doc(run)` adds each app's own part
  (its plan, its drift report).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reconciler.core.printable import printable
from reconciler.planning.actions import Op

if TYPE_CHECKING:
    from reconciler.planning.actions import Plan
    from reconciler.project.load import Project
    from reconciler.project.run import AppRun

#: every result an app's run can have, and how the summary line words it, in the order it lists them
PHRASES = {
    "valid": "valid",
    "changes": "with changes",
    "no changes": "unchanged",
    "applied": "applied",
    "deferred": "applied with parts deferred",
    "drift": "drifted",
    "clean": "clean",
    "cancelled": "cancelled",
    "failed": "failed",
}
#: the table's count columns: glyph -> the ops it counts
COLUMNS = {
    "+": (Op.CREATE,),
    "~": (Op.UPDATE, Op.ADOPT, Op.REPOINT, Op.SET_DEFAULT),
    "-": (Op.DELETE,),
    "±": (Op.NEW_VERSION,),
}
#: below this many characters an app's Markdown plan is replaced by a pointer to the full plan
MIN_MD_SHARE = 600


def section_header(run: AppRun) -> str:
    where = ""
    if run.plan is not None:
        user = run.plan.user_id or "me"
        where = f" ({user}/{run.plan.app_id} @ {run.plan.endpoint})" if run.plan.endpoint else f" ({user}/{run.plan.app_id})"
    elif run.desired is not None:
        where = f" ({run.desired.user_id or 'me'}/{run.desired.app.id})"
    return f"== {run.name}{printable(where)} =="


def counts(plan: Plan | None) -> dict[str, int]:
    if plan is None:
        return {}
    summary = plan.summary()
    return {glyph: sum(summary.get(op.value, 0) for op in ops) for glyph, ops in COLUMNS.items()}


def _note(run: AppRun) -> str:
    if run.error:
        line = run.error.splitlines()[0]
        more = len(run.error.splitlines()) - 1
        return printable(line) + (f" (and {more} more)" if more else "")
    return ""


def summary_table(runs: list[AppRun]) -> str:
    """The text table, one row per app, columns aligned."""
    head = ["app", "environment", "result", *COLUMNS, "notes"]
    rows = [head]
    for run in runs:
        n = counts(run.plan)
        rows.append([run.name, run.entry.environment, run.result or "-", *(str(n[g]) if n else "" for g in COLUMNS), _note(run)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def summary_line(runs: list[AppRun]) -> str:
    by = Counter(run.result for run in runs)
    parts = [f"{by[r]} {phrase}" for r, phrase in PHRASES.items() if by[r]]
    return f"Project: {len(runs)} app{'s' if len(runs) != 1 else ''}: {', '.join(parts) or 'none selected'}."


# --- Markdown -----------------------------------------------------------------------------------


def _md(text: str) -> str:
    return printable(text).replace("|", "\\|")


def _md_table(runs: list[AppRun]) -> list[str]:
    out = [
        "| app | environment | result | " + " | ".join(f"`{g}`" for g in COLUMNS) + " |",
        "|---|---|---|" + "---:|" * len(COLUMNS),
    ]
    for run in runs:
        n = counts(run.plan)
        cells = [str(n[g]) if n else "" for g in COLUMNS]
        out.append(f"| `{_md(run.name)}` | {_md(run.entry.environment)} | {_md(run.result or '-')} | " + " | ".join(cells) + " |")
    return out


def _app_markdown(run: AppRun, budget: int, show_hint: str) -> str:
    """One app's part of the comment, at most `budget` characters."""
    from reconciler.planning import render

    if run.failed:
        lines = (run.error or "failed").splitlines()
        shown = lines[:20] + ([f"… and {len(lines) - 20} more"] if len(lines) > 20 else [])
        return "```\n" + "\n".join(printable(line) for line in shown)[: max(0, budget - 8)] + "\n```\n"
    if run.plan is None:
        return ""
    if budget < MIN_MD_SHARE:
        return f"_Plan too long for one comment: `{show_hint}` shows it in full._\n"
    return render.render_markdown(render.plan_to_dict(run.plan), run.plan, max_chars=budget)


def project_markdown(project: Project, runs: list[AppRun], max_chars: int, show_hint: Callable[[AppRun], str]) -> str:
    """One comment for the whole project (see the module docstring). `show_hint(run)`: the
    command that shows an app's full plan."""
    title = [f"## Clarifai plan: {summary_line(runs).removeprefix('Project: ')}", ""]
    title += [f"Project `{_md(project.rel(project.path))}`", ""]
    head = title + _md_table(runs) + [""]
    frames = []
    for run in runs:
        is_open = " open" if run.failed or (run.plan is not None and not run.plan.empty) else ""
        what = _md(summary_text(run))
        frames.append((f"<details{is_open}><summary><b>{_md(run.name)}</b>: {what}</summary>\n\n", "\n</details>\n"))
    fixed = len("\n".join(head)) + 1 + sum(len(a) + len(b) + 1 for a, b in frames)
    room = max(0, max_chars - fixed - 16)
    full = {run.name: _app_markdown(run, room, show_hint(run)) for run in runs}
    shares = _water_fill({name: len(text) for name, text in full.items()}, room)
    parts = ["\n".join(head)]
    for run, (top, bottom) in zip(runs, frames):
        share = shares[run.name]
        # what fits whole is shown whole; the rest is rendered again within its share
        text = full[run.name] if len(full[run.name]) <= share else _app_markdown(run, share, show_hint(run))
        parts.append(top + text.rstrip("\n") + bottom)
    return "\n".join(parts)[:max_chars]


def summary_text(run: AppRun) -> str:
    """One app's result in a few words: its plan's summary line, or its failure."""
    from reconciler.planning import render

    if run.failed:
        return "failed"
    if run.plan is None:
        return run.result
    return render.summary_line(run.plan.summary()).removeprefix("Plan: ")


def _water_fill(wants: dict[str, int], room: int) -> dict[str, int]:
    """Each name's share of `room`: the smallest take what they want, the rest split evenly."""
    shares: dict[str, int] = {}
    left = room
    order = sorted(wants, key=lambda k: wants[k])
    for i, name in enumerate(order):
        fair = left // (len(order) - i)
        shares[name] = min(wants[name], fair)
        left -= shares[name]
    return shares


# --- JSON ---------------------------------------------------------------------------------------


def project_document(
    project: Project, runs: list[AppRun], kind: str, exit_code: int, app_doc: Callable[[AppRun], dict[str, Any]]
) -> dict[str, Any]:
    by = Counter(run.result for run in runs)
    return {
        "format_version": 1,
        "kind": kind,
        "project": project.rel(project.path),
        "apps": [
            {
                "name": run.name,
                "environment": run.entry.environment,
                "result": run.result,
                "exit_code": run.exit_code,
                "error": run.error_fields,
                **app_doc(run),
            }
            for run in runs
        ],
        "summary": {"apps": len(runs), **{r: by[r] for r in PHRASES if by[r]}},
        "exit_code": exit_code,
    }
