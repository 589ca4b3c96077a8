"""The guarantee, proven by simulation: on synthetic predictions with KNOWN calibration (scores
Beta(8,2) for present concepts, Beta(2,8) for absent ones, so the precision and automation of any
threshold are known exactly, `tune_synth`), over 200 seeds, the thresholds `certify_points` picks
reach the target precision on the whole population (the limit of a large fresh sample) in at
least the promised share of seeds, and give up little automation against the oracle.

Also: a naive choice (the lowest threshold whose own Clopper-Pearson bound clears the target,
scanning every threshold with no stopping rule) is the invalid procedure the fallback chain
(docs/tune.md) avoids; it is shown here to fail far more often in a hard case, so the test can tell the two apart.
"""

from __future__ import annotations

import random

import pytest
from tune_synth import sample, true_automation, true_precision

from reconciler.annotate import stats
from reconciler.annotate.certify import certify_points, grid

SEEDS = 200
MARGIN = 0.05  # automation the certified threshold may give up against the oracle, on average


def oracle(target: float, prevalence: float, step: float) -> float:
    """The lowest grid threshold from which every stricter one meets the target (precision rises
    with the threshold here, so this is the most automation with the target met)."""
    best = 1.0
    for t in grid(step):
        if true_precision(t, prevalence) < target:
            break
        best = t
    return best


@pytest.mark.parametrize("n,target,confidence,prevalence", [
    (1000, 0.95, 0.95, 0.3),
    (2000, 0.98, 0.90, 0.3),
])
def test_certified_thresholds_hold_in_the_promised_share_of_seeds(n: int, target: float, confidence: float,
                                                                   prevalence: float) -> None:
    step = 0.01
    best = oracle(target, prevalence, step)
    held = gaps = 0.0
    certified = 0
    for seed in range(SEEDS):
        pts = sample(random.Random(seed), n, prevalence)
        choice = certify_points(pts, "GREATER_THAN", target, confidence, step, seed=seed)
        if choice.threshold is None:  # nothing claimed: not a failure of the guarantee
            held += 1
            gaps += true_automation(best, prevalence)
            continue
        certified += 1
        held += true_precision(choice.threshold, prevalence) >= target
        gaps += true_automation(best, prevalence) - true_automation(choice.threshold, prevalence)
    assert held / SEEDS >= confidence, f"the target held in {held}/{SEEDS} seeds, promised {confidence:.0%}"
    assert certified >= 0.9 * SEEDS  # the test is about real certificates, not abstentions
    assert gaps / SEEDS <= MARGIN, f"mean automation lost against the oracle: {gaps / SEEDS:.3f}"


def naive(pts: list[tuple[float, bool]], target: float, confidence: float, step: float) -> float | None:
    """INVALID: every threshold's own bound, the loosest that clears the target."""
    best = None
    for t in grid(step):
        acc = [ok for s, ok in pts if s > t]
        if acc and stats.certifies(sum(acc), len(acc), target, confidence):  # = its own CP bound >= target
            best = t
    return best


def test_the_naive_max_over_thresholds_breaks_the_promise_where_the_scan_keeps_it() -> None:
    # uniform scores, each right with probability 0.89 whatever its score: no threshold meets 0.9,
    # so every certificate is wrong; the naive choice gets many chances to be fooled, the scan one
    target, confidence, step, n, rate = 0.9, 0.9, 0.01, 1000, 0.89
    naive_bad = scan_bad = 0
    for seed in range(SEEDS):
        rng = random.Random(seed)
        pts = [(rng.random(), rng.random() < rate) for _ in range(n)]
        naive_bad += naive(pts, target, confidence, step) is not None
        scan_bad += certify_points(pts, "GREATER_THAN", target, confidence, step, seed=seed).threshold is not None
    assert scan_bad / SEEDS <= 1 - confidence
    assert naive_bad > scan_bad and naive_bad / SEEDS > 1 - confidence, (naive_bad, scan_bad)


def test_population_formulas_match_a_large_fresh_sample() -> None:
    """The 'fresh sample' above is the exact population value; check it against 200,000 draws."""
    pts = sample(random.Random(12345), 200_000, 0.3)
    for t in (0.3, 0.5, 0.7):
        acc = [ok for s, ok in pts if s > t]
        assert len(acc) / len(pts) == pytest.approx(true_automation(t, 0.3), abs=0.005)
        assert sum(acc) / len(acc) == pytest.approx(true_precision(t, 0.3), abs=0.005)
