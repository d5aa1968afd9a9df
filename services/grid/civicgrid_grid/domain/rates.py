"""A rate as leaders read it: a count over a count, kept as both so that figures add up."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        """The share, or None when there is nothing to count (0 ÷ 0 is no rate, not 0 %)."""
        return None if self.denominator == 0 else self.numerator / self.denominator
