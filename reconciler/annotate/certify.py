"""The certified choice of `reconciler tune`: Learn-then-Test with a fallback chain (docs/tune.md).

Contract: `certify(learn, test, comparator, target, confidence, step, min_support) -> Choice`, where
`learn` and `test` count the labelled points (score, right) of two disjoint random parts of the
labelled inputs (`tune` splits them by input id, 10% to learn); `certify_points` does the split
itself, for simulations. The promise, for i.i.d. labelled inputs and ANY calibration curve:

    P(true precision of the returned threshold < target) <= alpha = 1 - confidence,

where the precision of t is P(right | score passes t) on the population the labels came from.

How (every choice below is made from the learning part and the SIZE of the testing part only, so
given the learning part the tests on the testing part are exact and the budgets below add up):
- Candidate thresholds are the grid 1 - step, 1 - 2 step, ..., 0 (`grid`), tested strictest first.
- For each grid threshold the learning part predicts the chance that its test passes on the testing
  part (`_pass_chance`: how many testing points it will accept, and how many of them will be wrong,
  from the learning counts with Jeffreys posteriors; a heuristic, it only steers where the budget
  goes).
- The START is the strictest threshold whose predicted pass chance at half the budget is >= 0.9
  (else the most promising one, if >= 0.5). The TOP is the strictest threshold expected to accept
  at least twice the fewest testing points that could pass. When that grid point lies more than
  0.02 of score below where the testing support first suffices (thin data on a coarse grid) and its
  predicted pass chance is below 0.3 (the wrong rate taken from it or from a looser threshold, the
  lower: a clean top borrows from the clean labels below it), the TOP is instead one exact test of
  the few highest-scored testing points (the "top-inputs" test).
- The error budget alpha goes half to the TOP and half to the START when the START lies below the
  TOP, else all to the TOP.
- The testing part runs the fallback procedure (Wiens 2003) down the grid: each threshold is tested
  (exact one-sided binomial test = Clopper-Pearson lower bound >= target) at its own budget plus the
  budget of the threshold above it if that one passed; a failure stops the hand-down, not the scan.
  With budgets summing to alpha this controls the chance of ANY wrong certificate at alpha under any
  dependence; the single top-inputs test takes its own budget out of that sum (a union bound).
- The answer is the loosest certified threshold whose precision on all the labels (learning and
  testing) also has its Clopper-Pearson bound at `confidence` at or above the target, as the report's
  table shows it (else the loosest certified one), with the budget (level) it was certified at. Any
  certified threshold may be answered: the budget bounds the chance that ANY certificate is wrong.

The top-inputs test is exact because its threshold depends only on the score tau of the m-th
highest testing point (m fixed by the learning part): given tau, the testing points above it are
i.i.d. draws from the population above tau, so the number right among those above the threshold
(tau rounded up to 4 decimals) is binomial with that threshold's true precision.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import NormalDist
from typing import Protocol

from reconciler.annotate import stats
from reconciler.core.modeltypes import f32

LEARN_SHARE = 0.1  # the share of the labelled inputs that chooses where to test
START_PASS = 0.9  # a learned start: predicted pass chance at least this ...
START_MIN = 0.5  # ... else the most promising threshold, if its chance is at least this
TOP_SUPPORT = 2.0  # the grid TOP: expected testing support at least this x the fewest that can pass
TOP_GAP = 0.02  # ... unless it lies this much score below where the support first suffices
TOP_PASS = 0.3  # ... and its predicted pass chance is below this
TOP_EXTRA = 2  # the top-inputs test takes this many more points than the fewest that can pass
TOP_DECIMALS = 4  # ... and rounds its threshold up to this many decimals
PROCEDURE = "learn-then-test, fallback chain"


class Counts(Protocol):
    """Labelled points of one concept: `tune.Ranked`."""

    def __len__(self) -> int: ...

    def passing(self, comparator: str, t: float) -> tuple[int, int]: ...

    def top_score(self, m: int) -> float | None: ...


def grid(step: float) -> list[float]:
    """Candidate thresholds, strictest first: 1 - step, 1 - 2 step, ..., 0 (fixed before any label)."""
    n = int(round(1.0 / step))
    vals = [round(1.0 - k * step, 10) for k in range(1, n + 1)]
    return [v for v in vals if v >= 0.0] + ([0.0] if vals and vals[-1] > 0 else [])


@dataclass(frozen=True)
class Position:
    """Where the learning part put a share of the error budget."""

    threshold: float | None  # None: the top-inputs test (its threshold comes from the testing scores)
    level: float
    kind: str  # "chain" (a grid threshold of the fallback chain) | "top-inputs"
    inputs: int = 0  # top-inputs: how many of the highest-scored testing points it takes


@dataclass(frozen=True)
class Test:
    threshold: float
    level: float
    support: int  # testing points accepted
    correct: int  # ... of them right
    passed: bool
    kind: str = "chain"


@dataclass(frozen=True)
class Choice:
    threshold: float | None  # None: nothing certified
    tested: int  # tests run on the testing part
    reason: str  # "certified" | "insufficient" | "not-certified"
    need: int = 0  # the fewest accepted points that could pass at the whole budget
    level: float = 0.0  # the budget the threshold was certified at
    support: int = 0
    correct: int = 0
    lower: float | None = None  # Clopper-Pearson lower bound at confidence 1 - level (testing part)
    kind: str = ""  # how the threshold was certified: "chain" | "top-inputs"
    learning: int = 0
    testing: int = 0
    positions: tuple[Position, ...] = ()
    tests: tuple[Test, ...] = field(default=(), repr=False)

    @property
    def failed(self) -> list[Test]:
        return [t for t in self.tests if not t.passed]


# --- the learning part's predictions (heuristics: they steer the budget, never the validity) -------

_Z = (-1.2816, -0.5244, 0.0, 0.5244, 1.2816)  # deciles 10, 30, 50, 70, 90 of a standard normal


def _wrong_cdf(w: int, m: int, a: float, b: float) -> float:
    """P(W <= w), W ~ BetaBinomial(m, a, b): wrong points among m when the wrong rate ~ Beta(a, b)."""
    if w < 0:
        return 0.0
    if w >= m:
        return 1.0
    mu = a / (a + b)
    if m * mu > 40 and w > 40:  # many wrong ones: the normal approximation with its overdispersion
        var = m * mu * (1 - mu) * (a + b + m) / (a + b + 1)
        return 0.5 * math.erfc(-(w + 0.5 - m * mu) / math.sqrt(2 * var))
    term = math.exp(math.lgamma(a + b) + math.lgamma(m + b) - math.lgamma(b) - math.lgamma(m + a + b))
    total, mode = term, m * mu
    for j in range(w):
        term *= (m - j) / (j + 1) * (j + a) / (m - j - 1 + b)
        total += term
        if j > mode and term < 1e-12 * total:  # past the mode the terms only shrink: the rest is nothing
            break
    return min(1.0, total)


def _critical(m: int, target: float, level: float) -> int:
    """`stats.critical`, exact up to 400 points and by the normal approximation beyond (a prediction)."""
    if m <= 400:
        return stats.critical(m, target, level)
    z = _z(level)
    return min(m + 1, math.ceil(m * target + z * math.sqrt(m * target * (1 - target)) + 0.5))


@lru_cache(maxsize=256)
def _z(level: float) -> float:
    return NormalDist().inv_cdf(1.0 - level)


def _wrong_rates(counts: Sequence[tuple[int, int]]) -> list[tuple[float, float]]:
    """Per grid threshold (strictest first), a Beta posterior of its wrong rate from the learning
    counts: the Jeffreys posterior of that threshold or of a looser one, whichever has the lowest
    mean (a stricter threshold is taken to be at least as precise as a looser one: a few clean
    learning points at the top then borrow from the many below instead of a flat prior)."""
    out: list[tuple[float, float]] = []
    best = (0.5, 0.5)
    for nl, kl in reversed(counts):
        cand = (nl - kl + 0.5, kl + 0.5)
        if nl and (out == [] or cand[0] / (nl + 1.0) < best[0] / (best[0] + best[1])):
            best = cand
        out.append(best)
    return out[::-1]


def _pass_chance(
    nl: int, wrong: tuple[float, float], n_learn: int, n_test: int, target: float, level: float, floor: int
) -> float:
    """The predicted chance that the test of a threshold passes at `level` on the testing part, from
    its learning support nl and a posterior Beta(a, b) of its wrong rate: its testing support at five
    quantiles of the accepted share's posterior, the wrong count among them beta-binomial."""
    if nl == 0 or n_learn == 0:
        return 0.0
    a, b = wrong
    right = b / (a + b)
    if right + 3.0 * math.sqrt(right * (1.0 - right) / (a + b)) < target:  # hopeless: skip the sums
        return 0.0
    base = (nl + 0.5) / (n_learn + 1.0)
    total = 0.0
    for z in _Z:
        m = int(round(n_test * min(1.0, base * math.exp(z / math.sqrt(nl + 0.5)))))
        if m < floor:
            continue
        total += _wrong_cdf(m - _critical(m, target, level), m, a, b)
    return total / len(_Z)


