"""Where things are written in a YAML text, for editing it in place without touching a byte around
them (`reconciler tune --write` and `--write-to` an existing overlay).

Contract: `layout(text) -> Node` parses a single-document YAML text (the same parser as the
manifest loader, so what `validate` reads this reads: a tab after `key:`, quoted keys and values)
into a tree of `Node`s that remember, as character offsets into `text`, where each node starts and
where its content ends, its style (flow or block), its anchor, and for a mapping where each key
and any merge key (`<<`) is written. Aliases stay `alias` nodes (never expanded): an edit must not
change a shared anchor behind the reader's back. `aliased` is the set of anchor names some alias
refers to. Raises `ValueError` (one line) on text that does not parse.

`insertion_point(text, node)` is the offset just after the line holding the node's last content
character (the start of the next line, or the end of a text with no final newline), where a line
can be added to a block collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from reconciler.manifest.yamlload import _Loader


@dataclass
class Node:
    kind: str  #: "scalar", "map", "seq" or "alias"
    start: int  #: offset of the node's first character
    line: int  #: 0-based line and column of the node's first character
    col: int
    end: int = 0  #: offset just after the node's last content character
    flow: bool = False  #: a flow collection ({...} / [...]) rather than a block one
    anchor: str | None = None
    value: str = ""  #: a scalar's value (as the parser reads it: quotes removed), an alias's anchor
    plain: bool = False  #: a plain (unquoted) scalar
    items: list[Node] = field(default_factory=list)  #: a sequence's items
    keys: dict[str, Node] = field(default_factory=dict)  #: a mapping's key scalars
    values: dict[str, Node] = field(default_factory=dict)  #: a mapping's values, by key
    merges: list[Node] = field(default_factory=list)  #: a mapping's merge keys (`<<`)

    def text(self, source: str) -> str:
        return source[self.start : self.end]


@dataclass
class Layout:
    root: Node | None
    aliased: set[str]


def layout(text: str) -> Layout:
    """The tree of `text` (see the module docstring)."""
    try:
        events = iter(list(yaml.parse(text, Loader=_Loader)))
    except yaml.YAMLError as err:
        raise ValueError(" ".join(str(err).split())) from None
    aliased: set[str] = set()
    root: Node | None = None
    for ev in events:
        if isinstance(ev, (MappingStartEvent, SequenceStartEvent, ScalarEvent, AliasEvent)):
            root = _node(ev, events, aliased)
            break
    return Layout(root, aliased)


def _node(ev: object, events: object, aliased: set[str]) -> Node:
    start = ev.start_mark  # type: ignore[attr-defined]
    node = Node("scalar", start.index, start.line, start.column, anchor=getattr(ev, "anchor", None))
    if isinstance(ev, AliasEvent):
        node.kind, node.value, node.anchor = "alias", ev.anchor or "", None
        aliased.add(node.value)
        node.end = ev.end_mark.index  # type: ignore[union-attr]
    elif isinstance(ev, ScalarEvent):
        node.value, node.plain = ev.value, ev.implicit[0] and ev.style in (None, "")
        node.end = ev.end_mark.index  # type: ignore[union-attr]
    elif isinstance(ev, SequenceStartEvent):
        node.kind, node.flow, node.end = "seq", bool(ev.flow_style), start.index
        for item in events:  # type: ignore[attr-defined]
            if isinstance(item, SequenceEndEvent):
                if node.flow:
                    node.end = item.end_mark.index  # type: ignore[union-attr]
                break
            child = _node(item, events, aliased)
            node.items.append(child)
            node.end = max(node.end, child.end)
    elif isinstance(ev, MappingStartEvent):
        node.kind, node.flow, node.end = "map", bool(ev.flow_style), start.index
        for kev in events:  # type: ignore[attr-defined]
            if isinstance(kev, MappingEndEvent):
                if node.flow:
                    node.end = kev.end_mark.index  # type: ignore[union-attr]
                break
            key = _node(kev, events, aliased)
            value = _node(next(events), events, aliased)  # type: ignore[call-overload]
            node.end = max(node.end, key.end, value.end)
            if key.kind == "scalar" and key.value == "<<" and key.plain:
                node.merges.append(key)
            elif key.kind == "scalar":
                node.keys.setdefault(key.value, key)
                node.values.setdefault(key.value, value)
    return node


def insertion_point(text: str, node: Node) -> int:
    """Just after the line holding `node`'s last content character (see the module docstring)."""
    newline = text.find("\n", max(node.start, node.end - 1))
    return len(text) if newline < 0 else newline + 1
