"""Recorded predictions: the outputs of models that neither the sandbox nor `simulate` can run.

clarifai/main's recognition and embedding models and trained classifiers (embedding-classifier,
visual-classifier, ...) are not computed locally. Their outputs come ONLY from a JSONL file, one
line per (input, model)::

    {"input": "img-1", "model": "general-image-recognition", "concepts": {"ai_l8TKp2h5": 0.97}}

- `input`: the input's id, or its image URL (the sandbox looks an input up by id, then by URL);
- `model`: a model id (`park-activity-classifier`), or `USER/APP/MODEL` for another app's model
  (`clarifai/main/general-image-recognition`); a bare id matches a node's model of that id
  whatever app owns it, a full reference only that app's model;
- `concepts`: concept id -> score in [0, 1]. Concepts of another app's model are that app's
  concepts (clarifai/main's `ai_...` ids), so they reach this app only through concept relations.

Blank lines are skipped. Anything else is a `PredictionsError`: one line `file:line: message` (the
first problem, and how many more there are). Scores are stored as float32, as the API returns
them, so the sandbox and `simulate` compare exactly the same numbers with the thresholds.

No rule ever invents an output: an (input, model) pair with no line outputs no concepts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import mul, truediv
from pathlib import Path
from typing import Any

from reconciler.core.errors import ReconcilerError
from reconciler.core.fileio import read_regular_text
from reconciler.core.modeltypes import f32_all
from reconciler.core.state import ConceptRef, ModelRef

_KEYS = ("input", "model", "concepts")


class PredictionsError(ReconcilerError):
    """A predictions file could not be read; `str()` is one `file:line: message` line."""

    def __init__(self, file: str, line: int, message: str, more: int = 0):
        self.file, self.line, self.message = file, line, message
        tail = f" (and {more} more problem{'s' if more != 1 else ''})" if more else ""
        super().__init__(f"{file}:{line}: {message}{tail}")


@dataclass(frozen=True, slots=True)
class Prediction:
    input: str
    model: str  # as written: "MODEL" or "USER/APP/MODEL"
    concept_ids: tuple[str, ...]  # lines naming the same concepts in the same order share one tuple
    scores: tuple[float, ...]  # float32 values (`f32`), one per concept id
    line: int = 0

    @property
    def concepts(self) -> tuple[tuple[str, float], ...]:
        """(concept id, score) pairs, as written."""
        return tuple(zip(self.concept_ids, self.scores, strict=True))


@dataclass
class Predictions:
    """Recorded outputs, keyed by (input key, model key)."""

    source: str = "<memory>"
    lines: list[Prediction] = field(default_factory=list)
    _index: dict[tuple[str, str], Prediction] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for p in self.lines:
            self._index[(p.input, p.model)] = p

    def inputs(self) -> list[str]:
        """Every input key, in first-seen order: `simulate` runs the workflow once per key."""
        return list(dict.fromkeys(p.input for p in self.lines))

    def models(self) -> list[str]:
        """Every model key the lines name, in first-seen order."""
        return list(dict.fromkeys(p.model for p in self.lines))

    @staticmethod
    def model_keys(model: ModelRef) -> list[str]:
        """The `model` values a line may use for `model`: ``USER/APP/MODEL`` for another app's
        model, then the bare id."""
        return ([f"{model.user_id}/{model.app_id}/{model.id}"] if model.external else []) + [model.id]

    def lookup(self, input_keys: Sequence[str], model: ModelRef) -> dict[ConceptRef, float] | None:
        """The recorded concept scores of `model` for the first of `input_keys` that has a line
        (full `USER/APP/MODEL` reference first, then the bare id); None when nothing is recorded.
        Concepts are owned by the model's app: `ConceptRef(id)` for this app's models."""
        model_keys = self.model_keys(model)
        for key in input_keys:
            p = self.line(key, model_keys)
            if p is not None:
                return {ConceptRef(cid, model.user_id, model.app_id): v for cid, v in zip(p.concept_ids, p.scores, strict=True)}
        return None

    def lines_for(self, input_keys: Sequence[str], model: ModelRef) -> list[Prediction | None]:
        """Per input key, the line `lookup` would use for `model` (None: nothing recorded); one
        C-level pass per model key instead of a call per input."""
        found: list[Prediction | None] = [None] * len(input_keys)
        for mk in self.model_keys(model):
            got = list(map(self._index.get, zip(input_keys, repeat(mk))))
            found = [f if f is not None else g for f, g in zip(found, got, strict=True)] if any(found) else got
        return [None if not k else f for k, f in zip(input_keys, found, strict=True)] if "" in input_keys else found

    def line(self, input_key: str, model_keys: Sequence[str]) -> Prediction | None:
        """The line recorded for one input and a model (its `model_keys`, first match wins)."""
        if not input_key:
            return None
        for mk in model_keys:
            p = self._index.get((input_key, mk))
            if p is not None:
                return p
        return None


def read_named(path: str | Path, what: str) -> str:
    """The text of the `what` file (predictions, labels) at `path`; one line when it is missing,
    unreadable or not UTF-8. A FIFO or device is refused, not waited on."""
    p = str(path)
    try:
        return read_regular_text(p)
    except FileNotFoundError:
        raise ReconcilerError(f"{p}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ReconcilerError(f"{p}: cannot read {what}: {getattr(err, 'strerror', None) or err}") from None


def load(path: str | Path) -> Predictions:
    return parse(read_named(path, "predictions"), str(path))


def parse(text: str, source: str = "<predictions>") -> Predictions:
    problems: list[tuple[int, str]] = []
    lines: list[Prediction] = []
    seen: dict[tuple[str, str], int] = {}
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per distinct list of concept ids
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw or raw.isspace():
            continue
        try:
            iid, model, ids, scores = _parse_line(raw)
        except ValueError as err:
            problems.append((n, str(err)))
            continue
        key = (iid, model)
        if key in seen:
            problems.append((n, f"input {iid!r} and model {model!r} are already recorded on line {seen[key]}"))
            continue
        seen[key] = n
        lines.append(Prediction(iid, model, shared.setdefault(ids, ids), scores, n))
    if problems:
        line, msg = problems[0]
        raise PredictionsError(source, line, msg, len(problems) - 1)
    return Predictions(source, lines)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a prediction can have")


_KEYSET = frozenset(_KEYS)
_NUMBER_TYPES = frozenset({int, float})  # what JSON numbers parse to (bool is neither)
_FLOAT_TYPE = frozenset({float})


def _parse_line(raw: str) -> tuple[str, str, tuple[str, ...], tuple[float, ...]]:
    """(input, model, concept ids, their float32 scores) of one line; ValueError: the line's problem."""
    try:
        obj = json.loads(raw, parse_constant=_no_constant)
    except ValueError as err:
        msg = str(err) if "prediction" in str(err) else f"not valid JSON ({err.args[0].split(':')[0]})"
        raise ValueError(msg) from None
    if not isinstance(obj, dict):
        raise ValueError('expected a JSON object {"input", "model", "concepts"}')
    if not obj.keys() <= _KEYSET:
        unknown = sorted(set(obj) - _KEYSET)
        raise ValueError(f"unknown key {unknown[0]!r} (expected input, model, concepts)")
    for k in ("input", "model"):
        if not isinstance(obj.get(k), str) or not obj[k].strip():
            raise ValueError(f"{k!r} must be a non-empty string")
    model = obj["model"].strip()
    parts = model.split("/")
    if len(parts) not in (1, 3) or not all(parts):
        raise ValueError(f"model {model!r}: expected MODEL_ID or USER/APP/MODEL_ID")
    concepts = obj.get("concepts")
    if not isinstance(concepts, dict):
        raise ValueError("'concepts' must be an object {concept_id: score}")
    values = concepts.values()
    # one check over the whole line (C loops); only a line that fails it is walked concept by
    # concept, for the message naming the first bad one
    if values and ("" in concepts or not _NUMBER_TYPES.issuperset(map(type, values)) or not 0 <= min(values) <= max(values) <= 1):
        _check_concepts(concepts)
    scores = tuple(values) if _six_places(values) else tuple(f32_all(list(values)))
    return obj["input"].strip(), model, tuple(concepts), scores


def _six_places(values: Iterable[Any]) -> bool:
    """Whether every score (checked to be in [0, 1]) is a float written with at most 6 decimal
    places, i.e. is already what `f32` gives back: such a number has at most 6 significant digits,
    and no other number of at most 6 digits rounds to the same float32 (`modeltypes.f32`), so f32
    returns it unchanged. Tested with C-level maps (tens of ns a score, not a call of f32 each):
    m = round(x * 1e6) gives x back as m / 1e6 (a correctly rounded division: x is the double
    nearest to m / 10**6)."""
    vals = list(values)
    if not _FLOAT_TYPE.issuperset(map(type, vals)):
        return False
    return list(map(truediv, map(round, map(mul, vals, repeat(1e6))), repeat(1e6))) == vals


def _check_concepts(concepts: dict[Any, Any]) -> None:
    """Raise ValueError for the first concept whose id or score is bad."""
    for cid, v in concepts.items():
        if not cid:
            raise ValueError("a concept id is empty")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
            raise ValueError(f"concept {cid!r}: score must be a number, got {json.dumps(v)}")
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"concept {cid!r}: score {v} is outside [0, 1]")
