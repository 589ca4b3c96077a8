"""Render a Plan for machines (a dict, `--json`), people (text) and pull requests (Markdown).

Terraform's rule: the human views are rendered FROM the machine dict (`plan_to_dict`), never from
the Plan directly, so the text and the JSON cannot disagree. `render_markdown` takes the Plan as
well, only for the workflow graphs it draws (node lists and model types are not in the dict).

The dict (`format_version` 1) is documented in README, "Plans". Each op's glyph and label are
`plan.Op`'s: ``+`` create, ``~`` update / adopt / repoint / set_default, ``-`` delete, ``±`` new
model version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.core.printable import printable
from reconciler.core.state import NEW_TASK, Model, Node, Workflow
from reconciler.planning.actions import Action, Op, Plan, is_new_pin, new_pin_model
from reconciler.planning.serialize import json_value

FORMAT_VERSION = 1

_COLORS = {"+": "\033[32m", "~": "\033[33m", "-": "\033[31m", "±": "\033[36m"}
_BOLD, _DIM, _RESET = "\033[1m", "\033[2m", "\033[0m"
NO_CHANGES = "No changes. The app matches the manifest."
#: Up to this many actions, and within the character budget, Markdown is one table of every
#: action; past it, concepts and relations are collapsed per kind (`<details>`).
MD_MAX_ROWS = 100
#: `plan --markdown`'s default budget: GitHub refuses comments over 65,536 characters, and the
#: CI recipe adds a marker line.
MD_MAX_CHARS = 60_000
#: Kinds whose actions are collapsed, summarised and, if need be, cut first: there can be
#: thousands of them, while models and workflows are what reviewers must see.
_BULK_KINDS = ("concept", "concept_relation")
_KIND_TITLES = {
    "app": "app",
    "concept": "concepts",
    "concept_relation": "concept relations",
    "model": "models",
    "workflow": "workflows",
}


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The documented machine format (README, "Plans")."""
    return {
        "format_version": FORMAT_VERSION,
        # added within format_version 1 (README: fields may be added within a version)
        "endpoint": plan.endpoint,
        "app": {"id": plan.app_id, "user_id": plan.user_id},
        "live_fingerprint": plan.live_fingerprint,
        "targets": list(plan.targets),
        "empty": plan.empty,
        "summary": plan.summary(),
        "actions": [_action(a) for a in plan.actions],
        "notes": [n.text for n in plan.notes],
    }


def _change(c: Any) -> dict[str, Any]:
    return {"path": c.path, "before": json_value(c.before), "after": json_value(c.after)}


def _action(a: Action) -> dict[str, Any]:
    words = dict(a.version_changes)
    changes = []
    for c in a.changes:
        entry = _change(c)
        if c.path in words:  # a repoint between existing versions: how their configurations differ
            entry["config_changes"] = [_change(w) for w in words[c.path]]
        changes.append(entry)
    return {
        "op": a.op.value,
        "kind": a.kind.value,
        "id": a.id,
        "changes": changes,
        "pins": [{"node": n, "version": v} for n, v in a.pins],
        "reuse_version": a.reuse_version,
        "reason": a.reason,
    }


def summary_line(summary: dict[str, int], actions: Sequence[dict[str, Any]] = ()) -> str:
    """The plan's one-line summary; `actions` (the JSON plan's) tell dataset versions from model
    versions."""
    if not any(summary.get(op, 0) for op in Op):
        return NO_CHANGES
    parts = [f"{summary.get('create', 0)} to create", f"{summary.get('update', 0)} to update"]
    n = summary.get("adopt", 0)
    if n:
        parts.append(f"{n} to adopt")
    datasets = sum(1 for a in actions if a.get("op") == Op.NEW_VERSION.value and a.get("kind") == "dataset")
    n = summary.get("new_version", 0) - datasets
    if n:
        parts.append(f"{n} new model version{'s' if n != 1 else ''}")
    if datasets:
        parts.append(f"{datasets} new dataset version{'s' if datasets != 1 else ''}")
    n = summary.get("repoint", 0)
    if n:
        parts.append(f"{n} to repoint")
    n = summary.get("set_default", 0)
    if n:
        parts.append(f"{n} default workflow change{'s' if n != 1 else ''}")
    parts.append(f"{summary.get('delete', 0)} to delete")
    return "Plan: " + ", ".join(parts) + "."