@dataclass(frozen=True)
class Plan:
    weights: dict[float, float]  # grid threshold -> its own level in the fallback chain
    top_inputs: Position | None  # the single top-inputs test, if the budget went there
    start: float | None
    positions: tuple[Position, ...]


def plan(learn: Counts, n_test: int, comparator: str, target: float, confidence: float, step: float, min_support: int) -> Plan:
    """Where the budget goes (module docstring), from the learning part and the testing size only."""
    alpha = 1.0 - confidence
    g = grid(step)
    n_learn = len(learn)
    scale = n_test / n_learn if n_learn else 0.0

    def need(level: float) -> int:
        return max(stats.min_support(target, 1.0 - level), min_support)

    counts = [learn.passing(comparator, t) for t in g]
    half = alpha / 2  # a learned start gets half the budget
    chances = [
        (t, _pass_chance(nl, (nl - kl + 0.5, kl + 0.5), n_learn, n_test, target, half, need(half)))
        for t, (nl, kl) in zip(g, counts, strict=True)
    ]
    pooled = _wrong_rates(counts)
    likely = [t for t, p in chances if p >= START_PASS]
    start = max(likely) if likely else None
    if start is None and chances:
        t_best, p_best = max(chances, key=lambda x: (x[1], x[0]))
        start = t_best if p_best >= START_MIN else None

    def top_for(level: float) -> tuple[str, float | None]:
        """("chain", the grid TOP) or ("top-inputs", None)."""
        m = need(level)
        top = next((t for t, (nl, _) in zip(g, counts, strict=True) if nl * scale >= TOP_SUPPORT * m), None)
        if not n_learn:
            return "top-inputs", None
        rank = math.ceil((m + TOP_EXTRA) / scale) if scale else 0
        reached = learn.top_score(rank) if rank > 0 else None  # where the testing support first suffices
        if top is not None and (reached is None or reached - top <= TOP_GAP):
            return "chain", top
        if top is not None:
            i = g.index(top)
            if _pass_chance(counts[i][0], pooled[i], n_learn, n_test, target, level, m) >= TOP_PASS:
                return "chain", top
        return "top-inputs", None

    share = 0.5
    kind, top = top_for(share * alpha)
    if start is None or (kind == "chain" and top is not None and start >= top):
        share = 1.0
        kind, top = top_for(alpha)
    weights: dict[float, float] = {}
    positions: list[Position] = []
    top_inputs = None
    if kind == "chain" and top is not None:
        weights[top] = share * alpha
        positions.append(Position(top, share * alpha, "chain"))
    else:
        top_inputs = Position(None, share * alpha, "top-inputs", need(share * alpha) + TOP_EXTRA)
        positions.append(top_inputs)
    if start is not None and share < 1.0:
        weights[start] = weights.get(start, 0.0) + (1.0 - share) * alpha
        positions.append(Position(start, (1.0 - share) * alpha, "chain"))
    return Plan(weights, top_inputs, start, tuple(positions))


