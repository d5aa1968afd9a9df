"""A circuit breaker per remote endpoint: after `failures` failures in a row it opens for a
cool-down (doubling up to `max_cooldown` while the endpoint keeps failing), answering at once
instead of waiting on a dead endpoint; after the cool-down one trial request goes through and
its outcome closes or reopens it. Pure: the caller passes the time (a monotonic clock) and says
what counts as a failure. Used by notifications' webhook sender (a circuit per department
endpoint) and the gateway (a circuit per upstream service)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CircuitPolicy:
    failures: int = 5  # retry-class outcomes in a row that open the circuit
    cooldown: float = 60.0  # the first cool-down, seconds
    max_cooldown: float = 600.0  # doubling up to this


@dataclass
class Circuit:
    cooldown: float
    failures: int = 0
    open_until: float | None = None
    trial: bool = False  # after a cool-down, one request goes through; the others wait for its outcome

    def admit(self, now: float) -> tuple[bool, float | None]:
        """(may send, seconds to wait when not)."""
        if self.open_until is None:
            return True, None
        if now < self.open_until:
            return False, self.open_until - now
        if self.trial:
            return False, None
        self.trial = True
        return True, None

    def record(self, *, failed: bool, now: float, policy: CircuitPolicy) -> None:
        self.trial = False
        if not failed:
            self.failures, self.open_until, self.cooldown = 0, None, policy.cooldown
            return
        self.failures += 1
        already_open = self.open_until is not None and now < self.open_until  # requests that were in flight
        if self.failures >= policy.failures and not already_open:
            self.open_until = now + self.cooldown
            self.cooldown = min(self.cooldown * 2, policy.max_cooldown)
