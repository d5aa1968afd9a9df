"""The aggregate base class: pure domain code, no I/O.

In the style of the `eventsourcing` library: a command method checks the rules against the
current state, then calls `self._emit(type, data)`. Emitting applies the event at once
through `apply` (state changes only by applying events, so replaying the stream rebuilds
exactly the same state) and queues it in `pending_events` until a repository stores it.

    class Ledger(Aggregate):
        stream_type = "ledger"

        def __init__(self, id: str) -> None:
            super().__init__(id)
            self.balance = 0

        def credit(self, amount: int) -> None:        # a command: decide, then emit
            if amount <= 0:
                raise ValueError("amount must be positive")
            self._emit("civicgrid.test.ledger.credited.v1", {"amount": amount, "memo": ""})

        def apply(self, event: EventLike) -> None:     # the only place state changes
            if event.type == "civicgrid.test.ledger.credited.v1":
                self.balance += event.data["amount"]

Snapshots: a subclass that wants them implements `snapshot_state()` (JSON-able state) and
`from_snapshot(id, state, version)`; bump `snapshot_revision` whenever the state's shape
changes, and older snapshots are ignored (the stream is replayed instead).
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping, Protocol, Self, Sequence

from civicgrid_common.events import NewEvent


class EventLike(Protocol):
    """What `apply` needs of an event: new (NewEvent) or stored (StoredEvent)."""

    @property
    def type(self) -> str: ...

    @property
    def data(self) -> Mapping[str, Any]: ...


class StoredEventLike(EventLike, Protocol):
    @property
    def version(self) -> int: ...


class OutOfOrderEvent(ValueError):
    """Replay was given an event that does not follow the aggregate's current version."""


class Aggregate:
    stream_type: ClassVar[str] = ""
    # Shape of snapshot_state(); a snapshot of another revision is not used.
    snapshot_revision: ClassVar[int] = 1

    def __init__(self, id: str) -> None:
        self.id = id
        # Version of the last event applied, pending ones included (0: nothing happened yet).
        self.version = 0
        self._pending: list[NewEvent] = []

    # ------------------------------------------------------------------ behaviour

    def apply(self, event: EventLike) -> None:
        """Change state by one event. Subclasses implement it; no rules, no I/O here."""
        raise NotImplementedError(f"{type(self).__name__}.apply must handle {event.type}")

    def _emit(self, type: str, data: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> NewEvent:
        """Record a decision: apply it now and queue it for storing."""
        event = NewEvent(type=type, data=dict(data), metadata=dict(metadata or {}))
        self.apply(event)
        self.version += 1
        self._pending.append(event)
        return event

    # ------------------------------------------------------------------ persistence support

    @property
    def pending_events(self) -> tuple[NewEvent, ...]:
        return tuple(self._pending)

    @property
    def stored_version(self) -> int:
        """The version the store holds: the expected version when saving the pending events."""
        return self.version - len(self._pending)

    def mark_saved(self) -> None:
        """Forget the pending events once they are stored."""
        self._pending.clear()

    @classmethod
    def replay(cls, id: str, events: Sequence[StoredEventLike], *, start: Self | None = None) -> Self:
        """Rebuild from stored events, optionally on top of a snapshot-restored instance."""
        aggregate = start if start is not None else cls(id)
        for event in events:
            aggregate.replay_one(event)
        return aggregate

    def replay_one(self, event: StoredEventLike) -> None:
        if event.version != self.version + 1:
            raise OutOfOrderEvent(
                f"{type(self).__name__} {self.id} is at version {self.version}, got event version {event.version}"
            )
        self.apply(event)
        self.version = event.version

    # ------------------------------------------------------------------ snapshots

    def snapshot_state(self) -> Mapping[str, Any]:
        """JSON-able state for a snapshot. Implement it to enable snapshots."""
        raise NotImplementedError(f"{type(self).__name__} does not support snapshots")

    @classmethod
    def from_snapshot(cls, id: str, state: Mapping[str, Any], version: int) -> Self:
        """Restore from snapshot_state() taken at `version`. Implement it to enable snapshots."""
        raise NotImplementedError(f"{cls.__name__} does not support snapshots")

    @classmethod
    def supports_snapshots(cls) -> bool:
        return (
            cls.snapshot_state is not Aggregate.snapshot_state
            and cls.from_snapshot.__func__ is not Aggregate.from_snapshot.__func__  # type: ignore[attr-defined]
        )