# --- the tests on the testing part ------------------------------------------------------------------


def _round_up(tau: float, comparator: str) -> float:
    """The smallest TOP_DECIMALS-decimal threshold that no score <= tau passes (as float32)."""
    unit = 10.0**-TOP_DECIMALS
    t = round(math.ceil(tau / unit - 1e-9) * unit, TOP_DECIMALS)
    strict = comparator == "GREATER_THAN_OR_EQUAL"
    while f32(t) < f32(tau) or (strict and f32(t) <= f32(tau)):
        t = round(t + unit, TOP_DECIMALS)
    return t


def certify(
    learn: Counts,
    test: Counts,
    comparator: str,
    target: float,
    confidence: float,
    step: float = 0.01,
    min_support: int = 0,
) -> Choice:
    """The certified threshold of the points counted in `test`, where to test chosen from `learn`."""
    need = max(stats.min_support(target, confidence), min_support)
    n_test = len(test)
    loosest = grid(step)[-1]
    if test.passing(comparator, loosest)[0] < need:
        return Choice(None, 0, "insufficient", need, learning=len(learn), testing=n_test)
    p = plan(learn, n_test, comparator, target, confidence, step, min_support)
    tests: list[Test] = []
    if p.top_inputs is not None:
        tau = test.top_score(min(p.top_inputs.inputs, n_test))
        if tau is not None:
            t = _round_up(tau, comparator)
            n, k = test.passing(comparator, t)
            level = p.top_inputs.level
            ok = n >= min_support and n > 0 and stats.certifies(k, n, target, 1.0 - level)
            tests.append(Test(t, level, n, k, ok, "top-inputs"))
    carried, lowest_weight = 0.0, min(p.weights, default=1.0)
    for t in grid(step):
        if carried <= 0.0 and t < lowest_weight:
            break  # nothing left to hand down, no budget below
        level = p.weights.get(t, 0.0) + carried
        if level <= 0.0:
            continue
        n, k = test.passing(comparator, t)
        ok = n >= min_support and n > 0 and stats.certifies(k, n, target, 1.0 - level)
        tests.append(Test(t, level, n, k, ok))
        carried = level if ok else 0.0
    found = [x for x in tests if x.passed]
    if not found:
        return Choice(
            None,
            len(tests),
            "not-certified",
            need,
            learning=len(learn),
            testing=n_test,
            positions=p.positions,
            tests=tuple(tests),
        )
    best = _answer(found, learn, test, comparator, target, confidence)
    return Choice(
        best.threshold,
        len(tests),
        "certified",
        need,
        level=best.level,
        support=best.support,
        correct=best.correct,
        lower=stats.cp_lower(best.correct, best.support, 1.0 - best.level),
        kind=best.kind,
        learning=len(learn),
        testing=n_test,
        positions=p.positions,
        tests=tuple(tests),
    )


