"""`reconciler tune --write` / `--write-to`: put tuned thresholds into the manifest or an overlay.

Contract:
- `write_in_place(path, changes)` replaces, in the manifest file at `path`, exactly the source text
  of each changed threshold value (`models[id=M].thresholds.C`; the id as the loader reads it, so
  `id: "greater-than"` is found; for a task's auto-annotation, `taskflow`'s thresholders
  ``task:T`` / ``task:T:review``: `tasks[id=T].auto_annotation.concepts.C[i].lower` of its SUCCESS
  range or `.upper` of its review range, a bound left out being refused) with the new number;
  every other byte (comments, key order, quoting, indentation, line endings, a BOM) stays as it
  was. A value that is not a plain number
  written in that file (a `${variable}`), one reached through an alias or a merge key, and one
  inside an anchored node that an alias shares (editing it would also change the alias: a change
  the report does not show) are refused with one line naming file:line:col: the tool will not
  guess how to rewrite them. Only values that exist are rewritten; no key is added.
- `merge_into(path, changes)` merges the changes into an existing overlay: values written there are
  replaced as above; a missing threshold, `thresholds:` block, model item or `models:` section is
  added next to its siblings, in the file's own style (block or flow, indentation, line endings).
  Every other key (an overlay's `app: {id: park-prod}`) and byte stays. A text that is not a YAML
  mapping is refused in one line.
- Both check the edited text before writing it: it must read back (the manifest loader) with the
  new value at every changed path, or nothing is written. Both write through `fileio.write_atomic`
  with `edit=True`: through a symlink to the real file, keeping its mode; a read-only or
  hard-linked file is refused in one line.
- `overlay_text(changes, ...)` is a new thresholds overlay (README, "Overlays"): `overlay: true`
  and `models` items with an `id` and the changed `thresholds`, to merge with
  `-f base.yaml -f overlay.yaml`.
- `format_threshold(x)`: the shortest decimal that round-trips (0.87, not 0.8700000000000001).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from reconciler.core.errors import ReconcilerError
from reconciler.manifest.yamledit import Layout, Node, insertion_point, layout
from reconciler.manifest.yamlload import load_yaml

#: first line of an overlay this module wrote (`overlay_text`)
OVERLAY_HEADER = "# Thresholds certified by `reconciler tune`"
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def format_threshold(x: float) -> str:
    return repr(round(float(x), 6))


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _by_model(changes: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for ch in changes:
        out[ch["model"]][ch["concept"]] = ch["to"]
    return out


class _Editor:
    """One file's text, its layout and the edits planned on it."""

    def __init__(self, path: str, *, must_exist: bool = True):
        from reconciler.core.fileio import read_regular_text

        self.path = path
        try:  # decoded as is: the file's own line endings are kept
            text = read_regular_text(path)
        except OSError as err:
            raise ReconcilerError(f"cannot read {path}: {err.strerror or err}") from None
        except UnicodeDecodeError:
            raise ReconcilerError(f"cannot read {path}: not UTF-8 text") from None
        first = next(iter(load_yaml(text.encode("utf-8"), path).problems), None)
        if first is not None:  # what the manifest loader refuses (depth, syntax, tags) is not edited
            raise ReconcilerError(f"{first}; {path} was left as it was")
        self.bom = "\ufeff" if text.startswith("\ufeff") else ""
        self.text = text[len(self.bom) :]
        self.newline = "\r\n" if "\r\n" in self.text else "\n"
        try:
            self.tree: Layout = layout(self.text)
        except ValueError as err:
            raise ReconcilerError(f"{path}: cannot parse it to edit it: {err}") from None
        self.edits: list[tuple[int, int, str]] = []
        self.done: list[str] = []

    def at(self, index: int) -> str:
        line, col = _line_col(self.text, index)
        return f"{self.path}:{line}:{col}"

    def refuse(self, node: Node, message: str) -> ReconcilerError:
        return ReconcilerError(f"{self.at(node.start)}: {message}; change it by hand, or use --write-to a new overlay file")

    def check_shared(self, node: Node, what: str) -> None:
        """`node` on the way to a threshold: an alias, or an anchor some alias shares, is refused."""
        if node.kind == "alias":
            raise self.refuse(node, f"{what} comes from the YAML alias *{node.value}")
        if node.anchor and node.anchor in self.tree.aliased:
            shared = f"{what} is inside the YAML anchor &{node.anchor}, which an alias shares (editing it would change both)"
            raise self.refuse(node, shared)

    def child(self, mapping: Node, key: str, what: str) -> Node | None:
        """`mapping[key]`, refusing a key that only a merge key (`<<`) could supply."""
        if mapping.kind != "map":
            raise self.refuse(mapping, f"{what}: expected a mapping here")
        node = mapping.values.get(key)
        if node is None and mapping.merges:
            raise self.refuse(mapping.merges[0], f"{what} may come from a merge key '<<'")
        if node is not None:
            self.check_shared(node, what)
        return node

    def models(self) -> tuple[Node, Node | None]:
        from reconciler.manifest.load import schema

        root = self.tree.root
        sections = schema()["properties"]
        foreign = next((k for k in root.keys.values() if k.value not in sections), None) if root else None
        if root is None or root.kind != "map" or root.flow or foreign is not None:
            why = f"its key {foreign.value!r} is not a manifest section" if foreign else "not a YAML block mapping"
            raise ReconcilerError(
                f"{self.path}: not a manifest or overlay ({why}); nothing was written: give another file, "
                "or delete it first to write a new overlay"
            )
        self.check_shared(root, "the file's top level")
        models = self.child(root, "models", "models")
        if models is not None and models.kind != "seq":
            raise self.refuse(models, "models is not a list")
        return root, models

    def model_item(self, models: Node | None, model: str, kind: str = "model") -> Node | None:
        items = models.items if models is not None else []
        for item in items:
            mid = item.values.get("id") if item.kind == "map" else None
            if mid is not None and mid.kind == "scalar" and mid.value == model:
                self.check_shared(item, f"{kind} {model}")
                return item
        alias = next((item for item in items if item.kind == "alias"), None)
        if alias is not None:
            self.check_shared(alias, f"{kind} {model}")  # it may be that alias: refused
        return None

    def task_bound(self, root: Node, thresholder: str, concept: str) -> Node | None:
        """The source of the bound a task change moves (`taskflow`'s thresholder ``task:T`` or
        ``task:T:review``): the `lower` of the concept's SUCCESS range, or the `upper` of its review
        range. None when the task or range is not in this file; a bound left out (its default)
        cannot be edited in place: refused with its range's file:line:col."""
        review = thresholder.endswith(REVIEW_SUFFIX)
        task_id = thresholder[len(TASK_PREFIX) :].removesuffix(REVIEW_SUFFIX)
        what = _task_field(thresholder, concept)
        tasks = self.child(root, "tasks", "tasks")
        if tasks is None:
            return None
        if tasks.kind != "seq":
            raise self.refuse(tasks, "tasks is not a list")
        node = self.model_item(tasks, task_id, "task")
        for key in ("auto_annotation", "concepts", concept):
            node = self.child(node, key, what) if node is not None else None
        if node is None or node.kind != "seq":
            return None
        for rng in node.items:
            self.check_shared(rng, what)
            status = self.child(rng, "status", what) if rng.kind == "map" else None
            if status is None or status.kind != "scalar":
                continue
            name = status.value.upper().removeprefix("ANNOTATION_")
            if (name in _REVIEW_STATUSES) == review and (review or name == "SUCCESS"):
                bound = "upper" if review else "lower"
                value = self.child(rng, bound, what)
                if value is None:
                    raise ReconcilerError(
                        f"{self.at(status.start)}: {what} is not written (its default): write {bound}: in that "
                        "range, then tune again"
                    )
                return value
        return None

    def replace(self, value: Node, model: str, concept: str, new: float) -> None:
        task = model.startswith(TASK_PREFIX)
        what = _task_field(model, concept) if task else f"threshold {model}.{concept}"
        self.check_shared(value, what)
        src = value.text(self.text)
        try:
            if value.kind != "scalar" or not value.plain:
                raise ValueError
            float(src)
        except ValueError:
            raise ReconcilerError(
                f"{self.at(value.start)}: {what} is {src!r}, not a plain number; change it by hand or use --write-to OVERLAY"
            ) from None
        self.edits.append((value.start, value.end, format_threshold(new)))
        line, _col = _line_col(self.text, value.start)
        where = what if task else f"{model}.thresholds.{concept}"
        self.done.append(f"  {self.path}:{line}: {where}: {src} -> {format_threshold(new)}")

    def insert(self, index: int, text: str) -> None:
        self.edits.append((index, index, text))

    def write(self, by_model: dict[str, dict[str, float]]) -> None:
        text = self.text
        for start, end, new in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            text = text[:start] + new + text[end:]
        doc = load_yaml((self.bom + text).encode("utf-8"), self.path)
        data = doc.data if not doc.problems else None
        for model, th in by_model.items():
            for concept, value in th.items():
                if _read_back(data, model, concept) != float(format_threshold(value)):
                    what = _task_field(model, concept) if model.startswith(TASK_PREFIX) else f"{model}.thresholds.{concept}"
                    raise ReconcilerError(
                        f"{self.path}: cannot edit its layout safely (the edited text would not read back "
                        f"{what} = {format_threshold(value)}); nothing was written: "
                        "change it by hand, or use --write-to a new overlay file"
                    )
        from reconciler.core.fileio import write_atomic

        try:
            write_atomic(self.path, self.bom + text, edit=True)
        except OSError as err:
            raise ReconcilerError(f"cannot write {self.path}: {err.strerror or err}") from None


