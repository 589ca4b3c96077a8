"""The pure-Python binomial bounds `tune` certifies with, against known values (closed forms and
published Clopper-Pearson intervals), and the equivalence its scan relies on."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.annotate import stats


@pytest.mark.parametrize("a,b,x,want", [
    (1, 1, 0.3, 0.3),  # uniform CDF
    (2, 3, 0.4, 0.5248),  # = P(Bin(4, .4) >= 2) = 1 - .6**4 - 4*.4*.6**3
    (0.5, 0.5, 0.3, 2 / math.pi * math.asin(math.sqrt(0.3))),  # arcsine distribution
    (5, 1, 0.7, 0.7 ** 5),  # I_x(a, 1) = x**a
    (1, 4, 0.2, 1 - 0.8 ** 4),  # I_x(1, b) = 1 - (1-x)**b
    (30, 40, 0.0, 0.0), (30, 40, 1.0, 1.0),
])
def test_betainc_known_values(a: float, b: float, x: float, want: float) -> None:
    assert stats.betainc(a, b, x) == pytest.approx(want, rel=1e-10, abs=1e-14)


@given(st.integers(1, 60), st.integers(0, 60), st.floats(0.001, 0.999))
@settings(max_examples=200, deadline=None)
def test_binom_sf_equals_the_direct_sum(k: int, extra: int, p: float) -> None:
    n = k + extra
    direct = sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k, n + 1))
    assert stats.binom_sf(k, n, p) == pytest.approx(direct, rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("k,n,conf,lo,hi", [
    (5, 10, 0.975, 0.187086, 0.812914),  # the textbook two-sided 95% interval for 5/10
    (0, 10, 0.975, 0.0, 0.308497),  # 1 - 0.025**(1/10)
    (10, 10, 0.975, 0.691503, 1.0),
    (1, 20, 0.975, 0.001265, 0.248733),
])
def test_clopper_pearson_known_intervals(k: int, n: int, conf: float, lo: float, hi: float) -> None:
    assert stats.cp_lower(k, n, conf) == pytest.approx(lo, abs=2e-6)
    assert stats.cp_upper(k, n, conf) == pytest.approx(hi, abs=2e-6)


def test_all_right_lower_bound_is_closed_form() -> None:
    for n in (1, 7, 149, 5000):
        assert stats.cp_lower(n, n, 0.95) == pytest.approx(0.05 ** (1 / n), rel=1e-9)


@given(st.integers(0, 400), st.integers(0, 400), st.floats(0.5, 0.999), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
@settings(max_examples=300, deadline=None)
def test_certifies_is_the_lower_bound_test(k: int, extra: int, target: float, conf: float) -> None:
    n = k + extra
    if n == 0:
        return
    lower = stats.cp_lower(k, n, conf)
    if abs(lower - target) > 1e-9:  # away from the knife edge the two must agree
        assert stats.certifies(k, n, target, conf) == (lower >= target)


def test_min_support() -> None:
    assert stats.min_support(0.98, 0.95) == 149  # 0.98**148 > 0.05 >= 0.98**149
    assert 0.98 ** 148 > 0.05 >= 0.98 ** 149
    assert stats.min_support(0.9, 0.95) == 29
    for t, c in [(0.98, 0.95), (0.9, 0.99), (0.5, 0.5)]:
        n = stats.min_support(t, c)
        assert stats.certifies(n, n, t, c) and not stats.certifies(n - 1, n - 1, t, c)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError):
        stats.cp_lower(5, 3)
    with pytest.raises(ValueError):
        stats.cp_lower(1, 3, 1.0)
    with pytest.raises(ValueError):
        stats.betainc(0, 1, 0.5)
