"""`modeltypes.f32` takes short cuts for speed (millions of recorded scores pass through it), and
`predictions.parse` skips it for lines whose scores are written with at most 6 decimals. Both must
give exactly what the plain definition gives: float32, then the shortest decimal (1 to 9 digits)
that round-trips through float32."""

from __future__ import annotations

import json
import math
import random
import struct

from reconciler.annotate import predictions as P
from reconciler.annotate.predictions import _six_places
from reconciler.core.modeltypes import f32, f32_all


def reference_f32(x: float) -> float:
    """The definition, digit count by digit count."""
    v = struct.unpack("<f", struct.pack("<f", float(x)))[0]
    for digits in range(1, 10):
        s = float(f"{v:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", s))[0] == v:
            return s
    return v


def _same(a: float, b: float) -> bool:
    return type(a) is type(b) and (a == b and math.copysign(1, a) == math.copysign(1, b) or (a != a and b != b))


def _samples(rng: random.Random, n: int) -> list[float]:
    out: list[float] = []
    for _ in range(n):
        k = rng.randrange(6)
        if k == 0:
            out.append(round(rng.random(), rng.randrange(1, 12)))  # short decimals in [0, 1]
        elif k == 1:
            out.append(struct.unpack("<f", struct.pack("<I", rng.getrandbits(32)))[0])  # any float32, subnormals too
        elif k == 2:
            d, e = rng.randrange(1, 10), rng.randrange(-46, 39)  # d-digit decimals of every magnitude
            out.append(float(f"{rng.randrange(10 ** (d - 1), 10**d)}e{e - d}"))
        elif k == 3:
            out.append(float(f"{f32(rng.random()):.{rng.randrange(1, 10)}g}"))  # what the API returns, cut
        elif k == 4:
            out.append(math.nextafter(rng.randrange(1_000_001) / 1e6, rng.choice([0.0, 2.0])))  # near misses
        else:
            out.append(rng.choice([0.0, -0.0, 1.0, 1e-4, 0.99999999, 1e-37, 1e37, 2.0**-126, 2.0**-149, 5e-324, 0.5, -1.0]))
    return [x for x in out if not math.isinf(x) and abs(x) < 3.4e38]


def test_f32_is_the_definition() -> None:
    rng = random.Random(14)
    for x in _samples(rng, 200_000) + [0, 1, 7, True, False]:
        assert _same(f32(x), reference_f32(x)), x
    for m in range(0, 1_000_001, 7):  # decimals with 6 places, the short cut's case
        assert _same(f32(m / 1e6), reference_f32(m / 1e6)), m
    for x in (math.nan, math.inf, -math.inf):  # outside the short cuts: as the definition
        assert _same(f32(x), reference_f32(x))


def test_f32_all_is_f32_of_each() -> None:
    """Per list, as `predictions.parse` calls it: lists of API-like scores, of mixed magnitudes,
    with zeros, subnormals, ints, infinities and NaN (those lists fall back to f32 per value)."""
    rng = random.Random(32)
    lists = [[f32(rng.random()) for _ in range(rng.randrange(1, 60))] for _ in range(2000)]
    lists += [_samples(rng, rng.randrange(1, 30)) for _ in range(3000)]
    lists += [[0.5, 0.0], [0.25, 1e-40], [1, 0.1234567], [True, 0.7], [math.inf, 0.5], [math.nan, 0.5], [3.4e38, 0.5], []]
    for values in lists:
        got, want = f32_all(values), [reference_f32(x) for x in values]
        assert len(got) == len(want) and all(_same(a, b) for a, b in zip(got, want, strict=True)), values


def test_six_places_means_f32_leaves_the_score_alone() -> None:
    for m in range(0, 1_000_001, 3):
        assert _six_places([m / 1e6])
    rng = random.Random(6)
    hits = 0
    for x in _samples(rng, 200_000):
        if 0.0 <= x <= 1.0 and _six_places([x]):
            hits += 1
            assert _same(f32(x), x), x
    assert hits > 10_000
    assert not _six_places([0.5, 1])  # an int is turned into a float by f32: not left alone
    assert not _six_places([0.1234567])


def test_parsed_scores_are_f32_of_the_written_ones() -> None:
    rng = random.Random(7)
    lines, expect = [], {}
    for i in range(3000):
        if rng.random() < 0.5:
            values = [round(rng.random(), 6) for _ in range(20)]  # all short: the whole line skips f32
        else:
            values = [x for x in _samples(rng, 20) if 0.0 <= x <= 1.0] + rng.choice([[], [0, 1], [1e-40]])
        concepts = {f"c{j}": v for j, v in enumerate(values)}
        lines.append(json.dumps({"input": f"in-{i}", "model": "m", "concepts": concepts}))
        expect[f"in-{i}"] = [(c, reference_f32(v)) for c, v in concepts.items()]
    parsed = P.parse("\n".join(lines), "p.jsonl")
    assert len(parsed.lines) == 3000
    for p in parsed.lines:
        want = expect[p.input]
        assert [c for c, _v in p.concepts] == [c for c, _v in want]
        assert all(_same(a, b) for (_c, a), (_d, b) in zip(p.concepts, want, strict=True)), p.input


def test_bad_scores_name_the_first_bad_concept_in_one_line() -> None:
    """The per-line check runs over the whole line at once; a bad line is then walked concept by
    concept, so the message still names the first bad one (a huge integer is out of range, not a
    crash)."""
    cases = {
        '"a": 0.5, "b": 1e400, "c": true': "concept 'b': score must be a number, got Infinity",
        '"a": 0.5, "b": true': "concept 'b': score must be a number, got true",
        '"a": "0.5"': 'concept \'a\': score must be a number, got "0.5"',
        '"a": 0.5, "b": -0.25, "c": 2': "concept 'b': score -0.25 is outside [0, 1]",
        '"a": 1' + "0" * 400: "concept 'a': score 1" + "0" * 400 + " is outside [0, 1]",
        '"a": 0.5, "": 0.5': "a concept id is empty",
    }
    for body, message in cases.items():
        line = '{"input": "i", "model": "m", "concepts": {' + body + "}}"
        try:
            P.parse("\n" + line, "p.jsonl")
        except P.PredictionsError as err:
            assert str(err) == f"p.jsonl:2: {message}"
        else:
            raise AssertionError(f"accepted {line}")
