"""The comparison's tests against published values (R's fisher.test, wilcox.test) and their
properties."""

from __future__ import annotations

import pytest

from kiloscribe_lab.report.stats import fisher_exact, holm, mann_whitney


@pytest.mark.parametrize(
    ("table", "p"),
    [
        ((3, 4, 1, 4), 0.4857),  # Fisher's tea-tasting: 3 of 4 right vs 1 of 4 right
        ((10, 10, 0, 10), 1.0825e-05),  # 10/10 vs 0/10
        ((0, 10, 2, 10), 0.4737),  # 0/10 vs 2/10: two round-robin runs of one lab
        ((12, 12, 4, 12), 0.001346),
        ((5, 5, 5, 5), 1.0),
        ((0, 0, 3, 4), 1.0),  # nothing counted before: nothing to test
    ],
)
def test_fisher_exact_matches_published_values(table: tuple[int, int, int, int], p: float) -> None:
    assert fisher_exact(*table) == pytest.approx(p, rel=1e-3)


def test_fisher_exact_is_symmetric_and_rejects_non_counts() -> None:
    assert fisher_exact(3, 4, 1, 4) == fisher_exact(1, 4, 3, 4)
    with pytest.raises(ValueError):
        fisher_exact(5, 4, 1, 4)


def test_mann_whitney_against_r() -> None:
    # R: wilcox.test(x, y, exact = FALSE, correct = TRUE) on its own documentation's example
    # (x and y below): W = 58, p-value = 0.1329
    a = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
    b = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
    assert mann_whitney(a, b) == pytest.approx(0.1329, abs=2e-3)
    assert mann_whitney(a, b) == mann_whitney(b, a)


def test_mann_whitney_separates_shifted_samples_and_not_identical_ones() -> None:
    fast = [3.0, 3.5, 4.1, 3.8, 4.4, 3.2, 3.9, 4.0]
    assert mann_whitney(fast, [v + 600 for v in fast]) < 0.001
    assert mann_whitney(fast, list(reversed(fast))) == pytest.approx(1.0)
    assert mann_whitney([5.0] * 6, [5.0] * 6) == 1.0
    assert mann_whitney([], fast) == 1.0


def test_holm_adjusts_in_order_and_stays_monotone() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5]) == [0.5]
    assert holm([]) == []
    assert max(holm([0.9, 0.8, 0.7])) <= 1.0
