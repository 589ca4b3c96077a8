"""Safe YAML -> plain data with line:col for every node (the first stage of `manifest.py`).

Contract: `load_yaml(data: bytes, filename) -> Document` never raises for bad input; it returns a
`Document` whose `problems` list says what is wrong (each a `errors.Problem`), and whose `data` is
plain JSON-like Python (dict / list / str / int / float / bool / None) when the text could be read.

Why this builds its own tree from parser events instead of calling `yaml.safe_load`:
- every node keeps its start mark (`Document.pos(path)`), and mapping keys theirs (`key_pos`), so
  schema and semantic problems point at `line:col`;
- duplicate keys are an error (yaml's constructor silently keeps the last one);
- hostile input is refused early: aliases are expanded as independent copies but the number of
  nodes they add is capped (a "billion laughs" bomb stops at the cap), nesting is capped, non-finite
  numbers and custom tags are refused; byte-level limits (size, UTF-8) are checked before parsing;
- the C parser (libyaml) is used when available, which keeps a 10,000-concept manifest fast.

Scalars resolve as in YAML 1.1 safe loading (ints, floats, bools, null), except that timestamps stay
strings (the manifest is JSON-shaped), exponent floats without a dot (`1e-3`) are numbers as in
YAML 1.2 and JSON, and mapping keys are always their source text (so `on:` is the
key "on", not True). Merge keys (`<<: *base`) are supported; explicit keys win over merged ones.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from reconciler.core.errors import Problem

MAX_BYTES = 10 * 1024 * 1024  #: files above this are refused before parsing
MAX_DEPTH = 64  #: nesting of mappings/sequences
MAX_ALIAS_NODES = 100_000  #: nodes that alias expansion may add, in total, per document

Path = tuple[str | int, ...]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_resolver = yaml.resolver.Resolver()
_constructor = yaml.constructor.SafeConstructor()
_STR, _INT, _FLOAT = "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_BOOL, _NULL = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL, "tag:yaml.org,2002:timestamp"}
_EXP_FLOAT = re.compile(r"^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$")
#: characters YAML forbids in a stream (tab, LF, CR and NEL are fine)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]")
_MAP_TAGS = {None, "!", "tag:yaml.org,2002:map"}
_SEQ_TAGS = {None, "!", "tag:yaml.org,2002:seq"}


def _mark(mark: Any) -> Any:
    """An event's position: the parser always sets it (typed Optional by the stubs)."""
    assert mark is not None
    return mark


