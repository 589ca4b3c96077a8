"""Synthetic recorded predictions and labels with KNOWN calibration, for the tune tests and the
benchmarks. Each (input, concept): the concept is present with probability `prevalence`; its score
is drawn from Beta(8, 2) when present and Beta(2, 8) when absent. So the true precision of
"score > t" is known exactly (`true_precision`), and so is the automation (`true_automation`).
Below: calibration curves with known truth (`CURVES`, `BetaMixture`) and the scan `tune` used
before Learn-then-Test (`old_scan`), for tests/test_tune_certify.py and bench/tune_oracle.py."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reconciler.annotate import stats
from reconciler.annotate.stats import betainc

A1, B1, A0, B0 = 8.0, 2.0, 2.0, 8.0


def true_automation(t: float, prevalence: float) -> float:
    return prevalence * (1 - betainc(A1, B1, t)) + (1 - prevalence) * (1 - betainc(A0, B0, t))


def true_precision(t: float, prevalence: float) -> float:
    p1 = prevalence * (1 - betainc(A1, B1, t))
    p0 = (1 - prevalence) * (1 - betainc(A0, B0, t))
    return p1 / (p1 + p0) if p1 + p0 > 0 else 1.0


def sample(rng: random.Random, n: int, prevalence: float) -> list[tuple[float, bool]]:
    out = []
    for _ in range(n):
        y = rng.random() < prevalence
        out.append((rng.betavariate(A1, B1) if y else rng.betavariate(A0, B0), y))
    return out


def write_files(dirpath: Path, concepts: list[str], n_inputs: int, n_labelled: int, *, seed: int = 0,
                model: str = "park-activity-classifier", prevalence: float = 0.3) -> tuple[Path, Path]:
    """predictions.jsonl (every input) and labels.jsonl (the first `n_labelled`, every concept)."""
    rng = random.Random(seed)
    preds, labels = dirpath / "predictions.jsonl", dirpath / "labels.jsonl"
    with open(preds, "w") as pf, open(labels, "w") as lf:
        for i in range(n_inputs):
            iid = f"in-{i:06d}"
            drawn = {c: sample(rng, 1, prevalence)[0] for c in concepts}
            pf.write(json.dumps({"input": iid, "model": model,
                                 "concepts": {c: round(s, 6) for c, (s, _y) in drawn.items()}}) + "\n")
            if i < n_labelled:
                lf.write(json.dumps({"input": iid, "concepts": {c: y for c, (_s, y) in drawn.items()}}) + "\n")
    return preds, labels


# --- calibration curves with known truth (the certification tests and bench/tune_oracle.py) -------
# Scores are uniform on [0, 1) and an input is right with probability f(score): the true precision
# of "score > t" is then F(t) / (1 - t), F(t) = the integral of f from t to 1.


@dataclass(frozen=True)
class Curve:
    name: str
    f: Callable[[float], float]  # P(right | score)
    F: Callable[[float], float]  # integral of f from t to 1

    def precision(self, t: float) -> float:
        return self.F(t) / (1.0 - t) if t < 1.0 else self.f(1.0)

    def automation(self, t: float) -> float:
        """The share of inputs whose score passes t."""
        return 1.0 - t

    def oracle(self, target: float) -> float | None:
        """The smallest t (to 1e-5) from which the true precision is >= target (None: never)."""
        for i in range(100_000):
            if self.precision(i / 100_000) >= target:
                return i / 100_000
        return None

    def points(self, rng: random.Random, n: int) -> list[tuple[float, bool]]:
        r, f = rng.random, self.f
        scores = [r() for _ in range(n)]
        return [(s, r() < f(s)) for s in scores]


def _noisy_top_F(t: float) -> float:  # f = s below 0.9; 5% of the labels flipped above: 0.05 + 0.9 s
    if t >= 0.9:
        return 0.05 * (1 - t) + 0.45 * (1 - t * t)
    return (0.81 - t * t) / 2 + 0.05 * 0.1 + 0.45 * (1 - 0.81)


CURVES = {
    "s^2": Curve("s^2", lambda s: s * s, lambda t: (1 - t**3) / 3),
    "s": Curve("s", lambda s: s, lambda t: (1 - t * t) / 2),
    "sqrt(s)": Curve("sqrt(s)", math.sqrt, lambda t: (2 / 3) * (1 - t**1.5)),
    # an imperfect top: 97% right from 0.7 up, 30% below
    "step": Curve("step", lambda s: 0.97 if s >= 0.7 else 0.3,
                  lambda t: 0.97 * (1 - max(t, 0.7)) + 0.3 * max(0.0, 0.7 - t)),
    # label noise at the top: f = s, but 5% of the labels above 0.9 are flipped
    "noisy-top": Curve("noisy-top", lambda s: s if s < 0.9 else 0.05 + 0.9 * s, _noisy_top_F),
    # adversarial: 0.949 everywhere, just under a 0.95 target (every certificate at 0.95 is wrong)
    "flat-0.949": Curve("flat-0.949", lambda s: 0.949, lambda t: 0.949 * (1 - t)),
}


def old_scan(points: list[tuple[float, bool]], target: float, confidence: float, step: float = 0.01) -> float | None:
    """The scan `tune` used before Learn-then-Test (for comparisons): every labelled point, the grid
    from the strictest threshold holding at least `min_support` points down, stop at the first failure."""
    from reconciler.annotate.certify import grid
    from reconciler.annotate.tune import Ranked

    ranked, need, best = Ranked(points), stats.min_support(target, confidence), None
    for t in grid(step):
        n, k = ranked.passing("GREATER_THAN", t)
        if n < need:
            continue
        if not stats.certifies(k, n, target, confidence):
            break
        best = t
    return best


class BetaMixture:
    """`sample`'s scores as a `Curve`: present (prevalence) Beta(8, 2), absent Beta(2, 8) -- a dense,
    nearly clean top, as a trained classifier's."""

    def __init__(self, prevalence: float = 0.3):
        self.name, self.prevalence = f"beta-mix-{prevalence:g}", prevalence

    def precision(self, t: float) -> float:
        return true_precision(t, self.prevalence)

    def automation(self, t: float) -> float:
        return true_automation(t, self.prevalence)

    def oracle(self, target: float) -> float | None:
        lo = next((i / 1000 for i in range(1000) if self.precision(i / 1000) >= target), None)
        if lo is None:
            return None
        return next(t for t in (lo - 0.001 + i / 100_000 for i in range(101)) if self.precision(t) >= target)

    def points(self, rng: random.Random, n: int) -> list[tuple[float, bool]]:
        return sample(rng, n, self.prevalence)


class ThinTop(Curve):
    """P(right | score) = score, but scores are u**4 (u uniform): few high scores, as a classifier's
    for a rare concept. Precision of "score > t": (1 - t**1.25) / (5 (1 - t**0.25))."""

    def __init__(self) -> None:
        super().__init__("s, thin top", lambda s: s, lambda t: 0.0)

    def precision(self, t: float) -> float:
        return (1 - t**1.25) / (5 * (1 - t**0.25)) if t < 1.0 else 1.0

    def automation(self, t: float) -> float:
        return 1.0 - t**0.25

    def points(self, rng: random.Random, n: int) -> list[tuple[float, bool]]:
        r = rng.random
        scores = [r() ** 4 for _ in range(n)]
        return [(s, r() < s) for s in scores]


CURVES["s-thin-top"] = ThinTop()
