"""The verdict rule of the small-scale claims (docs/results.md, "Claims at small scale"), fixed before the runs.

A claim compares a figure (NMI, ACC, CAM mass, ...) of method A with method B, one value per seed:
"A > B" (direction `greater`), "A < B" (`less`), or "A comparable or superior to B" (`not_less`, with a
margin). The difference of the means d = mean(A) - mean(B) gets Welch's 95% confidence interval
(unequal variances, Welch-Satterthwaite degrees of freedom; the interval of scipy's Welch t-test):

    d +- t_{0.975, df} * se,   se = sqrt(s_A^2 / n_A + s_B^2 / n_B)   (sample variances, ddof=1)

and the verdict is, for `greater` (for `less` swap A and B):
- holds              the interval lies above 0 (Welch's two-sided test at 5% finds A > B);
- does not hold      the interval lies below 0 (the test finds A < B);
- inconclusive       the interval contains 0, or either side has fewer than 2 seeds (no variance):
                     "inconclusive at n seeds".
For `not_less` with margin m ("comparable": within m of B or above): holds when the interval lies above
-m, does not hold when it lies below -m, inconclusive otherwise. A claim of several comparisons (e.g.
"either weight alone is below both") holds when every one holds, does not hold when any does not hold,
and is inconclusive otherwise. The number of seeds (the smaller side) is written with every verdict.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

ALPHA = 0.05
DIRECTIONS = ("greater", "less", "not_less")
MIN_SEEDS = 5  # the seeds a cell is planned with (launch/reproduce.sh small --seeds=5)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One comparison's figures: d = mean(A) - mean(B), its Welch 95% interval, p (two-sided), n per side."""

    direction: str
    margin: float
    n_a: int
    n_b: int
    diff: float | None
    low: float | None
    high: float | None
    p: float | None
    verdict: str  # holds | does not hold | inconclusive

    @property
    def n(self) -> int:
        return min(self.n_a, self.n_b)

    def text(self) -> str:
        if self.diff is None or self.low is None:
            return f"{self.verdict} at {self.n} seeds"
        return (f"{self.verdict} at {self.n} seeds (d = {self.diff:+.3f}, 95% CI [{self.low:+.3f}, {self.high:+.3f}], "
                f"Welch p = {self.p:.3g})")


def welch_interval(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> tuple[float, float, float, float]:
    """(d, low, high, p): mean(a) - mean(b), its Welch (1 - alpha) interval and the two-sided Welch p-value.

    Needs >= 2 values per side. Zero variance on both sides gives the degenerate interval [d, d] (p 0 or 1).
    """
    from scipy import stats

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = float(np.sqrt(va + vb))
    if se == 0.0:
        return d, d, d, (1.0 if d == 0.0 else 0.0)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    p = float(2 * stats.t.sf(abs(d) / se, df))
    return d, d - half, d + half, p


def compare(a: Sequence[float], b: Sequence[float], direction: str = "greater", margin: float = 0.0) -> Comparison:
    """The verdict on "A `direction` B" from the per-seed values of A and B (see the module docstring)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r}: one of {', '.join(DIRECTIONS)}")
    if direction != "not_less" and margin:
        raise ValueError("a margin belongs to a not_less (comparable or superior) claim")
    n_a, n_b = len(a), len(b)
    if min(n_a, n_b) < 2:
        d = float(np.mean(a) - np.mean(b)) if n_a and n_b else None
        return Comparison(direction, margin, n_a, n_b, d, None, None, None, "inconclusive")
    d, low, high, p = welch_interval(a, b)
    if direction == "less":
        above, below = high < 0, low > 0
    else:
        bound = -margin if direction == "not_less" else 0.0
        above, below = low > bound, high < bound
    verdict = "holds" if above else ("does not hold" if below else "inconclusive")
    return Comparison(direction, margin, n_a, n_b, d, low, high, p, verdict)


def combine(comparisons: Sequence[Comparison]) -> str:
    """One verdict of a claim made of several comparisons: all hold / any does not hold / else inconclusive."""
    if not comparisons:
        return "inconclusive at 0 seeds"
    n = min(c.n for c in comparisons)
    verdicts = {c.verdict for c in comparisons}
    if "does not hold" in verdicts:
        return f"does not hold at {n} seeds"
    if verdicts == {"holds"}:
        return f"holds at {n} seeds"
    return f"inconclusive at {n} seeds"
