"""The aggregate base class: pure domain code, no I/O.

In the style of the `eventsourcing` library: a command method checks the rules against the
current state, then calls `self._emit(type, data)`. Emitting applies the event at once (state
changes only by applying events, so replaying the stream rebuilds exactly the same state) and
queues it in `pending_events` until a unit of work stores it.

Events are applied by one mechanism in every aggregate: a method marked `@applies(TYPE)` takes
the event's data and changes the state; an event type no method is marked for cannot be
applied (`UnknownEvent`), so a new event type cannot be forgotten silently.

    class Ledger(Aggregate):
        stream_type = "ledger"

        def __init__(self, id: str) -> None:
            super().__init__(id)
            self.balance = 0

        def credit(self, amount: int) -> None:        # a command: decide, then emit
            if amount <= 0:
                raise ValueError("amount must be positive")
            self._emit("civicgrid.test.ledger.credited.v1", {"amount": amount, "memo": ""})

        @applies("civicgrid.test.ledger.credited.v1")  # the only place state changes
        def _credited(self, data: Mapping[str, Any]) -> None:
            self.balance += data["amount"]

Snapshots: a subclass that wants them implements `snapshot_state()` (JSON-able state) and
`from_snapshot(id, state, version)`; bump `snapshot_revision` whenever the state's shape
changes, and older snapshots are ignored (the stream is replayed instead).
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping, Protocol, Self, Sequence, TypeVar

from civicgrid_common.events import NewEvent

_APPLIES = "_civicgrid_applies"
Applier = TypeVar("Applier", bound=Callable[..., None])


def applies(*event_types: str) -> Callable[[Applier], Applier]:
    """Mark an aggregate's method as the one that applies events of these types: it is called
    with the event's data and changes the state, nothing else (no rules, no I/O)."""

    def mark(method: Applier) -> Applier:
        setattr(method, _APPLIES, (*getattr(method, _APPLIES, ()), *event_types))
        return method

    return mark


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


class UnknownEvent(ValueError):
    """An event type the aggregate has no @applies method for."""


class Aggregate:
    stream_type: ClassVar[str] = ""
    # Shape of snapshot_state(); a snapshot of another revision is not used.
    snapshot_revision: ClassVar[int] = 1
    # Snapshot every this many versions (None: never; long-lived streams set it).
    snapshot_every: ClassVar[int | None] = None
    # Event type -> the name of the method that applies it, collected from @applies marks.
    _appliers: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        appliers = dict(cls._appliers)
        for name, member in vars(cls).items():
            for event_type in getattr(member, _APPLIES, ()):
                if event_type in appliers and appliers[event_type] != name:
                    raise TypeError(f"{cls.__name__}: {event_type} is applied by both {appliers[event_type]} and {name}")
                appliers[event_type] = name
        cls._appliers = appliers

    def __init__(self, id: str) -> None:
        self.id = id
        # Version of the last event applied, pending ones included (0: nothing happened yet).
        self.version = 0
        self._pending: list[NewEvent] = []

    # ------------------------------------------------------------------ behaviour

    def apply(self, event: EventLike) -> None:
        """Change state by one event, through the method marked @applies for its type."""
        name = self._appliers.get(event.type)
        if name is None:
            raise UnknownEvent(f"{type(self).__name__} cannot apply {event.type}: no method is marked @applies for it")
        getattr(self, name)(event.data)

    @classmethod
    def event_types(cls) -> frozenset[str]:
        """The event types this aggregate applies."""
        return frozenset(cls._appliers)

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
