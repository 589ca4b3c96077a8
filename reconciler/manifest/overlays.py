"""Overlays: `-f base.yaml -f prod.yaml` merged into one parsed manifest, before variables are
substituted and the schema is checked (a stage of `manifest.py`).

Contract: `merge(docs) -> Document` folds each parsed Document into the ones before it. It never
raises; problems (bad removals) go to the result's `problems`. Every node of the result keeps the
position AND the file it was written in (`Document.sources`), so later stages report overlay
problems at `prod.yaml:line:col` and base problems at `base.yaml:line:col`.

Merge rules (README, "Environments"), overlay onto what came before:
- mapping + mapping: keys merge recursively; a key set to `null` in the overlay removes it;
- a list whose items are mappings with an `id` (concepts, models, workflows, a workflow's nodes):
  merged by id — an overlay item with a known id merges into that item (in place), a new id is
  appended, and ``{id: x, $remove: true}`` removes item x;
- `concept_relations`: merged by content (subject, predicate, object, knowledge_graph_id); an
  overlay relation already present changes nothing, a new one is appended, and the same four
  fields with ``$remove: true`` remove it;
- anything else (scalars, lists of strings such as `inputs`, a type change): the overlay's value
  replaces the earlier one.
Removing something that is not there is an error (it is usually a typo). `$remove` is only
meaningful in an overlay: left in the merged result (or in a single file), it is an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from reconciler.manifest.yamlload import Document, Path

REMOVE = "$remove"
_REL_FIELDS = ("subject", "predicate", "object", "knowledge_graph_id")


def _id_key(item: Any) -> str | None:
    return item["id"] if isinstance(item, dict) and isinstance(item.get("id"), str) else None


def _rel_key(item: Any) -> str | None:
    if not isinstance(item, dict) or "subject" not in item:
        return None
    content = {k: item.get(k, "") for k in _REL_FIELDS}
    return json.dumps(content, sort_keys=True, default=str)


def _keyer(path: Path, base: list[Any], over: list[Any]) -> Callable[[Any], str | None] | None:
    if path and path[-1] == "concept_relations":
        return _rel_key
    if base + over and all(_id_key(x) is not None for x in base + over):
        return _id_key
    return None


class _Merger:
    def __init__(self, out: Document):
        self.out = out

    def copy(self, doc: Document, src: Path, dst: Path, value: Any) -> Any:
        """Record where every node of `value` (at `src` in `doc`) was written; return the value."""
        out = self.out
        if src in doc.positions:
            out.positions[dst] = doc.positions[src]
            out.sources[dst] = doc.file_of(src)
        if src in doc.key_positions:
            out.key_positions[dst] = doc.key_positions[src]
        if isinstance(value, dict):
            return {k: self.copy(doc, src + (k,), dst + (k,), v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.copy(doc, src + (i,), dst + (i,), v) for i, v in enumerate(value)]
        return value

    def merge(self, b: Any, bdoc: Document, bpath: Path, o: Any, odoc: Document, opath: Path, dst: Path) -> Any:
        if isinstance(b, dict) and isinstance(o, dict):
            self.copy(bdoc, bpath, dst, None)  # the mapping itself stays where it was first written
            out: dict[str, Any] = {}
            for k, v in b.items():
                if k not in o:
                    out[k] = self.copy(bdoc, bpath + (k,), dst + (k,), v)
                elif o[k] is not None:
                    out[k] = self.merge(v, bdoc, bpath + (k,), o[k], odoc, opath + (k,), dst + (k,))
            for k, v in o.items():
                if k in b:
                    continue
                if v is None:
                    self.out.problems.append(
                        odoc.problem(
                            opath + (k,), f"cannot remove '{k}': it is not set in the files before this one", at_key=True
                        )
                    )
                    continue
                out[k] = self.copy(odoc, opath + (k,), dst + (k,), v)
            return out
        if isinstance(b, list) and isinstance(o, list):
            keyer = _keyer(opath, b, o)
            if keyer is not None:
                return self.merge_list(b, bdoc, bpath, o, odoc, opath, dst, keyer)
        return self.copy(odoc, opath, dst, o)

    def merge_list(
        self,
        b: list[Any],
        bdoc: Document,
        bpath: Path,
        o: list[Any],
        odoc: Document,
        opath: Path,
        dst: Path,
        keyer: Callable[[Any], str | None],
    ) -> list[Any]:
        self.copy(bdoc, bpath, dst, None)
        # entries: (value, doc, source path, overlay item to merge in or None)
        entries: list[list[Any]] = [[v, bdoc, bpath + (i,), None, None] for i, v in enumerate(b)]
        index: dict[str, int] = {}
        for n, (v, *_rest) in enumerate(entries):
            k = keyer(v)
            if k is not None:
                index.setdefault(k, n)
        removed: set[int] = set()
        for j, item in enumerate(o):
            ipath = opath + (j,)
            remove = isinstance(item, dict) and REMOVE in item
            k = keyer({x: y for x, y in item.items() if x != REMOVE} if remove else item)
            if remove:
                if item[REMOVE] is not True:
                    self.out.problems.append(odoc.problem(ipath + (REMOVE,), f"'{REMOVE}' must be true"))
                    continue
                extra = [x for x in item if x not in (REMOVE, "id") + (_REL_FIELDS if keyer is _rel_key else ())]
                if extra:
                    self.out.problems.append(
                        odoc.problem(
                            ipath + (extra[0],),
                            f"an item with '{REMOVE}' names the item to remove and nothing else: '{extra[0]}'",
                            at_key=True,
                        )
                    )
                    continue
                if k is None or k not in index or index[k] in removed:
                    what = item.get("id") if keyer is _id_key else "this relation"
                    self.out.problems.append(
                        odoc.problem(
                            ipath,
                            f"cannot remove {what!r}: no such item in the files before this one"
                            if keyer is _id_key
                            else "cannot remove this relation: no such relation in the files before this one",
                        )
                    )
                    continue
                removed.add(index[k])
            elif k is not None and k in index and index[k] not in removed:
                entries[index[k]][3:5] = [item, ipath]
            else:
                if k is not None:
                    index[k] = len(entries)
                entries.append([item, odoc, ipath, None, None])
        out: list[Any] = []
        for n, (v, doc, src, over, over_path) in enumerate(entries):
            if n in removed:
                continue
            here = dst + (len(out),)
            if over is None:
                out.append(self.copy(doc, src, here, v))
            else:
                out.append(self.merge(v, doc, src, over, odoc, over_path, here))
        return out


def merge(docs: list[Document]) -> Document:
    """Fold the overlays into the first document (see the module docstring)."""
    out = docs[0]
    problems = list(out.problems)
    for doc in docs[1:]:
        # a fresh Document per fold: list items move, and positions must not be rewritten in place
        nxt = Document(docs[0].filename)
        nxt.data = _Merger(nxt).merge(out.data, out, (), doc.data, doc, (), ())
        problems += nxt.problems
        out = nxt
    out.problems = problems
    leftover_removes(out)
    return out


def leftover_removes(doc: Document) -> None:
    """`$remove` anywhere in a final document: it had nothing to remove from."""

    def walk(value: Any, path: Path) -> None:
        if isinstance(value, dict):
            if REMOVE in value:
                doc.add(
                    path + (REMOVE,),
                    f"'{REMOVE}' only removes items of an earlier file in an overlay (-f base.yaml -f overlay.yaml)",
                    at_key=True,
                )
            for k, v in value.items():
                walk(v, path + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, path + (i,))

    walk(doc.data, ())