def pointer(path: Path) -> str:
    """JSON pointer for a path: ("models", 2, "a/b") -> "/models/2/a~1b"."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


@dataclass
class Document:
    """One parsed manifest: its data, where each node and key starts, and the problems found."""

    filename: str
    data: Any = None
    #: 0-based (line, column) of the node at each path (aliased copies map to the alias itself)
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    #: 0-based (line, column) of the key whose value is at each path
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    #: file each located path was written in, when not `filename` (documents merged from overlays)
    sources: dict[Path, str] = field(default_factory=dict)
    #: paths holding a variable with no value, substituted by a placeholder (`validate`), and its name
    placeholders: dict[Path, str] = field(default_factory=dict)

    def _located(self, path: Path) -> Path:
        p = tuple(path)
        while p and p not in self.positions:
            p = p[:-1]
        return p

    def pos(self, path: Path) -> tuple[int, int]:
        """1-based line, column of the node at `path`, or of its nearest located ancestor."""
        line, col = self.positions.get(self._located(path), (0, 0))
        return line + 1, col + 1

    def file_of(self, path: Path) -> str:
        """The file the node at `path` (or its nearest located ancestor) was written in."""
        return self.sources.get(self._located(path), self.filename)

    def key_pos(self, path: Path) -> tuple[int, int]:
        """1-based line, column of the key of `path` (falls back to the node itself)."""
        kp = self.key_positions.get(tuple(path))
        return (kp[0] + 1, kp[1] + 1) if kp else self.pos(path)

    def problem(self, path: Path, message: str, at_key: bool = False) -> Problem:
        line, col = self.key_pos(path) if at_key else self.pos(path)
        return Problem(self.file_of(path), line, col, message, pointer(path))

    def add(self, path: Path, message: str, at_key: bool = False) -> None:
        self.problems.append(self.problem(path, message, at_key))


class _Stop(Exception):
    """Abort tree building: the problem is already recorded and nothing after it is trustworthy."""


def _decode(data: bytes, doc: Document) -> str | None:
    if len(data) > MAX_BYTES:
        doc.problems.append(Problem(doc.filename, 1, 1, f"file is larger than the {MAX_BYTES // 2**20} MiB limit for a manifest"))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        line_start = data.rfind(b"\n", 0, err.start) + 1
        col = len(data[line_start : err.start].decode("utf-8", "replace")) + 1
        doc.problems.append(
            Problem(doc.filename, line, col, f"not valid UTF-8 (byte 0x{data[err.start]:02x}); save the file as UTF-8")
        )
        return None
    text = text.removeprefix("\ufeff")  # a BOM is harmless; drop it so columns stay right
    bad = _CONTROL.search(text)
    if bad:  # checked here so the message does not depend on which YAML parser is installed
        line = text.count("\n", 0, bad.start()) + 1
        col = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        doc.problems.append(
            Problem(doc.filename, line, col, f"control character U+{ord(bad.group()):04X} is not allowed in YAML")
        )
        return None
    return text


def _scalar(ev: ScalarEvent, doc: Document, path: Path) -> Any:
    tag = ev.tag
    if tag in (None, "!"):
        if not ev.implicit[0]:  # quoted, or non-plain: always a string
            return ev.value
        tag = _resolver.resolve(yaml.ScalarNode, ev.value, ev.implicit)
        if tag == _STR and _EXP_FLOAT.match(ev.value):
            tag = _FLOAT  # YAML 1.1 reads 1e-3 and 5e2 as strings; everyone means numbers
    if tag not in _SCALAR_TAGS:
        _fail(doc, path, ev, f"unsupported YAML tag {_short(ev.tag)}")
    if tag == _STR or tag == "tag:yaml.org,2002:timestamp":
        return ev.value
    node = yaml.ScalarNode(tag, ev.value, _mark(ev.start_mark), _mark(ev.end_mark))
    try:
        if tag == _INT:
            return _constructor.construct_yaml_int(node)
        if tag == _FLOAT:
            value = _constructor.construct_yaml_float(node)
            if not math.isfinite(value):
                doc.add(path, f"non-finite number {ev.value!r} is not allowed")
            return value
        if tag == _BOOL:
            return _constructor.construct_yaml_bool(node)
        return None
    except (ValueError, KeyError, yaml.YAMLError):
        _fail(doc, path, ev, f"invalid {tag.rsplit(':', 1)[-1]} value {ev.value!r}")


def _short(tag: str | None) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag and tag.startswith("tag:yaml.org,2002:") else str(tag)


def _fail(doc: Document, path: Path, ev: Any, message: str) -> None:
    doc.positions.setdefault(path, (ev.start_mark.line, ev.start_mark.column))
    doc.add(path, message)
    raise _Stop


def _count(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(_count(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_count(v) for v in value)
    return 1


class _Builder:
    """Turns the parser's event stream into plain data plus positions, one document at most."""

    def __init__(self, doc: Document, events: Any):
        self.doc = doc
        self.events = events
        self.anchors: dict[str, Any] = {}
        self.sizes: dict[str, int] = {}
        self.alias_nodes = 0

    def value(self, ev: Any, path: Path, depth: int) -> Any:
        pos = self.doc.positions
        pos[path] = (ev.start_mark.line, ev.start_mark.column)
        if isinstance(ev, ScalarEvent):
            out = _scalar(ev, self.doc, path)
        elif isinstance(ev, AliasEvent):
            if ev.anchor not in self.anchors:
                _fail(self.doc, path, ev, f"unknown alias *{ev.anchor}")
            self.alias_nodes += self.sizes[ev.anchor or ""]
            if self.alias_nodes > MAX_ALIAS_NODES:
                _fail(
                    self.doc,
                    path,
                    ev,
                    f"aliases expand to more than {MAX_ALIAS_NODES} nodes (a YAML alias bomb?); write the content out instead",
                )
            return copy.deepcopy(self.anchors[ev.anchor or ""])  # independent copy: no shared mutable state
        elif isinstance(ev, (MappingStartEvent, SequenceStartEvent)):
            if depth >= MAX_DEPTH:
                _fail(self.doc, path, ev, f"nesting deeper than {MAX_DEPTH} levels")
            out = self.mapping(ev, path, depth + 1) if isinstance(ev, MappingStartEvent) else self.sequence(ev, path, depth + 1)
        else:  # pragma: no cover - the parser guarantees a node event here
            _fail(self.doc, path, ev, f"unexpected YAML event {type(ev).__name__}")
        anchor = getattr(ev, "anchor", None)
        if anchor:
            self.anchors[anchor] = out
            self.sizes[anchor] = _count(out)
        return out

    def sequence(self, start: SequenceStartEvent, path: Path, depth: int) -> list[Any]:
        if start.tag not in _SEQ_TAGS:
            _fail(self.doc, path, start, f"unsupported YAML tag {_short(start.tag)}")
        out: list[Any] = []
        for ev in self.events:
            if isinstance(ev, SequenceEndEvent):
                return out
            out.append(self.value(ev, path + (len(out),), depth))
        raise _Stop  # pragma: no cover - truncated stream raises a parser error first

    def mapping(self, start: MappingStartEvent, path: Path, depth: int) -> dict[str, Any]:
        if start.tag not in _MAP_TAGS:
            _fail(self.doc, path, start, f"unsupported YAML tag {_short(start.tag)}")
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        first: dict[str, int] = {}
        for kev in self.events:
            if isinstance(kev, MappingEndEvent):
                for k, v in merged.items():
                    out.setdefault(k, v)
                return out
            if not isinstance(kev, ScalarEvent):
                self.doc.positions.setdefault(path, (_mark(start.start_mark).line, _mark(start.start_mark).column))
                _fail(self.doc, path + ("?",), kev, "mapping keys must be plain scalars")
            key = kev.value
            kpath = path + (key,)
            vev = next(self.events)
            if key == "<<" and kev.implicit[0] and kev.tag is None:
                self._merge(self.value(vev, kpath, depth), merged, kpath)
                continue
            if key in out:
                self.doc.problems.append(
                    Problem(
                        self.doc.filename,
                        kev.start_mark.line + 1,
                        kev.start_mark.column + 1,
                        f"duplicate key '{key}' (first defined on line {first[key]})",
                        pointer(kpath),
                    )
                )
                self.value(vev, kpath + ("#dup",), depth)  # parse and drop: the first one stays
                continue
            first[key] = kev.start_mark.line + 1
            self.doc.key_positions[kpath] = (kev.start_mark.line, kev.start_mark.column)
            out[key] = self.value(vev, kpath, depth)
        raise _Stop  # pragma: no cover

    def _merge(self, value: Any, merged: dict[str, Any], path: Path) -> None:
        sources = value if isinstance(value, list) else [value]
        if not all(isinstance(s, dict) for s in sources):
            self.doc.add(path, "a merge key '<<' takes a mapping or a list of mappings")
            return
        for src in sources:
            for k, v in src.items():
                merged.setdefault(k, v)


