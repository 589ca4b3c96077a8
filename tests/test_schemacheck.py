"""The fast schema check (`reconciler.manifest.schemacheck`) agrees with jsonschema: it says "valid" exactly
when jsonschema finds no error, on every manifest the project has (examples, golden cases, the
invalid corpus) and on random mutations of them; and it understands every keyword of the schema,
so valid manifests really take the fast path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.manifest import load as manifest
from reconciler.manifest import schemacheck
from reconciler.manifest.yamlload import load_yaml

pytestmark = pytest.mark.slow  # `pytest -m "not slow"` skips this file

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted([*ROOT.glob("examples/*/manifest.yaml"), *ROOT.glob("tests/cases/*/desired.yaml"),
                *ROOT.glob("tests/manifests/invalid/*.yaml")])
INLINED = manifest._inline(manifest.schema(), manifest.schema()["$defs"])
SLOW = jsonschema.Draft202012Validator(INLINED)
FAST = schemacheck.compile_schema(INLINED)


def _data(path: Path) -> Any:
    doc = load_yaml(path.read_bytes(), str(path))
    return None if doc.problems else doc.data


DATA = [(p, d) for p in FILES if (d := _data(p)) is not None]


def test_every_schema_keyword_is_understood() -> None:
    known = schemacheck._KNOWN | schemacheck._ANNOTATIONS | {"if", "then", "else"}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            assert set(node) <= known, set(node) - known
            for key, value in node.items():
                if key == "properties":
                    for sub in value.values():
                        walk(sub)
                elif key not in ("enum", "const", "required", "default", "examples"):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(INLINED)


def test_the_corpus_is_there() -> None:
    assert len(DATA) > 60
    valid = [p for p, d in DATA if SLOW.is_valid(d)]
    assert len(valid) >= 10 and any("examples" in str(p) for p in valid)


@pytest.mark.parametrize("path, data", DATA, ids=[str(p.relative_to(ROOT)) for p, _ in DATA])
def test_agrees_with_jsonschema_on_every_manifest(path: Path, data: Any) -> None:
    assert FAST(data) == SLOW.is_valid(data)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.floats(-1, 2, allow_nan=False),
                    st.sampled_from(["", "x", "cat", "a__b", "café", "GREATER_THAN", "SUCCESS", "concept-thresholder",
                                     "annotation-writer", "embedding-classifier", "x" * 49, "a b", "1"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from(["id", "type", "x", "name"]),
                                                                       inner, max_size=3)), max_leaves=6)


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, here + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, here + (i,))
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_agrees_with_jsonschema_on_mutations(data: st.DataObject) -> None:
    valid = [d for _, d in DATA if SLOW.is_valid(d)]
    doc = copy.deepcopy(data.draw(st.sampled_from(valid)))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        if not path:
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        op = data.draw(st.sampled_from(["set", "delete", "add"]))
        if op == "set":
            parent[path[-1]] = data.draw(VALUES)
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["extra", "id", "type", "thresholds", "output_info", "concepts",
                                              "annotation_status", "comparator", "knowledge_graph_id"]))] = \
                data.draw(VALUES)
        else:
            parent.append(data.draw(VALUES))
    assert FAST(doc) == SLOW.is_valid(doc)


def test_an_unknown_keyword_means_fall_back_never_accept() -> None:
    check = schemacheck.compile_schema({"type": "object", "dependentRequired": {"a": ["b"]}})
    assert check({"a": 1, "b": 2}) is False
