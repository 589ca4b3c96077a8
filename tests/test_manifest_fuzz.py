"""Robustness: whatever the bytes, loading ends in a State or in located problems, never a crash."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.core.errors import ManifestError
from reconciler.manifest import load as manifest

EXAMPLE = (Path(__file__).resolve().parent.parent / "examples/auto-annotation/manifest.yaml").read_text()
LINES = EXAMPLE.splitlines(keepends=True)


def _load(data: bytes) -> None:
    try:
        manifest.load_text(data.decode("utf-8", "surrogateescape"), "fuzz.yaml")
    except ManifestError as err:
        assert err.problems
        for p in err.problems:
            assert p.line >= 1 and p.column >= 1 and p.message and "\n" not in p.message


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    _load(data)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(LINES) - 1), st.sampled_from(
    ["", "  ", "- ", ": ", "x", "[", "{", "&a ", "*a", "<<: ", "\t", "0.5", "null", "'"])), max_size=4))
def test_mutated_example(edits: list[tuple[int, str]]) -> None:
    lines = list(LINES)
    for index, text in edits:  # replace, prefix or cut a line: near-valid manifests hit deep paths
        lines[index] = text + lines[index][len(text) % 7:]
    _load("".join(lines).encode())