def format_value(value: Any, path: str = "") -> str:
    """One before/after value as text: null -> (none), strings quoted, new-version pins spelled out;
    control and format characters escaped (`printable`), in keys as in values."""
    if value is None:
        return "(none)"
    if isinstance(value, str) and path.endswith(".model.version") and is_new_pin(value):
        return f"(new version of {printable(new_pin_model(value))})"
    if isinstance(value, str) and path.endswith("task_id") and value.startswith(NEW_TASK):
        return f"(the new task {printable(value[len(NEW_TASK) :])})"
    return printable(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")))


#: The fields of a workflow node's model reference, folded into one line when they are all new.
_REF_FIELDS = (".model.user_id", ".model.app_id", ".model.id", ".model.version")


def shown_changes(a: dict[str, Any]) -> list[dict[str, Any]]:
    """An action's changes as the text and Markdown plans list them: on a resource being made (every
    `before` empty) a node's model reference (id, user, app, version) is folded into one change,
    ``nodes.N.model = user/app/id @ version``, so a workflow reads a line per node."""
    changes = list(a["changes"])
    if not changes or any(c["before"] is not None for c in changes):
        return changes
    refs: dict[str, dict[str, Any]] = {}
    for c in changes:
        path = c["path"]
        suffix = next((f for f in _REF_FIELDS if path.startswith("nodes.") and path.endswith(f)), None)
        if suffix is not None:
            refs.setdefault(path[: -len(suffix)] + ".model", {})[suffix.rsplit(".", 1)[1]] = c["after"]
    out: list[dict[str, Any]] = []
    for c in changes:
        path = c["path"]
        suffix = next((f for f in _REF_FIELDS if path.startswith("nodes.") and path.endswith(f)), None)
        if suffix is None:
            out.append(c)
            continue
        key = path[: -len(suffix)] + ".model"
        ref = refs.pop(key, None)
        if ref is None:
            continue  # folded into the first field's line
        owner = "/".join(str(ref[k]) for k in ("user_id", "app_id") if ref.get(k))
        name = f"{owner}/{ref.get('id')}" if owner else str(ref.get("id"))
        version = ref.get("version")
        if isinstance(version, str) and is_new_pin(version):
            at = f" @ (new version of {new_pin_model(version)})"
        else:
            at = f" @ {version}" if version else ""
        out.append({"path": key, "before": None, "after": name + at, "folded": True})
    return out


def config_change_words(change: dict[str, Any]) -> list[str]:
    """A version pin change's configuration difference, one `path: before → after` a line
    (empty unless the change carries `config_changes`)."""
    return [change_words(w) for w in change.get("config_changes") or ()]


def _address(a: dict[str, Any]) -> str:
    return printable(f"{a['kind']}/{a['id']}")


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
    who = f" (user {printable(app['user_id'])})" if app.get("user_id") else ""
    lines = [paint(_BOLD, f"Plan for app {printable(app['id'])}{who}:")]
    if plan_dict.get("endpoint"):
        lines.append(f"Endpoint: {printable(plan_dict['endpoint'])}")
    lines.append("")
    for a in plan_dict["actions"]:
        op = Op(a["op"])
        lines.append(f"  {paint(_COLORS[op.glyph], op.glyph)} {paint(_BOLD, _address(a))}  {op.label}")
        if a.get("reason"):
            lines.append(paint(_DIM, f"      # {printable(a['reason'])}"))
        for c in shown_changes(a):
            lines.append(f"      {change_words(c)}")
            lines.extend(f"        {w}" for w in config_change_words(c))
    if plan_dict["actions"]:
        lines.append("")
    if plan_dict["notes"]:
        lines.append("Notes:")
        lines.extend(f"  - {printable(n)}" for n in plan_dict["notes"])
        lines.append("")
    lines.append(paint(_BOLD, summary_line(plan_dict["summary"], plan_dict["actions"])))
    return "\n".join(lines) + "\n"


# --- Markdown ---------------------------------------------------------------------------------


def change_words(c: dict[str, Any], *, code: bool = False) -> str:
    """One change as ``path: before → after``; a field of a resource being made as
    ``path = value`` (Terraform's way: no "(none) →"); every part escaped (`printable`). When the
    before and after print alike, the words say what differs (a type, or digits past the printed
    precision), so a change never reads as "x → x". `code`: the path in Markdown backticks."""
    path = printable(c["path"])
    path = f"`{path}`" if code else path
    if c["before"] is None and c["after"] is not None:
        after = printable(str(c["after"])) if c.get("folded") else format_value(c["after"], c["path"])
        return f"{path} = {after}"
    before, after = format_value(c["before"], c["path"]), format_value(c["after"], c["path"])
    if before == after and c["before"] != c["after"]:
        return f"{path}: {before} → {after} ({_what_differs(c['before'], c['after'])})"
    return f"{path}: {before} → {after}"


def _what_differs(before: Any, after: Any) -> str:
    if type(before) is not type(after):
        return f"same text, but {type(before).__name__} → {type(after).__name__}"
    return f"same text; exactly {printable(repr(before))} → {printable(repr(after))}"


def _md_cell(text: str) -> str:
    return printable(text).replace("|", "\\|")


def _change_pieces(a: dict[str, Any]) -> list[str]:
    """A row's Changes cell, change by change (a repoint's configuration words with its pin)."""
    return [
        _md_cell(change_words(c, code=True)) + "".join(f"<br>&nbsp;&nbsp;{_md_cell(w)}" for w in config_change_words(c))
        for c in shown_changes(a)
    ]


_MORE_CHANGES = "_… and {n} more change(s) (the full list: `reconciler show PLAN`)_"


def _md_row(a: dict[str, Any], shown: int | None = None) -> str:
    """An action's table row; with `shown`, its Changes cell keeps the first `shown` changes and
    counts the rest (the reason is always kept)."""
    pieces = _change_pieces(a)
    k = len(pieces) if shown is None else min(shown, len(pieces))
    cell = pieces[:k]
    if k < len(pieces):
        cell.append(_MORE_CHANGES.format(n=len(pieces) - k))
    if a.get("reason"):
        cell.append(f"_{_md_cell(a['reason'])}_")
    op = Op(a["op"])
    return f"| `{op.glyph}` | `{_md_cell(_address(a))}` | {op.label} | {'<br>'.join(cell)} |"


_TABLE_HEAD = ["| | Resource | Action | Changes |", "|---|---|---|---|"]


def _size(lines: list[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def _kind_summary(actions: list[dict[str, Any]]) -> list[str]:
    """A table: per kind, how many actions of each op."""
    ops = [op for op in Op if any(a["op"] == op for a in actions)]
    kinds = [k for k in _KIND_TITLES if any(a["kind"] == k for a in actions)]
    out = ["| kind | " + " | ".join(op.label.split(" (")[0] for op in ops) + " |", "|---|" + "---:|" * len(ops)]
    for k in kinds:
        counts = [sum(1 for a in actions if a["kind"] == k and a["op"] == op) for op in ops]
        out.append(f"| {_KIND_TITLES[k]} | " + " | ".join(str(n) if n else "" for n in counts) + " |")
    return out


def _fit_lines(lines: list[str], budget: int, tail: str) -> list[str]:
    """As many of `lines` as fit in `budget` characters, then `tail` (formatted with the number
    left out); whole lines only, never a line cut part-way."""
    kept: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        if used + len(line) + 1 + len(tail.format(n=len(lines) - i)) + 1 > budget:
            return kept + [tail.format(n=len(lines) - i)]
        kept.append(line)
        used += len(line) + 1
    return kept


def _fit_rows(rows: list[str], budget: int, what: str) -> list[str]:
    """As many of `rows` as fit in `budget` characters, then one line counting the rest."""
    return _fit_lines(rows, budget, f"| | … and {{n}} more {what} (the full list: `reconciler show PLAN`) | | |")


def _fit_major_rows(major: list[dict[str, Any]], room: int) -> tuple[list[str], int]:
    """Every row of `major` (app, model and workflow actions), each Changes cell cut so that all
    the rows fit in `room` characters, and the characters they take. The rows share the room:
    round after round, each row whose next change still fits shows one more, so one row with
    thousands of changes cannot crowd out the others. Every row is kept, with at least its
    resource, action, reason and the count of its changes, even when that is over `room`."""
    costs = [[len(p) + len("<br>") for p in _change_pieces(a)] for a in major]
    # a row starts with no change shown, counting them all, or in full when that is no longer;
    # each change shown adds itself and a <br> (an upper bound: the count line shrinks, and goes
    # when every change is shown)
    shown = [len(c) if len(_md_row(a)) <= len(_md_row(a, 0)) else 0 for a, c in zip(major, costs)]
    used = sum(len(_md_row(a, k)) + 1 for a, k in zip(major, shown))
    active = [i for i, c in enumerate(costs) if shown[i] < len(c)]
    while active:
        still = []
        for i in active:
            cost = costs[i][shown[i]]
            if used + cost <= room:
                used += cost
                shown[i] += 1
                if shown[i] < len(costs[i]):
                    still.append(i)
        active = still
    rows = [_md_row(a, k) for a, k in zip(major, shown)]
    return rows, _size(rows)


def render_markdown(plan_dict: dict[str, Any], plan: Plan, max_chars: int = MD_MAX_CHARS) -> str:
    """A pull-request comment: summary, a table of actions with their changes, notes, and a Mermaid
    flowchart of each workflow the plan touches (changed nodes highlighted, removed ones drawn as
    deleted).

    It stays under `max_chars`, and never cuts a line part-way. A plan with more than
    `MD_MAX_ROWS` actions, or one that does not fit, gets a per-kind summary and keeps a row for
    every app, model and workflow action, in this order of what gets the room: those rows (with
    at least their resource, action, reason and how many changes they have), the notes (cut, and
    counted, past half the room), the rows' changes (shared between the rows, each long cell cut
    with a count of what was cut), the workflow diagrams, then the concepts and relations,
    collapsed per kind in `<details>` and counted. Only a budget too
    small for one line per app, model and workflow action drops rows, and says how many."""
    app = plan_dict["app"]
    head = [f"### Plan for Clarifai app `{_md_cell(app['id'])}`", ""]
    if plan_dict.get("endpoint"):
        head += [f"Endpoint: `{_md_cell(plan_dict['endpoint'])}`, user `{_md_cell(app.get('user_id') or 'me')}`", ""]
    head += [f"**{summary_line(plan_dict['summary'], plan_dict['actions'])}**", ""]
    actions = plan_dict["actions"]
    note_lines = [f"- {_md_cell(n)}" for n in plan_dict["notes"]]
    notes = ["**Notes**", ""] + note_lines + [""] if note_lines else []
    charts = [section + [""] for section in _workflow_charts(plan)]

    def finish(parts: list[str]) -> str:
        text = "\n".join(parts).rstrip("\n") + "\n"
        return cut_at_lines(text, max_chars)  # reached only by budgets smaller than the fixed lines

    table = _TABLE_HEAD + [_md_row(a) for a in actions] + [""] if actions else []
    full = head + table + notes + [line for c in charts for line in c]
    if len(actions) <= MD_MAX_ROWS and _size(full) <= max_chars:
        return finish(full)

    # long or too big: summarise per kind; every app, model and workflow row; bulk kinds collapsed
    major = [a for a in actions if a["kind"] not in _BULK_KINDS]
    bulk = [(k, [a for a in actions if a["kind"] == k]) for k in _BULK_KINDS]
    bulk = [(k, rows) for k, rows in bulk if rows]
    top = head + _kind_summary(actions) + [""]
    budget = max_chars - 64  # a margin for the closing lines
    omitted_line = [
        f"_{len(charts)} workflow diagram(s) left out to keep this comment under {max_chars} "
        "characters (`reconciler graph` draws them)._",
        "",
    ]

    def bulk_block(kind: str, rows: list[dict[str, Any]], room: int) -> list[str]:
        title = f"<details><summary>{len(rows)} {_KIND_TITLES[kind]} ({_ops_in_words(rows)})</summary>"
        frame = [title, ""] + _TABLE_HEAD + ["", "</details>", ""]
        body = _fit_rows([_md_row(a) for a in rows], max(0, room - _size(frame)), _KIND_TITLES[kind])
        return [title, ""] + _TABLE_HEAD + body + ["", "</details>", ""]

    least = [min(len(_md_row(a, 0)), len(_md_row(a))) + 1 for a in major]
    fixed = _size(top) + (_size(_TABLE_HEAD) + 1 + sum(least) if major else 0)
    fixed += sum(_size(bulk_block(k, rows, 0)) for k, rows in bulk) + (_size(omitted_line) if charts else 0)
    left = budget - fixed
    if left < 0:  # not even one line per action fits: rows in plan order, and how many are left out
        last = f"_Concepts, relations, notes and diagrams left out: the plan does not fit in {max_chars} characters._"
        room = max(0, max_chars - _size(top) - _size(_TABLE_HEAD) - len(last) - 2)
        shortest = [min(_md_row(a, 0), _md_row(a), key=len) for a in major]
        return finish(top + _TABLE_HEAD + _fit_rows(shortest, room, "model, workflow and app actions") + ["", last])
    if notes and _size(notes) > left // 2:
        notes = (
            ["**Notes**", ""]
            + _fit_lines(note_lines, max(0, left // 2 - 4), "- … and {n} more note(s) (the full list: `reconciler show PLAN`)")
            + [""]
        )
    left -= _size(notes)
    major_rows, used = _fit_major_rows(major, sum(least) + left)
    left -= used - sum(least)
    kept_charts: list[list[str]] = []
    for c in charts:
        if _size(c) <= left:
            kept_charts.append(c)
            left -= _size(c)
    if len(kept_charts) < len(charts):
        left = 0  # concepts and relations are cut before diagrams: only their counts
    bulk_blocks: list[list[str]] = []
    for kind, rows in bulk:
        block = bulk_block(kind, rows, _size(bulk_block(kind, rows, 0)) + max(0, left))
        left -= _size(block) - _size(bulk_block(kind, rows, 0))
        bulk_blocks.append(block)
    major_table = _TABLE_HEAD + major_rows + [""] if major else []
    out = top + major_table + [line for b in bulk_blocks for line in b] + notes
    out += [line for c in kept_charts for line in c]
    omitted = len(charts) - len(kept_charts)
    if omitted:
        out += [omitted_line[0].replace(f"_{len(charts)} ", f"_{omitted} ", 1), ""]
    return finish(out)


def cut_at_lines(text: str, max_chars: int) -> str:
    """`text` if it fits in `max_chars`, else as many whole lines as fit and a last line counting
    the lines left out: a table row is never cut in two, nor dropped without a count."""
    if len(text) <= max_chars:
        return text
    lines = text.splitlines(keepends=True)

    def note(n: int) -> str:
        return f"\n_… {n} more line(s) left out to stay under {max_chars} characters (`reconciler show PLAN` has them all)._\n"

    room = max_chars - len(note(len(lines)))
    if room < 0:  # not even the note fits: whole lines only
        room = max_chars
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) > room:
            break
        kept.append(line)
        used += len(line)
    body = "".join(kept)
    if room == max_chars:
        return body
    return body + ("" if body.endswith("\n") or not body else "\n") + note(len(lines) - len(kept))


def _ops_in_words(actions: list[dict[str, Any]]) -> str:
    return ", ".join(f"{n} {op.label.split(' (')[0]}" for op in Op if (n := sum(1 for a in actions if a["op"] == op)))


_COMPARATOR_SIGNS = {"GREATER_THAN": ">", "GREATER_THAN_OR_EQUAL": "≥", "LESS_THAN": "<", "LESS_THAN_OR_EQUAL": "≤", "EQUAL": "="}


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
    return printable(text).replace('"', "#quot;").replace("<", "#60;").replace(">", "#62;")


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


def mermaid_flowchart(
    wf: Workflow,
    models: dict[str, Model],
    marked: Sequence[str] = (),
    cls: str = "changed",
    removed: tuple[Node, ...] = (),
) -> list[str]:
    """A workflow as Mermaid `flowchart LR` lines (no code fence); `marked` node ids get `cls`.
    `removed`: nodes the live workflow has and `wf` drops, drawn after it in the `deleted` style
    with dotted edges."""
    ids = {n.id: f"n{i}" for i, n in enumerate((*wf.nodes, *removed))}
    gone = {n.id for n in removed}
    lines = ["flowchart LR"]
    for n in (*wf.nodes, *removed):
        lines.append(f'  {ids[n.id]}["{"<br/>".join(_mermaid_text(part) for part in node_label(n, models))}"]')
    for n in (*wf.nodes, *removed):
        for src in n.inputs:
            if src in ids:
                arrow = "-.->" if src in gone or n.id in gone else "-->"
                lines.append(f"  {ids[src]} {arrow} {ids[n.id]}")
    hit = [ids[n] for n in marked if n in ids and n not in gone]
    if hit:
        lines.append(f"  class {','.join(hit)} {cls}")
    if removed:
        lines.append(f"  class {','.join(ids[n.id] for n in removed)} deleted")
    if hit or removed:
        lines.append("  classDef changed fill:#fff3b0,stroke:#d4a000,stroke-width:2px")
        lines.append("  classDef deleted fill:#ffd6d6,stroke:#c00,stroke-dasharray:4")
    return lines


def node_of_path(path: str, node_ids: set[str]) -> str:
    """The node a change path ``nodes.<node id>.<field>`` is about. Node ids may hold dots
    (``general-v1.5-concept``: they are not API ids), so the longest known id the path starts
    with wins; an unknown one reads up to the next dot."""
    rest = path.removeprefix("nodes.")
    hits = [n for n in node_ids if rest == n or rest.startswith(n + ".")]
    return max(hits, key=len) if hits else rest.split(".")[0]


def _workflow_charts(plan: Plan) -> list[list[str]]:
    models = {m.id: m for m in plan.desired.models}
    new_models = {a.id for a in plan.actions if a.kind.value == "model" and a.op in (Op.CREATE, Op.NEW_VERSION)}
    charts = []
    for a in plan.actions:
        if a.kind.value != "workflow":
            continue
        wf = a.desired if a.desired is not None else a.live
        assert isinstance(wf, Workflow)
        known = {n.id for n in wf.nodes} | ({n.id for n in a.live.nodes} if isinstance(a.live, Workflow) else set())
        changed = {node_of_path(c.path, known) for c in a.changes if c.path.startswith("nodes.")}
        changed |= {n for n, v in a.pins if new_pin_model(v) in new_models}
        lines = [f"**Workflow `{_md_cell(wf.id)}`** ({a.op.label})", "", "```mermaid"]
        cls = "deleted" if a.op is Op.DELETE else "changed"
        marked = sorted(changed) if a.op is not Op.DELETE else [n.id for n in wf.nodes]
        kept = {n.id for n in wf.nodes}
        gone = (
            tuple(n for n in a.live.nodes if n.id not in kept) if a.op is not Op.DELETE and isinstance(a.live, Workflow) else ()
        )
        lines += mermaid_flowchart(wf, models, marked, cls, removed=gone)
        lines.append("```")
        removed = sorted(changed - {n.id for n in wf.nodes})
        if removed:
            lines += ["", "Nodes removed: " + ", ".join(f"`{_md_cell(r)}`" for r in removed)]
        charts.append(lines)
    return charts