def write_in_place(path: str, changes: Iterable[dict[str, Any]]) -> list[str]:
    """Rewrite the threshold values; returns one human line per change."""
    ed = _Editor(path)
    by_model = _by_model(changes)
    root, models = ed.models()
    for model, th in by_model.items():
        if model.startswith(TASK_PREFIX):
            for concept, new in th.items():
                value = ed.task_bound(root, model, concept)
                if value is None:
                    raise ReconcilerError(
                        f"{path}: no {_task_field(model, concept)} written in this file (a task with this id, "
                        "its auto_annotation and a range of that status)"
                    )
                ed.replace(value, model, concept, new)
            continue
        item = ed.model_item(models, model)
        thresholds = ed.child(item, "thresholds", f"model {model}'s thresholds") if item is not None else None
        for concept, new in th.items():
            value = ed.child(thresholds, concept, f"threshold {model}.{concept}") if thresholds is not None else None
            if value is None:
                raise ReconcilerError(
                    f"{path}: no threshold for concept {concept!r} written in model {model!r} of this file; "
                    "use --write-to OVERLAY instead"
                )
            ed.replace(value, model, concept, new)
    ed.write(by_model)
    return ed.done


def merge_into(path: str, changes: Iterable[dict[str, Any]]) -> list[str]:
    """Merge the changes into the existing overlay at `path` (see the module docstring)."""
    ed = _Editor(path)
    by_model = _by_model(changes)
    root, models = ed.models()
    nl = ed.newline
    new_items: list[tuple[str, dict[str, float]]] = []
    for model, th in by_model.items():
        item = ed.model_item(models, model)
        if item is None:
            new_items.append((model, th))
            continue
        thresholds = ed.child(item, "thresholds", f"model {model}'s thresholds")
        missing: dict[str, float] = {}
        for concept, new in th.items():
            value = ed.child(thresholds, concept, f"threshold {model}.{concept}") if thresholds is not None else None
            if value is None:
                missing[concept] = new
            else:
                ed.replace(value, model, concept, new)
        if not missing:
            continue
        if thresholds is None:
            _add_entry(ed, item, "thresholds", missing)
        elif thresholds.kind == "map":
            _add_pairs(ed, thresholds, missing)
        else:
            raise ed.refuse(thresholds, f"model {model}'s thresholds is not a mapping")
        ed.done += [f"  {path}: {model}.thresholds.{c}: added {format_threshold(v)}" for c, v in missing.items()]
    if new_items:
        if models is None:
            _add_entry(ed, root, "models", new_items)
        elif models.flow:
            inline = ", ".join(_flow_item(m, th) for m, th in new_items)
            ed.insert(models.end - 1, (", " if models.items else "") + inline)
        else:
            ed.insert(insertion_point(ed.text, models), "".join(_block_item(models.col, m, th, nl) for m, th in new_items))
        for m, th in new_items:
            ed.done += [f"  {path}: {m}.thresholds.{c}: added {format_threshold(v)}" for c, v in th.items()]
    ed.write(by_model)
    return ed.done


