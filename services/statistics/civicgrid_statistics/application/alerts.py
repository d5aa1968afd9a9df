"""Window alerts, decided in the fact writer's transaction: for each fact that is new, the keys
it may have brought to their threshold; for each, the earliest full window, and whether it is
a new surge (an alert raised on the key's AlertLog, appended by the unit of work with its outbox
row) or belongs to a surge already raised (its span widened). Exactly once per surge, because
the decision, the alert event and the spans commit with the facts that caused them, a key's
decisions are serialised (`Windows.lock`), and a redelivered event inserts no fact and so
decides nothing."""
from __future__ import annotations

from datetime import datetime
from typing import Mapping, Protocol, Sequence

from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_statistics.domain.alerts import AlertKey, AlertLog, Span, WindowRule, decide_surge
from civicgrid_statistics.domain.facts import Fact


class Windows(Protocol):
    """The facts as alerts count them (adapters/alerts.py), in the unit's transaction."""

    async def triggers(self, uow: UnitOfWork, schema: str, fact: Fact) -> list[tuple[AlertKey, datetime]]:
        """The keys (and instants) a new fact may have brought to their threshold."""

    async def lock(self, uow: UnitOfWork, key: AlertKey) -> None:
        """Serialise the decisions on one key until the transaction ends."""

    async def first_full_window(self, uow: UnitOfWork, schema: str, key: AlertKey, at: datetime,
                                rule: WindowRule) -> tuple[datetime, int, str] | None:
        """The earliest window ending within [at, at + window) that holds `threshold` events:
        (its end, its count, the id of the event at its end)."""


class Surges(Protocol):
    """Every surge's span per key (adapters/alerts.py)."""

    async def of(self, uow: UnitOfWork, key: AlertKey) -> list[Span]: ...

    async def keep(self, uow: UnitOfWork, key: AlertKey, span: Span, absorbed: Sequence[Span] = ()) -> None: ...


class AlertService:
    def __init__(self, transactions: Transactions, windows: Windows, surges: Surges,
                 rules: Mapping[str, WindowRule]) -> None:
        self.transactions = transactions
        self.windows = windows
        self.surges = surges
        self.rules = dict(rules)

    async def decide(self, uow: UnitOfWork, schema: str, fresh: Sequence[Fact]) -> list[AlertKey]:
        """The alerts the newly inserted facts (in `schema`, the active version) cause."""
        raised: list[AlertKey] = []
        triggers = [t for fact in fresh for t in await self.windows.triggers(uow, schema, fact)]
        for key, at in triggers:
            rule = self.rules.get(key.kind)
            if rule is None:
                continue
            await self.windows.lock(uow, key)
            found = await self.windows.first_full_window(uow, schema, key, at, rule)
            if found is None:
                continue
            window_end, count, trigger = found
            window_start = window_end - rule.window
            decision = decide_surge(await self.surges.of(uow, key), window_start, window_end, rule.window)
            if decision.raise_alert:
                log = await uow.find(AlertLog, key.stream_id) or uow.add(AlertLog(key.stream_id))
                log.raise_alert(key, rule, count=count, window_start=window_start, window_end=window_end,
                                triggering_event=trigger)
                raised.append(key)
                await self.surges.keep(uow, key, Span(log.raised, window_start, window_end))
            else:
                assert decision.span is not None
                await self.surges.keep(uow, key, decision.span, decision.absorbed)
        return raised
