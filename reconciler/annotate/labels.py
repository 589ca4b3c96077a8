"""Reviewed labels: the ground truth `reconciler tune` measures precision against (`record --labels`
writes it). One JSON object per line::

    {"input": "park-001", "concepts": {"walker": true, "runner": false}}

- `input`: an input id (or image URL), as in the recorded predictions;
- `concepts`: concept id -> true (the input shows it) / false (it does not).

How a concept ABSENT from an input's line is read is the caller's choice (`Labels.label`): by
default as false -- a labeller who looked at the input and did not name the concept says it is not
there, which is also the cautious reading for a precision guarantee (it can only add wrong
answers) -- or, with `absent="unknown"`, as not labelled (the input does not count for that
concept). An input with no line is unlabelled for every concept.

The first line may instead say where the labels came from (`record --dataset` writes it)::

    {"source": {"dataset": "park-eval", "dataset_version": "8f0c..."}}

which `Labels.source_info` holds (`tune` reports it).

Blank lines are skipped. Anything else is a `LabelsError`: one line `file:line: message` (the first
problem, and how many more there are); an input given twice is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reconciler.annotate.predictions import read_named
from reconciler.core.errors import ReconcilerError

Absent = Literal["negative", "unknown"]
ABSENT_READINGS: tuple[str, ...] = ("negative", "unknown")


class LabelsError(ReconcilerError):
    """A labels file could not be read; `str()` is one `file:line: message` line."""

    def __init__(self, file: str, line: int, message: str, more: int = 0):
        self.file, self.line, self.message = file, line, message
        tail = f" (and {more} more problem{'s' if more != 1 else ''})" if more else ""
        super().__init__(f"{file}:{line}: {message}{tail}")


@dataclass
class Labels:
    source: str = "<memory>"
    by_input: dict[str, dict[str, bool]] = field(default_factory=dict)
    line_of: dict[str, int] = field(default_factory=dict)
    #: where the labels came from, when the file says (its first line: ``{"source": {...}}``)
    source_info: dict[str, str] = field(default_factory=dict)

    def label(self, input_id: str, concept: str, absent: Absent = "negative") -> bool | None:
        """True / False, or None when the input (or, reading absent as unknown, the concept) has no label."""
        got = self.by_input.get(input_id)
        if got is None:
            return None
        if concept in got:
            return got[concept]
        return False if absent == "negative" else None

    def concepts(self) -> set[str]:
        return {c for cs in self.by_input.values() for c in cs}


def load(path: str | Path) -> Labels:
    return parse(read_named(path, "labels"), str(path))


def parse(text: str, source: str = "<labels>") -> Labels:
    out = Labels(source)
    problems: list[tuple[int, str]] = []
    by_input, line_of = out.by_input, out.line_of
    first = True
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw or raw.isspace():
            continue
        if first and raw.lstrip().startswith('{"source"'):
            first = False
            try:
                out.source_info = _parse_source(raw)
            except ValueError as err:
                problems.append((n, str(err)))
            continue
        first = False
        try:
            iid, concepts = _parse_line(raw)
        except ValueError as err:
            problems.append((n, str(err)))
            continue
        if iid in by_input:
            problems.append((n, f"input {iid!r} is already labelled on line {line_of[iid]}"))
            continue
        by_input[iid] = concepts
        line_of[iid] = n
    if problems:
        line, msg = problems[0]
        raise LabelsError(source, line, msg, len(problems) - 1)
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a label")


_KEYSET = frozenset({"input", "concepts"})
_BOOL = frozenset({bool})


def _parse_line(raw: str) -> tuple[str, dict[str, bool]]:
    try:
        obj = json.loads(raw, parse_constant=_no_constant)
    except ValueError as err:
        msg = str(err) if "label" in str(err) else f"not valid JSON ({err.args[0].split(':')[0]})"
        raise ValueError(msg) from None
    if not isinstance(obj, dict):
        raise ValueError('expected a JSON object {"input", "concepts"}')
    if not obj.keys() <= _KEYSET:
        unknown = sorted(set(obj) - _KEYSET)
        raise ValueError(f"unknown key {unknown[0]!r} (expected input, concepts)")
    if not isinstance(obj.get("input"), str) or not obj["input"].strip():
        raise ValueError("'input' must be a non-empty string")
    concepts = obj.get("concepts")
    if not isinstance(concepts, dict):
        raise ValueError("'concepts' must be an object {concept_id: true|false}")
    # one check over the whole line (C loops); a line that fails it is walked for the message
    if "" in concepts or not _BOOL.issuperset(map(type, concepts.values())):
        for cid, v in concepts.items():
            if not cid:
                raise ValueError("a concept id is empty")
            if not isinstance(v, bool):
                raise ValueError(f"concept {cid!r}: label must be true or false, got {json.dumps(v)}")
    # `concepts` is the fresh dict json.loads made for this line: nothing else holds it, no copy
    return obj["input"].strip(), concepts


def _parse_source(raw: str) -> dict[str, str]:
    try:
        obj = json.loads(raw, parse_constant=_no_constant)
    except ValueError:
        raise ValueError("the source line is not valid JSON") from None
    info = obj.get("source") if isinstance(obj, dict) and obj.keys() == {"source"} else None
    if not isinstance(info, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in info.items()):
        raise ValueError('the source line must be {"source": {"dataset": ID, "dataset_version": ID}}')
    return dict(info)


def dumps_source(info: dict[str, str]) -> str:
    return json.dumps({"source": info})


def dumps_line(input_id: str, concepts: dict[str, bool]) -> str:
    return json.dumps({"input": input_id, "concepts": concepts}, sort_keys=False)