def load_yaml(data: bytes, filename: str) -> Document:
    """Parse one manifest's bytes. Problems (never exceptions) report anything unreadable."""
    doc = Document(filename)
    text = _decode(data, doc)
    if text is None:
        return doc
    events = iter(yaml.parse(text, Loader=_Loader))
    try:
        root_seen = False
        for ev in events:
            if isinstance(ev, DocumentStartEvent):
                if root_seen:
                    doc.problems.append(
                        Problem(
                            filename,
                            _mark(ev.start_mark).line + 1,
                            _mark(ev.start_mark).column + 1,
                            "more than one YAML document; a manifest is one document",
                        )
                    )
                    break
                root_seen = True
                builder = _Builder(doc, events)
                doc.data = builder.value(next(events), (), 0)
    except _Stop:
        doc.data = None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = "; ".join(s for s in (err.context, err.problem) if s)
        doc.problems.append(Problem(filename, line, col, f"YAML syntax error: {what}"))
        doc.data = None
    except yaml.YAMLError as err:  # reader errors (e.g. control characters) carry a position only
        line, col = _reader_position(text, err)
        reason = getattr(err, "reason", None) or str(err).splitlines()[0]
        doc.problems.append(Problem(filename, line, col, f"YAML error: {reason}"))
        doc.data = None
    if doc.problems:
        return doc
    if not root_seen or doc.data is None:
        doc.problems.append(Problem(filename, 1, 1, "empty manifest: expected a mapping with at least 'app'"))
    elif not isinstance(doc.data, dict):
        kind = "a list" if isinstance(doc.data, list) else "a single value"
        line, col = doc.pos(())
        doc.problems.append(
            Problem(filename, line, col, f"the top level must be a mapping (app, concepts, models, ...), not {kind}")
        )
        doc.data = None
    return doc


def _reader_position(text: str, err: yaml.YAMLError) -> tuple[int, int]:
    position = getattr(err, "position", None)
    if not isinstance(position, int):
        return 1, 1
    line = text.count("\n", 0, position) + 1
    return line, position - (text.rfind("\n", 0, position) + 1) + 1
