"""Exact binomial confidence bounds in pure Python (no scipy): what `reconciler tune` certifies with.

Contract:
- `betainc(a, b, x)`: the regularised incomplete beta function I_x(a, b), a, b > 0, x in [0, 1],
  by its continued fraction (modified Lentz), using the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) where
  the fraction converges slowly. Accurate to ~1e-12 relative for the sizes used here.
- `binom_sf(k, n, p)`: P(X >= k) for X ~ Binomial(n, p) = I_p(k, n - k + 1) (k >= 1).
- `cp_lower(k, n, confidence)` / `cp_upper(...)`: the one-sided Clopper-Pearson bounds for a
  proportion, k successes out of n, each holding with probability >= `confidence`. The lower bound
  is the p with P(X >= k | p) = 1 - confidence, found by bisection on `binom_sf` (monotone in p).
- `certifies(k, n, target, confidence)`: whether the lower bound is >= target, decided without
  bisection: cp_lower(k, n) >= target  <=>  P(X >= k | target) <= 1 - confidence, because
  P(X >= k | p) increases with p. This is the exact one-sided binomial test of
  "precision < target" at level 1 - confidence.
- `min_support(target, confidence)`: the fewest accepted items that can certify `target` at all
  (all of them right): the smallest n with target**n <= 1 - confidence.
- `critical(n, target, alpha)`: the fewest right items out of n that certify `target` at level
  alpha (confidence 1 - alpha), n + 1 when none do: exact (it starts from the normal
  approximation and steps to the exact boundary with `binom_sf`), cached.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from statistics import NormalDist

_EPS = 1e-15
_TINY = 1e-300
_MAX_ITER = 100_000


def _beta_cf(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (without its prefactor), modified Lentz."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_ITER):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if not (a > 0 and b > 0):
        raise ValueError("betainc needs a > 0 and b > 0")
    if not 0.0 <= x <= 1.0:
        raise ValueError("betainc needs 0 <= x <= 1")
    if x == 0.0 or x == 1.0:
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, 1.0 - x) / b


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k), X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return betainc(k, n - k + 1, p)


def _check(k: int, n: int, confidence: float) -> None:
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _bisect(f_increasing: Callable[[float], float], target: float) -> float:
    """The p in [0, 1] where the increasing f(p) crosses `target` (to ~1e-12)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if f_increasing(mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def cp_lower(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson lower bound: P(true p >= bound) >= confidence."""
    _check(k, n, confidence)
    if k == 0:
        return 0.0
    return _bisect(lambda p: binom_sf(k, n, p), 1.0 - confidence)


def cp_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound: P(true p <= bound) >= confidence."""
    _check(k, n, confidence)
    if k == n:
        return 1.0
    return 1.0 - cp_lower(n - k, n, confidence)


def certifies(k: int, n: int, target: float, confidence: float) -> bool:
    """cp_lower(k, n, confidence) >= target, as one exact binomial test (no bisection)."""
    _check(k, n, confidence)
    if k == 0:
        return False
    return binom_sf(k, n, target) <= 1.0 - confidence


def min_support(target: float, confidence: float) -> int:
    """The fewest items that can certify `target` (all right): smallest n, target**n <= 1-confidence."""
    if not 0.0 < target < 1.0 or not 0.0 < confidence < 1.0:
        raise ValueError("target and confidence must be in (0, 1)")
    n = max(1, math.ceil(math.log(1.0 - confidence) / math.log(target) - 1e-12))
    while target**n > 1.0 - confidence:
        n += 1
    while n > 1 and target ** (n - 1) <= 1.0 - confidence:
        n -= 1
    return n


@lru_cache(maxsize=65_536)
def critical(n: int, target: float, alpha: float) -> int:
    """The fewest right items out of n with P(X >= k | target) <= alpha (n + 1: no k certifies)."""
    if n <= 0 or not 0.0 < target < 1.0 or not 0.0 < alpha < 1.0:
        raise ValueError("critical needs n >= 1, target and alpha in (0, 1)")
    z = NormalDist().inv_cdf(1.0 - alpha)
    k = min(n + 1, max(1, math.ceil(n * target + z * math.sqrt(n * target * (1.0 - target)) + 0.5)))
    while k <= n and binom_sf(k, n, target) > alpha:  # the approximation was too lenient
        k += 1
    while k > 1 and binom_sf(k - 1, n, target) <= alpha:  # ... or too strict
        k -= 1
    return k
