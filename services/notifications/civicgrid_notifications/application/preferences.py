"""People's preferences and their digests (domain/preferences.py): set through the API by the
person themselves; each digest compiled by a durable timer at the end of its period, in the
timer's firing transaction, which also arms the next one: a digest is compiled once, however
often the service restarts, and none is skipped."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

import asyncpg

from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.eventstore import AggregateNotFound
from civicgrid_common.identity.principal import Principal
from civicgrid_common.timers import schedule
from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_notifications.application.ports import Inbox, Ledger
from civicgrid_notifications.domain.preferences import (
    DIGEST_COMPILED, DIGEST_RULE, MAX_NAMED, Preferences, digest_message, next_period_end, parse_choice,
)

TIMER_OWNER = "notifications"
DIGEST_DUE = "digest_due"


def digest_key(subject: str, period_end: datetime) -> str:
    return f"digest/{subject}/{period_end.isoformat()}"


async def arm_digest(conn: asyncpg.Connection, preferences: Preferences, after: datetime) -> None:
    """The timer of this person's next digest, in the caller's transaction."""
    end = next_period_end(after, preferences.choice.every_minutes)
    await schedule(conn, owner=TIMER_OWNER, key=digest_key(preferences.subject, end), due_at=end, kind=DIGEST_DUE,
                   payload={"subject": preferences.subject, "period_end": end.isoformat()})


class PreferenceService:
    def __init__(self, transactions: Transactions, ledger: Ledger, inbox: Inbox, *, clock: Clock = utc_now) -> None:
        self.transactions = transactions
        self.ledger = ledger
        self.inbox = inbox
        self.clock = clock

    async def of(self, subject: str) -> Preferences:
        """A person's preferences (the defaults when they never set any)."""
        stream = Preferences.stream_for(subject)
        try:
            return await self.transactions.load(Preferences, stream)
        except AggregateNotFound:
            return Preferences(stream)

    async def choose(self, principal: Principal, raw: Mapping[str, Any]) -> tuple[Preferences, bool]:
        """The signed-in person's choice, with their token's roles and jurisdictions; whether it changed."""
        choice = parse_choice(raw)
        at = self.clock()
        stream = Preferences.stream_for(principal.subject)

        async def command(uow: UnitOfWork) -> tuple[Preferences, bool]:
            preferences = await uow.find(Preferences, stream) or uow.add(Preferences(stream))
            changed = preferences.choose(choice, roles=[r.value for r in principal.roles],
                                         jurisdictions=list(principal.jurisdictions), at=at)
            if changed and preferences.digests:
                await arm_digest(uow.conn, preferences, at)
            return preferences, changed

        return await self.transactions(command)

    def digest_due(self, subject: str, period_end: datetime):
        """The command the digest timer runs: gather the person's unread items of the period into
        one item for them (nothing when there are none), and arm the next period's timer. A timer
        of an earlier choice (another period, or digests given up since) does nothing."""
        async def command(uow: UnitOfWork) -> None:
            preferences = await uow.find(Preferences, Preferences.stream_for(subject))
            if preferences is None or (window := preferences.digest_window(period_end)) is None:
                return
            at = self.clock()
            items, total = await self.inbox.digestible(
                uow.conn, subject=subject, roles=preferences.roles, jurisdictions=preferences.jurisdictions,
                after=window[0], until=window[1], limit=MAX_NAMED)
            if items:
                event = preferences.compile_digest(period_end, [i for i, _ in items], total, at=at)
                message = digest_message([t for _, t in items], total, *window)
                did = await self.ledger.record(uow.conn, event_id=str(event.id), event_type=DIGEST_COMPILED,
                                               rule_id=DIGEST_RULE, channel="in_app", recipient=f"user:{subject}",
                                               urgent=False, message=message, status="delivered", at=at)
                if did is not None:
                    await self.inbox.deliver(uow.conn, delivery_id=did, address_kind="user", address=subject,
                                             jurisdiction=None, event_type=DIGEST_COMPILED, urgent=False,
                                             title=message["title"], body=message["body"], link=message["link"],
                                             at=at)
            await arm_digest(uow.conn, preferences, period_end)

        return command
