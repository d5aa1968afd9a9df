"""Upcasting: old stored shapes of an event read as the current shape.

Within a major version an event type's schema may grow (additive, optional changes); each
such step is a *schema revision* (1, 2, ...). The store records with every event the revision
its data was written in, and writes new events at the current revision. An upcaster is a pure
function turning the data of revision N into the data of revision N + 1; on read, upcasters
chain until the event has the current shape. The stored row is never changed (events are
immutable and hashed as stored), upcasting happens only in memory.

    upcasters = Upcasters()

    @upcasters.register("civicgrid.test.ledger.credited.v1", from_revision=1)
    def add_currency(data):
        return {**data, "currency": "CNY"}
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

UpcastFn = Callable[[Mapping[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True)
class Upcast:
    """The result of upcasting: the data in the current shape and the revision it is at."""

    data: Mapping[str, Any]
    revision: int


class Upcasters:
    """Registry of upcasting steps, keyed by (event type, revision they read)."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], UpcastFn] = {}

    def register(self, event_type: str, from_revision: int) -> Callable[[UpcastFn], UpcastFn]:
        """Decorator: `fn` turns data of `from_revision` into data of `from_revision + 1`."""
        if from_revision < 1:
            raise ValueError("schema revisions start at 1")

        def decorate(fn: UpcastFn) -> UpcastFn:
            key = (event_type, from_revision)
            if key in self._steps:
                raise ValueError(f"an upcaster from {event_type} revision {from_revision} is already registered")
            self._steps[key] = fn
            return fn

        return decorate

    def current_revision(self, event_type: str) -> int:
        """The revision new events of this type are written in: 1 plus the chained steps."""
        revision = 1
        while (event_type, revision) in self._steps:
            revision += 1
        return revision

    def upcast(self, event_type: str, revision: int, data: Mapping[str, Any]) -> Upcast:
        """Apply every step from `revision` on; data already current comes back unchanged."""
        current = self.current_revision(event_type)
        if revision > current:
            # Written by a newer release than this reader: reading it as if current would
            # silently drop what this code does not know; say so instead.
            raise ValueError(
                f"{event_type} stored at schema revision {revision}, this code knows up to {current}"
            )
        while revision < current:
            data = self._steps[(event_type, revision)](data)
            revision += 1
        return Upcast(data=data, revision=revision)
