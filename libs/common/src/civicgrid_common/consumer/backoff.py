"""Retry delays for a failing handler: exponential, capped, with full jitter.

Jitter spreads the retries of many consumers that failed for one shared reason (a database
restart, say) so they do not hammer it again in lock-step.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.2  # seconds before the first retry (upper bound, before jitter)
    maximum: float = 10.0  # no retry waits longer than this
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial or self.multiplier < 1:
            raise ValueError(
                f"backoff needs 0 < initial <= maximum and multiplier >= 1, got "
                f"initial={self.initial}, maximum={self.maximum}, multiplier={self.multiplier}"
            )

    def ceiling(self, retry: int) -> float:
        """The longest wait before retry number `retry` (1 = the first retry)."""
        if retry < 1:
            raise ValueError("retries are numbered from 1")
        # min() before the power would overflow on absurd retry numbers
        exponent = min(retry - 1, 64)
        return min(self.maximum, self.initial * self.multiplier**exponent)

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """A wait drawn uniformly from [ceiling/2, ceiling]: jittered but never ~0."""
        top = self.ceiling(retry)
        return (rng or random).uniform(top / 2, top)

    @classmethod
    def of(cls, spec: "Backoff | tuple[float, float]") -> "Backoff":
        return spec if isinstance(spec, Backoff) else cls(initial=spec[0], maximum=spec[1])
