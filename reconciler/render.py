"""Render a Plan for machines (a dict, `--json`), people (text) and pull requests (Markdown).

Terraform's rule: the human views are rendered FROM the machine dict (`plan_to_dict`), never from
the Plan directly, so the text and the JSON cannot disagree. `render_markdown` takes the Plan as
well, only for the workflow graphs it draws (node lists and model types are not in the dict).

The dict (`format_version` 1) is documented in README, "Plans". Text glyphs: ``+`` create,
``~`` update / adopt / repoint / set_default, ``-`` delete, ``±`` new model version.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from reconciler.plan import OPS, Action, Plan, is_new_pin
from reconciler.serialize import json_value
from reconciler.state import Model, Node, Workflow

FORMAT_VERSION = 1

GLYPHS = {"create": "+", "update": "~", "adopt": "~", "repoint": "~", "set_default": "~",
          "delete": "-", "new_version": "±"}
LABELS = {"create": "create", "update": "update", "adopt": "adopt (take ownership)",
          "new_version": "new version", "repoint": "repoint", "set_default": "set default workflow",
          "delete": "delete"}
_COLORS = {"+": "\033[32m", "~": "\033[33m", "-": "\033[31m", "±": "\033[36m"}
_BOLD, _DIM, _RESET = "\033[1m", "\033[2m", "\033[0m"
NO_CHANGES = "No changes. The app matches the manifest."
#: Markdown tables stop after this many rows (GitHub comments are capped at 65,536 characters).
MD_MAX_ROWS = 100


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The documented machine format (README, "Plans")."""
    return {
        "format_version": FORMAT_VERSION,
        "app": {"id": plan.app_id, "user_id": plan.user_id},
        "live_fingerprint": plan.live_fingerprint,
        "targets": list(plan.targets),
        "empty": plan.empty,
        "summary": plan.summary(),
        "actions": [_action(a) for a in plan.actions],
        "notes": list(plan.notes),
    }


def _action(a: Action) -> dict[str, Any]:
    return {"op": a.op, "kind": a.kind.value, "id": a.id,
            "changes": [{"path": c.path, "before": json_value(c.before), "after": json_value(c.after)}
                        for c in a.changes],
            "pins": [{"node": n, "version": v} for n, v in a.pins],
            "reuse_version": a.reuse_version, "reason": a.reason}


def summary_line(summary: dict[str, int]) -> str:
    if not any(summary.get(op, 0) for op in OPS):
        return NO_CHANGES
    parts = [f"{summary.get('create', 0)} to create", f"{summary.get('update', 0)} to update"]
    n = summary.get("adopt", 0)
    if n:
        parts.append(f"{n} to adopt")
    n = summary.get("new_version", 0)
    if n:
        parts.append(f"{n} new model version{'s' if n != 1 else ''}")
    n = summary.get("repoint", 0)
    if n:
        parts.append(f"{n} to repoint")
    n = summary.get("set_default", 0)
    if n:
        parts.append(f"{n} default workflow change{'s' if n != 1 else ''}")
    parts.append(f"{summary.get('delete', 0)} to delete")
    return "Plan: " + ", ".join(parts) + "."


def format_value(value: Any, path: str = "") -> str:
    """One before/after value as text: null -> (none), strings quoted, new-version pins spelled out."""
    if value is None:
        return "(none)"
    if isinstance(value, str) and path.endswith(".model.version") and is_new_pin(value):
        return f"(new version of {value.split(':', 1)[1]})"
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _address(a: dict[str, Any]) -> str:
    return f"{a['kind']}/{a['id']}"


def use_color(mode: str, env: Mapping[str, str], isatty: bool) -> bool:
    """Whether to colour: `mode` "always" / "never" decide; "auto" colours a terminal unless
    NO_COLOR is set to a non-empty value (no-color.org: "when present and not an empty string")
    or TERM is "dumb" (a terminal that cannot show escape codes)."""
    if mode in ("always", "never"):
        return mode == "always"
    if env.get("NO_COLOR", "") != "" or env.get("TERM", "") == "dumb":
        return False
    return isatty


def render_text(plan_dict: dict[str, Any], color: bool = False) -> str:
    """The human plan, from `plan_to_dict`'s output. ANSI colour only when `color` is true."""
    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    app = plan_dict["app"]
    who = f" (user {app['user_id']})" if app.get("user_id") else ""
    lines = [paint(_BOLD, f"Plan for app {app['id']}{who}:"), ""]
    for a in plan_dict["actions"]:
        glyph = GLYPHS[a["op"]]
        lines.append(f"  {paint(_COLORS[glyph], glyph)} {paint(_BOLD, _address(a))}  {LABELS[a['op']]}")
        if a.get("reason"):
            lines.append(paint(_DIM, f"      # {a['reason']}"))
        for c in a["changes"]:
            lines.append(f"      {c['path']}: {format_value(c['before'], c['path'])} → "
                         f"{format_value(c['after'], c['path'])}")
    if plan_dict["actions"]:
        lines.append("")
    if plan_dict["notes"]:
        lines.append("Notes:")
        lines.extend(f"  - {n}" for n in plan_dict["notes"])
        lines.append("")
    lines.append(paint(_BOLD, summary_line(plan_dict["summary"])))
    return "\n".join(lines) + "\n"