_RESERVED = ("y", "n", "yes", "no", "on", "off", "true", "false", "null")


def _pair(concept: str, value: float) -> str:
    """`concept: value`, the key quoted when YAML would not read it back as written."""
    plain = _PLAIN_KEY.match(concept) and concept.lower() not in _RESERVED
    return f"{concept if plain else json.dumps(concept)}: {format_threshold(value)}"


def _flow_map(th: dict[str, float]) -> str:
    return "{" + ", ".join(_pair(c, v) for c, v in th.items()) + "}"


def _flow_item(model: str, th: dict[str, float]) -> str:
    return "{id: " + json.dumps(model) + ", thresholds: " + _flow_map(th) + "}"


def _block_item(indent: int, model: str, th: dict[str, float], nl: str) -> str:
    pad = " " * indent
    lines = [f"{pad}- id: {json.dumps(model)}", f"{pad}  thresholds:"] + [f"{pad}    {_pair(c, v)}" for c, v in th.items()]
    return "".join(line + nl for line in lines)


def _add_pairs(ed: _Editor, mapping: Node, th: dict[str, float]) -> None:
    """Add `th`'s pairs to an existing thresholds mapping, in its style."""
    if mapping.flow:
        ed.insert(mapping.end - 1, (", " if mapping.values else "") + ", ".join(_pair(c, v) for c, v in th.items()))
        return
    indent = next(iter(mapping.keys.values())).col if mapping.keys else mapping.col
    pad = " " * indent
    ed.insert(insertion_point(ed.text, mapping), "".join(f"{pad}{_pair(c, v)}{ed.newline}" for c, v in th.items()))