def _answer(found: list[Test], learn: Counts, test: Counts, comparator: str, target: float, confidence: float) -> Test:
    """The loosest certified threshold whose precision on ALL the labels used to choose also has its
    Clopper-Pearson bound at `confidence` at or above the target (what the report's table shows), else
    the loosest certified one. Any certified threshold may be answered: the chance that ANY certificate
    is wrong is what the budget bounds."""
    ranked = sorted(found, key=lambda x: (x.threshold, -x.level))
    for x in ranked:
        n_learn, k_learn = learn.passing(comparator, x.threshold)
        if stats.certifies(x.correct + k_learn, x.support + n_learn, target, confidence):
            return x
    return ranked[0]


def split_indices(n: int, seed: int, share: float = LEARN_SHARE) -> tuple[list[int], list[int]]:
    """A seeded random split of range(n): (learning, testing)."""
    order = list(range(n))
    random.Random(f"learn/{seed}").shuffle(order)
    cut = int(round(n * share))
    return sorted(order[:cut]), sorted(order[cut:])


def certify_points(
    points: Sequence[tuple[float, bool]] | Iterable[tuple[float, bool]],
    comparator: str,
    target: float,
    confidence: float,
    step: float = 0.01,
    min_support: int = 0,
    seed: int = 0,
) -> Choice:
    """`certify` on (score, is_right) points, split at random (seeded) into learning and testing."""
    from reconciler.annotate.tune import Ranked

    pts = list(points)
    li, ti = split_indices(len(pts), seed)
    return certify(Ranked(pts[i] for i in li), Ranked(pts[i] for i in ti), comparator, target, confidence, step, min_support)
