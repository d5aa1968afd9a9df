"""The unit of work: one transaction per command, and one policy for retrying it.

A command handler is a few lines (the Cosmic Python shape, on our event store):

    async def accept(self, principal, case_id):
        async def command(uow: UnitOfWork) -> Case:
            case = await uow.get(Case, case_id)
            case.accept(...)
            return case
        return await self.transact(command)

`async with UnitOfWork(store, projectors) as uow` opens a connection and a transaction (or a
savepoint of a caller's, e.g. an event consumer's inbox transaction); `uow.get` loads an
aggregate (its stream type checked) and `uow.add` starts a new one; leaving the block without
an exception commits: every tracked aggregate's pending events are appended with the version
they were decided on (their outbox rows in the same statement's transaction), the snapshots
taken, the inline projectors run for the stream types they project, and the transaction
committed. An exception rolls everything back: nothing of a refused command remains.

`transact(command)` runs a command in a fresh unit of work under the one retry policy: a
concurrency conflict (someone appended to the stream meanwhile), a deadlock or a serialization
failure is retried on fresh state, with jitter, up to `RetryPolicy.attempts` times; then it
raises `Contended` (503, nothing changed, retry later). A command is a pure decide-and-append,
so running it again is safe; whatever it must not re-decide on fresh state (the version or
task a person decided on) it checks itself and refuses.
"""
from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, ClassVar, Protocol, Sequence, TypeVar

import asyncpg

from civicgrid_common.aggregate import Aggregate
from civicgrid_common.events import StoredEvent
from civicgrid_common.eventstore import AggregateNotFound, ConcurrencyConflict, EventStore, Repository
from civicgrid_common.problems import CONTENDED, Problem

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")
log = logging.getLogger(__name__)

# What PostgreSQL aborts a transaction with when it lost to a concurrent one: try again.
TRANSIENT_DATABASE_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)


class Projector(Protocol):
    """An inline read model, written in the transaction of the events it shows."""

    stream_types: ClassVar[tuple[str, ...]]  # the aggregates whose events it projects

    async def begin(self, conn: asyncpg.Connection) -> None:
        """Before the unit's first append of a stream type it projects (e.g. take the read
        table's lock, so that a rebuild holding the table never sees its events half-written)."""

    async def project(self, conn: asyncpg.Connection, aggregate: Aggregate, stored: Sequence[StoredEvent]) -> None:
        """Bring the read model up to the aggregate just saved."""


class Contended(Problem):
    """A command lost to concurrent changes on every attempt; nothing was changed."""

    def __init__(self, attempts: int, cause: BaseException) -> None:
        super().__init__(CONTENDED, f"the command lost to concurrent changes {attempts} times "
                                    f"({type(cause).__name__}); try again in a moment",
                         attempts=attempts, headers={"Retry-After": "1"})
        self.attempts = attempts


@dataclass(frozen=True)
class RetryPolicy:
    """The one policy every command runs under."""

    attempts: int = 3
    base_delay: float = 0.02  # seconds; attempt n waits a random share of n * base_delay
    retry_on: tuple[type[BaseException], ...] = (ConcurrencyConflict, *TRANSIENT_DATABASE_ERRORS)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a command is tried at least once")

    def delay(self, attempt: int) -> float:
        return random.uniform(0, self.base_delay * attempt)  # jitter: let the winner commit


@dataclass
class _Tracked:
    aggregate: Aggregate
    repository: Repository[Any]
    found_empty: bool = False  # this transaction read its stream and found no event


