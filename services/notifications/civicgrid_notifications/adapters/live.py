"""The live inbox: one PostgreSQL LISTEN per process (not one per open stream), fanned out to the
streams held open by consoles and phones, each of which gets only the items its principal may
see. A stream that falls behind loses nothing: its client reconnects with Last-Event-ID and
reads what it missed from the table.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

import asyncpg

from civicgrid_common.identity.principal import Principal, covers

from civicgrid_notifications.adapters.inbox import NOTIFY_CHANNEL, InboxItem

log = logging.getLogger(__name__)

QUEUE_LIMIT = 100  # items a slow stream may have waiting before it is told to reconnect


class FellBehind(Exception):
    """A stream's queue overflowed: the client reconnects with Last-Event-ID."""


def may_see(principal: Principal, address_kind: str, address: str, jurisdiction: str | None) -> bool:
    """The inbox table's visibility rule (inbox._VISIBLE), for one item in memory."""
    if address_kind == "user":
        return address == principal.subject
    return (jurisdiction is not None and any(r.value == address for r in principal.roles)
            and any(covers(code, jurisdiction) for code in principal.jurisdictions))


class _Stream:
    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.queue: asyncio.Queue[InboxItem | None] = asyncio.Queue(QUEUE_LIMIT)


class InboxBroadcaster:
    name = "inbox-broadcaster"

    def __init__(self, pool: asyncpg.Pool, dsn: str, *, reconnect_seconds: float = 2.0) -> None:
        self.pool = pool
        self.dsn = dsn  # the pool's database: LISTEN holds a connection of its own
        self.reconnect_seconds = reconnect_seconds
        self._streams: set[_Stream] = set()
        self._stopping = asyncio.Event()
        self.listening = asyncio.Event()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                conn = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("inbox broadcaster cannot connect: %s", exc)
                await self._pause()
                continue
            ids: asyncio.Queue[int] = asyncio.Queue()
            try:
                await conn.add_listener(NOTIFY_CHANNEL, lambda _c, _pid, _ch, payload: ids.put_nowait(int(payload)))
                self.listening.set()
                while not self._stopping.is_set() and not conn.is_closed():
                    try:
                        item_id = await asyncio.wait_for(ids.get(), 1.0)
                    except asyncio.TimeoutError:
                        continue
                    await self._fan_out(item_id)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("inbox broadcaster lost its connection: %s", exc)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await conn.close()
                # Streams may have missed items while no one listened: they catch up by reconnecting.
                for stream in list(self._streams):
                    self._tell_to_reconnect(stream)
            await self._pause()

    async def _pause(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self.reconnect_seconds)

    def stop(self) -> None:
        self._stopping.set()
        for stream in list(self._streams):
            self._tell_to_reconnect(stream)

    async def _fan_out(self, item_id: int) -> None:
        if not self._streams:
            return
        row = await self.pool.fetchrow(
            "SELECT id, address_kind, address, jurisdiction, event_type, urgent, title, body, link, created_at, digest "
            "FROM inbox_items WHERE id = $1", item_id)
        if row is None:
            return
        item = InboxItem(id=row["id"], event_type=row["event_type"], urgent=row["urgent"], title=row["title"],
                         body=row["body"], link=row["link"], created_at=row["created_at"], read_at=None,
                         digest=row["digest"])
        for stream in list(self._streams):
            if may_see(stream.principal, row["address_kind"], row["address"], row["jurisdiction"]):
                try:
                    stream.queue.put_nowait(item)
                except asyncio.QueueFull:
                    self._tell_to_reconnect(stream)

    def _tell_to_reconnect(self, stream: _Stream) -> None:
        self._streams.discard(stream)
        while not stream.queue.empty():
            stream.queue.get_nowait()
        stream.queue.put_nowait(None)

    @contextlib.asynccontextmanager
    async def subscribe(self, principal: Principal) -> AsyncIterator["Subscription"]:
        stream = _Stream(principal)
        self._streams.add(stream)
        try:
            yield Subscription(stream)
        finally:
            self._streams.discard(stream)


class Subscription:
    def __init__(self, stream: _Stream) -> None:
        self._stream = stream

    async def next(self, timeout: float) -> InboxItem | None:
        """The next item, None on a quiet `timeout`; FellBehind when the client must reconnect."""
        try:
            item = await asyncio.wait_for(self._stream.queue.get(), timeout)
        except asyncio.TimeoutError:
            return None
        if item is None:
            raise FellBehind()
        return item
