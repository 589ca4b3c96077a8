"""The YAML stage on its own: positions, scalar resolution, aliases and merge keys, hostile input."""

from __future__ import annotations

import pytest

from reconciler.manifest import yamlload
from reconciler.manifest.yamlload import load_yaml, pointer


def _msgs(doc: yamlload.Document) -> list[str]:
    return [f"{p.line}:{p.column}: {p.message}" for p in doc.problems]


def test_positions_of_nodes_and_keys() -> None:
    doc = load_yaml(b"app:\n  id: demo\nmodels:\n  - id: m\n    thresholds: {cat: 0.5}\n", "f.yaml")
    assert doc.problems == []
    assert doc.pos(("app", "id")) == (2, 7)
    assert doc.key_pos(("app", "id")) == (2, 3)
    assert doc.pos(("models", 0)) == (4, 5)
    assert doc.pos(("models", 0, "thresholds", "cat")) == (5, 23)
    assert doc.key_pos(("models", 0, "thresholds", "cat")) == (5, 18)
    # an unknown path falls back to its nearest located ancestor
    assert doc.pos(("models", 0, "nope", 3)) == (4, 5)


def test_scalars_resolve_like_safe_load_but_keys_stay_text() -> None:
    doc = load_yaml(b"on: yes\nn: ~\ni: 0x1F\nf: 1.5e3\ng: 5e-1\nq: '12'\nt: 2024-01-01\ns: !!str 7\nv: 1e\n", "f")
    assert doc.data == {"on": True, "n": None, "i": 31, "f": 1500.0, "g": 0.5, "q": "12", "t": "2024-01-01",
                        "s": "7", "v": "1e"}


def test_aliases_are_independent_copies_and_merge_keys_work() -> None:
    doc = load_yaml(b"base: &b {team: vision, tier: 1}\nx: *b\ny:\n  <<: *b\n  tier: 2\n", "f")
    assert doc.problems == []
    assert doc.data["x"] == {"team": "vision", "tier": 1}
    assert doc.data["x"] is not doc.data["base"]
    assert doc.data["y"] == {"team": "vision", "tier": 2}  # explicit keys win over merged ones


def test_duplicate_keys_are_errors_even_in_flow_style() -> None:
    assert _msgs(load_yaml(b"a: {k: 1, k: 2}\n", "f")) == ["1:11: duplicate key 'k' (first defined on line 1)"]


def test_complex_keys_and_unknown_aliases_are_refused() -> None:
    assert _msgs(load_yaml(b"? [a, b]\n: 1\n", "f")) == ["1:3: mapping keys must be plain scalars"]
    assert _msgs(load_yaml(b"a: *nope\n", "f"))[0].startswith("1:4: ")


@pytest.mark.parametrize("text", [b"a: .inf\n", b"a: -.inf\n", b"a: 1e400\n", b"a: 1.0e+400\n"])
def test_non_finite_numbers_are_refused(text: bytes) -> None:
    assert "non-finite number" in _msgs(load_yaml(text, "f"))[0]


def test_alias_bomb_stops_at_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlload, "MAX_ALIAS_NODES", 50)
    doc = load_yaml(b"a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: &b [*a, *a, *a, *a, *a, *a]\n", "f")
    assert _msgs(doc) == ["2:28: aliases expand to more than 50 nodes (a YAML alias bomb?); write the content out instead"]
    assert doc.data is None


def test_nesting_limit_is_exact() -> None:
    ok = b"a: " + b"[" * (yamlload.MAX_DEPTH - 1) + b"]" * (yamlload.MAX_DEPTH - 1) + b"\n"
    assert load_yaml(ok, "f").problems == []
    deep = b"a: " + b"[" * yamlload.MAX_DEPTH + b"]" * yamlload.MAX_DEPTH + b"\n"
    assert _msgs(load_yaml(deep, "f")) == [f"1:{3 + yamlload.MAX_DEPTH}: nesting deeper than 64 levels"]


def test_bom_is_accepted_and_bad_utf8_located() -> None:
    assert load_yaml(b"\xef\xbb\xbfa: 1\n", "f").data == {"a": 1}
    assert _msgs(load_yaml(b"a: 1\nb: \xc3\xa9\xff\n", "f")) == [
        "2:5: not valid UTF-8 (byte 0xff); save the file as UTF-8"]


def test_pointer_escapes() -> None:
    assert pointer(("models", 2, "a/b~c")) == "/models/2/a~1b~0c"
