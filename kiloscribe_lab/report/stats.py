"""The tests a comparison of two runs rests on (pure, standard library only).

A lab run counts about ten connects per target and network, and a round-robin balancer sends
each to a backend by turn: two runs of the same lab differ by chance alone. A change is called
only when a test says chance is an unlikely explanation, with the p-values of all the numbers
compared in one report adjusted together (Holm), so comparing twenty numbers does not find one
"change" in every run.

- ``fisher_exact``: two-sided Fisher's exact test on a 2×2 table (connects that worked and
  that failed, before and after); exact at any sample size, which a two-proportion z-test is not.
- ``mann_whitney``: two-sided Mann–Whitney U test (normal approximation with tie and
  continuity corrections) on two sets of latencies; no assumption about their distribution.
- ``holm``: Holm–Bonferroni adjusted p-values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

ALPHA = 0.05
MIN_LATENCY_SAMPLES = 4  # per run: fewer and the U test's approximation means nothing


def fisher_exact(ok_a: int, n_a: int, ok_b: int, n_b: int) -> float:
    """Two-sided p-value that ``ok_a`` of ``n_a`` and ``ok_b`` of ``n_b`` share one success rate:
    the probability, with the margins fixed, of a table at most as likely as the one seen."""
    if not (0 <= ok_a <= n_a and 0 <= ok_b <= n_b):
        raise ValueError(f"not counts of a 2x2 table: {ok_a}/{n_a}, {ok_b}/{n_b}")
    ok = ok_a + ok_b
    total = n_a + n_b
    if total == 0:
        return 1.0
    denominator = math.comb(total, ok)

    def weight(x: int) -> int:  # the hypergeometric probability of x, times the denominator
        return math.comb(n_a, x) * math.comb(n_b, ok - x)

    seen = weight(ok_a)
    lo, hi = max(0, ok - n_b), min(ok, n_a)
    # Integer weights: "at most as likely" is exact, no floating-point tolerance needed.
    extreme = sum(w for x in range(lo, hi + 1) if (w := weight(x)) <= seen)
    return min(1.0, extreme / denominator)


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value that ``a`` and ``b`` come from one distribution (Mann–Whitney U)."""
    n_a, n_b = len(a), len(b)
    if n_a == 0 or n_b == 0:
        return 1.0
    values = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks: list[float] = [0.0] * len(values)
    ties = 0.0
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1][0] == values[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    rank_a = sum(r for r, (_, group) in zip(ranks, values, strict=True) if group == 0)
    u = rank_a - n_a * (n_a + 1) / 2
    n = n_a + n_b
    variance = n_a * n_b / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return 1.0  # every value the same
    z = max(0.0, abs(u - n_a * n_b / 2) - 0.5) / math.sqrt(variance)
    return min(1.0, math.erfc(z / math.sqrt(2)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
