"""The statistics the reports quote: a confidence interval for a rate and a test between two rates."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # the standard normal quantile for a two-sided 95 % interval


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval for a proportion: sound for small counts and rates near 0, unlike the
    normal approximation. None without trials."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - margin), min(1.0, centre + margin)


@dataclass(frozen=True)
class Comparison:
    """A two-proportion z-test of rate B against rate A."""

    difference: float  # rate B - rate A
    z: float
    p_value: float  # two-sided

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05


def two_proportion_test(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> Comparison | None:
    """The pooled two-proportion z-test; None when either group is empty or nothing varies."""
    if trials_a <= 0 or trials_b <= 0:
        return None
    rate_a, rate_b = successes_a / trials_a, successes_b / trials_b
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    variance = pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b)
    if variance <= 0:
        return None
    z = (rate_b - rate_a) / math.sqrt(variance)
    p_value = math.erfc(abs(z) / math.sqrt(2))
    return Comparison(rate_b - rate_a, z, p_value)