class UnitOfWork:
    def __init__(self, store: EventStore, projectors: Sequence[Projector] = (), *,
                 conn: asyncpg.Connection | None = None) -> None:
        self.store = store
        self.projectors = tuple(projectors)
        self._outer = conn
        self._conn: asyncpg.Connection | None = None
        self._acquired: Any = None
        self._transaction: Any = None
        self._tracked: dict[str, _Tracked] = {}
        self._repositories: dict[type[Aggregate], Repository[Any]] = {}
        # Streams `find` read in this transaction and found without any event: their append
        # needs no head read (EventStore.append's `found_empty`).
        self._found_empty: set[str] = set()

    # ------------------------------------------------------------------ the transaction

    @property
    def conn(self) -> asyncpg.Connection:
        """The unit's connection, for adapters whose writes belong to the same transaction
        (a directory row, a counter, a timer): never for the events, which `commit` appends."""
        if self._conn is None:
            raise RuntimeError("the unit of work is not open: use `async with`")
        return self._conn

    async def __aenter__(self) -> "UnitOfWork":
        if self._outer is not None:
            self._conn = self._outer
        else:
            self._acquired = self.store.pool.acquire()
            self._conn = await self._acquired.__aenter__()
        try:
            self._transaction = self._conn.transaction()
            await self._transaction.start()
        except BaseException:
            await self._close(failed=True)
            raise
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            await self._close(failed=True)
            return
        try:
            await self._append_and_project()
        except BaseException:
            await self._close(failed=True)
            raise
        await self._close(failed=False)

    async def _close(self, *, failed: bool) -> None:
        try:
            if self._transaction is not None:
                if failed:
                    await self._transaction.rollback()
                else:
                    await self._transaction.commit()
        finally:
            self._transaction = None
            if self._acquired is not None:
                acquired, self._acquired = self._acquired, None
                await acquired.__aexit__(None, None, None)
            self._conn = None

    async def _append_and_project(self) -> None:
        begun: set[int] = set()
        for tracked in self._tracked.values():
            aggregate = tracked.aggregate
            if not aggregate.pending_events:
                continue
            projectors = [p for p in self.projectors if aggregate.stream_type in p.stream_types]
            for projector in projectors:
                if id(projector) not in begun:
                    begun.add(id(projector))
                    await projector.begin(self.conn)
            stored = await tracked.repository.save(aggregate, conn=self.conn, found_empty=tracked.found_empty)
            for projector in projectors:
                await projector.project(self.conn, aggregate, stored)

    # ------------------------------------------------------------------ aggregates

    def repository(self, cls: type[A]) -> Repository[A]:
        if cls not in self._repositories:
            self._repositories[cls] = Repository(self.store, cls)
        return self._repositories[cls]

    async def get(self, cls: type[A], stream_id: str) -> A:
        """The aggregate as its stream has it (AggregateNotFound: no such stream of this type)."""
        tracked = self._tracked.get(stream_id)
        if tracked is not None:
            if not isinstance(tracked.aggregate, cls):
                raise TypeError(f"{stream_id} is tracked as a {type(tracked.aggregate).__name__}")
            return tracked.aggregate
        repository = self.repository(cls)
        aggregate = await repository.load(stream_id, conn=self.conn)
        self._tracked[stream_id] = _Tracked(aggregate, repository)
        return aggregate

    async def find(self, cls: type[A], stream_id: str) -> A | None:
        """The aggregate, or None if its stream does not exist (yet)."""
        try:
            return await self.get(cls, stream_id)
        except AggregateNotFound as exc:
            if exc.other_type is None:
                self._found_empty.add(stream_id)
            return None

    def add(self, aggregate: A) -> A:
        """A new aggregate, appended on commit (ConcurrencyConflict if its stream exists)."""
        if aggregate.id in self._tracked:
            raise ValueError(f"{aggregate.id} is already in this unit of work")
        self._tracked[aggregate.id] = _Tracked(aggregate, self.repository(type(aggregate)),
                                               found_empty=aggregate.id in self._found_empty)
        return aggregate


@dataclass
class Transactions:
    """A service's units of work and its one retry policy: `await transactions(command)` runs a
    command in a fresh unit of work, retried under the policy; `within(conn, command)` runs it
    inside a caller's transaction (an event consumer's inbox transaction) as a savepoint, not
    retried here: the consumer runtime retries the whole record."""

    store: EventStore
    projectors: Sequence[Projector] = ()
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    retried: int = 0  # commands tried again (counted for tests and metrics)

    @classmethod
    def for_service(cls, store: EventStore, projectors: Sequence[Projector], settings: Any) -> "Transactions":
        """A service's transactions under its settings' policy (settings.command_attempts)."""
        return cls(store, projectors, RetryPolicy(attempts=settings.command_attempts))

    def unit(self, conn: asyncpg.Connection | None = None) -> UnitOfWork:
        return UnitOfWork(self.store, self.projectors, conn=conn)

    async def load(self, cls: type[A], stream_id: str) -> A:
        """An aggregate as its stream has it, for reading (no transaction, nothing tracked)."""
        return await Repository(self.store, cls).load(stream_id)

    async def __call__(self, command: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        for attempt in range(1, self.policy.attempts + 1):
            try:
                async with self.unit() as uow:
                    result = await command(uow)
                return result
            except self.policy.retry_on as exc:
                if attempt == self.policy.attempts:
                    raise Contended(attempt, exc) from exc
                self.retried += 1
                log.warning("a command lost to a concurrent transaction (%s), attempt %d of %d: trying again",
                            type(exc).__name__, attempt, self.policy.attempts)
                await asyncio.sleep(self.policy.delay(attempt))
        raise AssertionError("unreachable")

    async def within(self, conn: asyncpg.Connection, command: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        async with self.unit(conn) as uow:
            return await command(uow)


__all__ = ["Contended", "Projector", "RetryPolicy", "TRANSIENT_DATABASE_ERRORS", "Transactions", "UnitOfWork"]