def _add_entry(ed: _Editor, mapping: Node, key: str, value: Any) -> None:
    """Add `key: value` (thresholds of one model, or the `models` list) to a mapping, in its style."""
    if mapping.flow:
        inline = _flow_map(value) if key == "thresholds" else "[" + ", ".join(_flow_item(m, th) for m, th in value) + "]"
        ed.insert(mapping.end - 1, (", " if mapping.values else "") + f"{key}: {inline}")
        return
    indent = min((k.col for k in mapping.keys.values()), default=mapping.col)
    pad, nl = " " * indent, ed.newline
    if key == "thresholds":
        block = f"{pad}thresholds:{nl}" + "".join(f"{pad}  {_pair(c, v)}{nl}" for c, v in value.items())
    else:
        block = f"{pad}models:{nl}" + "".join(_block_item(indent + 2, m, th, nl) for m, th in value)
    at = insertion_point(ed.text, mapping)
    if at == len(ed.text) and ed.text and not ed.text.endswith("\n"):
        block = nl + block
    ed.insert(at, block)


#: How `taskflow` names a task's thresholders: ``task:<id>`` (its SUCCESS ranges' lower bounds)
#: and ``task:<id>:review`` (its review ranges' upper bounds).
TASK_PREFIX, REVIEW_SUFFIX = "task:", ":review"
_REVIEW_STATUSES = {"PENDING", "AWAITING_REVIEW", "AWAITING_CONSENSUS_REVIEW"}


def _task_field(thresholder: str, concept: str) -> str:
    task = thresholder[len(TASK_PREFIX) :].removesuffix(REVIEW_SUFFIX)
    review = thresholder.endswith(REVIEW_SUFFIX)
    return f"task {task}: {concept} {'review range upper' if review else 'SUCCESS range lower'}"


def _read_back(data: Any, model: str, concept: str) -> Any:
    """The value the edited text holds at the changed path (None when it has none)."""
    task = model.startswith(TASK_PREFIX)
    ident = model[len(TASK_PREFIX) :].removesuffix(REVIEW_SUFFIX) if task else model
    items = data.get("tasks" if task else "models") if isinstance(data, dict) else None
    item = next((m for m in items or [] if isinstance(m, dict) and m.get("id") == ident), None)
    if not isinstance(item, dict):
        return None
    if not task:
        got = item.get("thresholds")
        return got.get(concept) if isinstance(got, dict) else None
    review = model.endswith(REVIEW_SUFFIX)
    auto = item.get("auto_annotation")
    concepts = auto.get("concepts") if isinstance(auto, dict) else None
    ranges = concepts.get(concept) if isinstance(concepts, dict) else None
    for rng in ranges if isinstance(ranges, list) else []:
        name = str(rng.get("status", "")).upper().removeprefix("ANNOTATION_") if isinstance(rng, dict) else ""
        if (name in _REVIEW_STATUSES) == review and (review or name == "SUCCESS"):
            return rng.get("upper" if review else "lower")
    return None


def overlay_text(changes: Iterable[dict[str, Any]], header: str = "") -> str:
    by_model = _by_model(changes)
    lines = [f"# {h}" if h else "#" for h in header.splitlines()] if header else []
    lines.append("overlay: true  # merged onto its base: -f manifest.yaml -f this file")
    lines.append("models:")
    for model, th in by_model.items():
        lines.append(f"  - id: {json.dumps(model)}")
        lines.append("    thresholds:")
        lines += [f"      {_pair(c, v)}" for c, v in th.items()]
    return "\n".join(lines) + "\n"