# --- Markdown ---------------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(plan_dict: dict[str, Any], plan: Plan) -> str:
    """A pull-request comment: summary, a table of actions with their changes, notes, and a Mermaid
    flowchart of each workflow the plan touches (changed nodes highlighted)."""
    app = plan_dict["app"]
    out = [f"### Plan for Clarifai app `{app['id']}`", "", f"**{summary_line(plan_dict['summary'])}**", ""]
    actions = plan_dict["actions"]
    if actions:
        out += ["| | Resource | Action | Changes |", "|---|---|---|---|"]
        for a in actions[:MD_MAX_ROWS]:
            changes = "<br>".join(
                _md_cell(f"`{c['path']}`: {format_value(c['before'], c['path'])} → {format_value(c['after'], c['path'])}")
                for c in a["changes"])
            if a.get("reason"):
                changes = (changes + "<br>" if changes else "") + f"_{_md_cell(a['reason'])}_"
            out.append(f"| `{GLYPHS[a['op']]}` | `{_md_cell(_address(a))}` | {LABELS[a['op']]} | {changes} |")
        if len(actions) > MD_MAX_ROWS:
            out.append(f"| | … and {len(actions) - MD_MAX_ROWS} more actions | | |")
        out.append("")
    if plan_dict["notes"]:
        out += ["**Notes**", ""] + [f"- {_md_cell(n)}" for n in plan_dict["notes"]] + [""]
    for section in _workflow_charts(plan):
        out += section + [""]
    return "\n".join(out).rstrip("\n") + "\n"


_COMPARATOR_SIGNS = {"GREATER_THAN": ">", "GREATER_THAN_OR_EQUAL": "≥", "LESS_THAN": "<",
                     "LESS_THAN_OR_EQUAL": "≤", "EQUAL": "="}


def _settings(m: Model) -> list[str]:
    """A few words on a model's key settings, for a node label."""
    cfg = m.config
    if "thresholds" in cfg:
        sign = _COMPARATOR_SIGNS.get(cfg.get("comparator", ""), cfg.get("comparator", "?"))
        return [f"{cid} {sign} {v}" for cid, v in cfg["thresholds"].items()]
    if "annotation_status" in cfg:
        return [f"writes {cfg['annotation_status']}"]
    if "knowledge_graph_id" in cfg:
        return [f"graph {cfg['knowledge_graph_id']}"]
    if "concepts" in cfg:
        return [f"{len(cfg['concepts'])} concepts"]
    return []


def _mermaid_text(text: str) -> str:
    # entity codes keep quotes and angle brackets from ending the label or reading as HTML
    return text.replace('"', "#quot;").replace("<", "#60;").replace(">", "#62;")


def node_label(n: Node, models: dict[str, Model]) -> list[str]:
    """A node's label lines: its id, what it runs (model id and type, or the external reference)
    and the model's key settings. Shared with `reconciler graph`."""
    label = [n.id]
    if n.model.external:
        label.append(str(n.model))
    else:
        m = models.get(n.model.id)
        label.append(f"{n.model.id} ({m.type})" if m else n.model.id)
        if m:
            label += _settings(m)
    if n.suppress_output:
        label.append("output suppressed")
    return label


def mermaid_flowchart(wf: Workflow, models: dict[str, Model], marked: list[str] = (),  # type: ignore[assignment]
                      cls: str = "changed") -> list[str]:
    """A workflow as Mermaid `flowchart LR` lines (no code fence); `marked` node ids get `cls`."""
    ids = {n.id: f"n{i}" for i, n in enumerate(wf.nodes)}
    lines = ["flowchart LR"]
    for n in wf.nodes:
        lines.append(f'  {ids[n.id]}["{"<br/>".join(_mermaid_text(part) for part in node_label(n, models))}"]')
    for n in wf.nodes:
        for src in n.inputs:
            if src in ids:
                lines.append(f"  {ids[src]} --> {ids[n.id]}")
    hit = [ids[n] for n in marked if n in ids]
    if hit:
        lines.append(f"  class {','.join(hit)} {cls}")
        lines.append("  classDef changed fill:#fff3b0,stroke:#d4a000,stroke-width:2px")
        lines.append("  classDef deleted fill:#ffd6d6,stroke:#c00,stroke-dasharray:4")
    return lines


def _workflow_charts(plan: Plan) -> list[list[str]]:
    models = {m.id: m for m in plan.desired.models}
    new_models = {a.id for a in plan.actions if a.kind.value == "model" and a.op in ("create", "new_version")}
    charts = []
    for a in plan.actions:
        if a.kind.value != "workflow":
            continue
        wf = a.desired if a.desired is not None else a.live
        assert isinstance(wf, Workflow)
        changed = {c.path.split(".")[1] for c in a.changes if c.path.startswith("nodes.")}
        changed |= {n for n, v in a.pins if is_new_pin(v) and v[4:] in new_models}
        lines = [f"**Workflow `{wf.id}`** ({LABELS[a.op]})", "", "```mermaid"]
        cls = "deleted" if a.op == "delete" else "changed"
        marked = sorted(changed) if a.op != "delete" else [n.id for n in wf.nodes]
        lines += mermaid_flowchart(wf, models, marked, cls)
        lines.append("```")
        removed = sorted(changed - {n.id for n in wf.nodes})
        if removed:
            lines += ["", "Nodes removed: " + ", ".join(f"`{r}`" for r in removed)]
        charts.append(lines)
    return charts
