"""Turning events into messages: the district's rule book decides who is told what, on which
channel; each (event, channel, recipient) is recorded once in the ledger, in the consumer's
inbox transaction, and an in-app message is in the recipient's inbox when that commits.

Channels: `in_app` (people: a named user, the holders of a role in a jurisdiction, a grid's
workers), `webhook` (department systems), and `sms`, `email` and `wechat` (the applicant of a
case, at the address intake's contact API gives at send time, for the channels the applicant
chose); all but in-app are sent by the sender loop.
A rule that asks for a channel or a recipient not wired yet is refused when it is set, never
silently dropped.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

import asyncpg

from civicgrid_common.cloudevents import CloudEvent
from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.eventstore import AggregateNotFound, EventStore
from civicgrid_common.identity.principal import Principal, Role
from civicgrid_common.problems import Refusal, RuleViolation, body_error
from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_notifications.application.ports import Address, Facts, Inbox, Ledger
from civicgrid_notifications.domain.facts import ABOUT, key_of, remembered, shown
from civicgrid_notifications.domain.quiet_hours import QuietHours
from civicgrid_notifications.domain.rules import Recipient, Rule, RuleBook, lookup
from civicgrid_notifications.domain.templates import Channel, RenderFailed

log = logging.getLogger(__name__)

WIRED_CHANNELS = frozenset({Channel.IN_APP, Channel.WEBHOOK, Channel.SMS, Channel.EMAIL, Channel.WECHAT})
# Reach applicants only: staff's phones and addresses are the identity provider's, not ours.
APPLICANT_CHANNELS = (Channel.SMS, Channel.EMAIL, Channel.WECHAT)
PEOPLE = frozenset({"user", "role", "grid_workers"})
# in-app items link into the console; webhooks carry a link to the event for the department to fetch.
EVENT_LINK = "/api/notifications/v1/events/{id}"


class NotWiredYet(RuleViolation):
    refusal = Refusal.INVALID


class NotTheDistrictsAdmin(RuleViolation):
    refusal = Refusal.FORBIDDEN


@dataclass(frozen=True)
class Told:
    """What one event caused: the deliveries recorded now (ids), and those recorded before."""

    recorded: tuple[str, ...]
    repeated: int


def _event_context(event: CloudEvent, about: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": event.id, "type": event.type, "subject": event.subject,
            "time": event.time.isoformat() if isinstance(event.time, datetime) else event.time,
            "data": dict(event.data or {}), "about": shown(event.data or {}, about)}


def _scoped(context: Mapping[str, Any]) -> dict[str, Any]:
    """What rules' paths look into: the event's data, and `about.<fact>`."""
    return {**context["data"], ABOUT: context["about"]}


class NotificationService:
    def __init__(self, transactions: Transactions, store: EventStore, ledger: Ledger, inbox: Inbox, facts: Facts, *,
                 district: str, consumed_types: Callable[[str], bool], samples: Mapping[str, Sequence[Mapping]],
                 quiet_hours: QuietHours | None = None, clock: Clock = utc_now) -> None:
        self.transactions = transactions
        self.store = store
        self.ledger = ledger
        self.inbox = inbox
        self.facts = facts
        self.district = district
        self.consumed_types = consumed_types
        self.samples = samples
        self.clock = clock
        self.quiet_hours = quiet_hours
        self.stream = RuleBook.stream_for(district)
        self._book: RuleBook | None = None  # the last book read; brought up to date per event

    # ---------------------------------------------------------------- the district's admin

    def check_admin(self, principal: Principal) -> None:
        if not principal.has_any(Role.ADMIN) or not principal.may_act_in(self.district):
            raise NotTheDistrictsAdmin("not_the_districts_admin",
                                       f"only an admin of district {self.district} edits its notification rules")

    async def _book_in(self, uow: UnitOfWork) -> RuleBook:
        return await uow.find(RuleBook, self.stream) or uow.add(RuleBook(self.stream))

    def _check_wired(self, raw: Mapping[str, Any]) -> None:
        errors = []
        channels = list(raw.get("channels") or ())
        event_type = raw.get("event_type")
        for i, channel in enumerate(channels):
            if channel not in WIRED_CHANNELS:
                errors.append((f"channels/{i}", f"there is no {channel} channel; there are "
                                                f"{', '.join(sorted(WIRED_CHANNELS))}"))
        kinds = [r.get("kind") if isinstance(r, Mapping) else None for r in raw.get("recipients") or ()]
        # An applicant is reached at the addresses intake holds, on the channels they chose;
        # staff by their inbox.
        if "applicant" in kinds and not any(c in channels for c in APPLICANT_CHANNELS):
            errors.append(("channels", "an applicant is told by sms, email or wechat (at the addresses intake "
                                       "holds, on the channels they chose): add at least one"))
        if "applicant" in kinds and isinstance(event_type, str) and not names_a_case(event_type):
            errors.append((f"recipients/{kinds.index('applicant')}/kind",
                           f"an applicant is the applicant of the event's case, and {event_type} names no case"))
        for channel in APPLICANT_CHANNELS:
            if channel in channels and "applicant" not in kinds:
                errors.append((f"channels/{channels.index(channel)}",
                               f"{channel} reaches applicants only (their address from intake's contact API)"))
        if isinstance(event_type, str) and not self.consumed_types(event_type):
            errors.append(("event_type", f"{event_type} is not on a topic notifications consumes"))
        if errors:
            raise NotWiredYet("not_wired_yet", "; ".join(m for _, m in errors),
                              errors=[body_error(f, m) for f, m in errors])

    async def set_rule(self, principal: Principal, rule_id: str, raw: Mapping[str, Any]) -> tuple[Rule, int, bool]:
        """Set a rule (a new version when it changed); the rule, its version, whether it changed."""
        self.check_admin(principal)
        raw = {**raw, "id": rule_id}
        self._check_wired(raw)
        at = self.clock()

        async def command(uow: UnitOfWork) -> tuple[Rule, int, bool]:
            book = await self._book_in(uow)
            changed = book.set_rule(raw, by=principal.subject, at=at)
            rule, version = book.rules[rule_id]
            return rule, version, changed

        return await self.transactions(command)

    async def remove_rule(self, principal: Principal, rule_id: str) -> int:
        self.check_admin(principal)
        at = self.clock()

        async def command(uow: UnitOfWork) -> int:
            book = await self._book_in(uow)
            book.remove_rule(rule_id, by=principal.subject, at=at)
            return book.version

        return await self.transactions(command)

    async def set_template(self, principal: Principal, name: str, raw: Mapping[str, Any],
                           event_types: Sequence[str]) -> tuple[Any, int, bool]:
        """Set a template, rendered first against the sample events of `event_types`."""
        self.check_admin(principal)
        unknown = [t for t in event_types if t not in self.samples]
        if unknown:
            raise NotWiredYet("no_sample_events", f"no sample events of {', '.join(unknown)} to test the template on",
                              errors=[body_error(f"event_types/{event_types.index(t)}", f"no sample events of {t}")
                                      for t in unknown])
        samples = [s for t in event_types for s in self.samples[t]]
        at = self.clock()

        async def command(uow: UnitOfWork) -> tuple[Any, int, bool]:
            book = await self._book_in(uow)
            changed = book.set_template({**raw, "name": name}, samples, by=principal.subject, at=at)
            template, version = book.templates[name]
            return template, version, changed

        return await self.transactions(command)

    async def book(self) -> RuleBook:
        try:
            return await self.transactions.load(RuleBook, self.stream)
        except AggregateNotFound:
            return RuleBook(self.stream)

    # ---------------------------------------------------------------- events in

    async def _current_book(self, conn: asyncpg.Connection) -> RuleBook:
        book = self._book or RuleBook(self.stream)
        newer = await self.store.read_stream(self.stream, from_version=book.version + 1, conn=conn)
        if newer:
            for stored in newer:
                book.replay_one(stored)
            self._book = book
        return book

    def addresses(self, recipient: Recipient, data: Mapping[str, Any]) -> list[Address]:
        """The in-app addresses of a recipient for an event's data (none when the event does not
        name what the recipient needs, e.g. a role's jurisdiction)."""
        if recipient.kind == "user":
            return [Address("user", recipient.subject)] if recipient.subject else []
        if recipient.kind == "role":
            code = recipient.jurisdiction or (lookup(data, recipient.jurisdiction_field)
                                              if recipient.jurisdiction_field else None)
            return [Address("role", Role(recipient.role).value, str(code))] if code else []
        if recipient.kind == "grid_workers":
            grid = lookup(data, recipient.grid_field or "grid")
            return [Address("role", Role.GRID_WORKER.value, str(grid))] if grid else []
        return []

    def _department(self, recipient: Recipient, data: Mapping[str, Any]) -> str | None:
        if recipient.kind != "department":
            return None
        value = recipient.department or (lookup(data, recipient.department_field)
                                         if recipient.department_field else None)
        return str(value) if value else None

    async def on_event(self, conn: asyncpg.Connection, event: CloudEvent) -> Told:
        """Record what the rules say this event tells whom (in the caller's transaction)."""
        book = await self._current_book(conn)
        data = dict(event.data or {})
        told = _Tally()
        at = self.clock()
        key = key_of(event.type, event.subject, data)
        if key and (facts := remembered(event.type, data)):
            await self.facts.remember(conn, key, facts, at=at)
        if not book.tells_of(event.type):
            return Told((), 0)
        context = _event_context(event, await self.facts.about(conn, key) if key else {})
        for rule in book.matching(event.type, _scoped(context)):
            template, _ = book.templates[rule.template]
            for recipient in rule.recipients:
                if Channel.IN_APP in rule.channels and recipient.kind in PEOPLE:
                    await self._tell_in_app(conn, told, event, rule, template, recipient, context, at)
                if Channel.WEBHOOK in rule.channels:
                    await self._tell_department(conn, told, event, rule, recipient, context, at)
                if recipient.kind == "applicant":
                    for channel in APPLICANT_CHANNELS:
                        if channel in rule.channels:
                            await self._tell_applicant(conn, told, event, rule, template, channel, context, at)
        return Told(tuple(told.recorded), told.repeated)

    async def _tell_in_app(self, conn: asyncpg.Connection, told: "_Tally", event: CloudEvent, rule: Rule,
                           template: Any, recipient: Recipient, context: Mapping[str, Any], at: datetime) -> None:
        addresses = self.addresses(recipient, _scoped(context))
        if not addresses:
            return
        common = {"event_id": event.id, "event_type": event.type, "rule_id": rule.id,
                  "channel": Channel.IN_APP.value, "urgent": rule.urgent, "at": at}
        try:
            rendered = template.render(Channel.IN_APP, context, recipient={"kind": recipient.kind}).fields
        except RenderFailed as exc:
            # The event lacks what the template needs: a dead letter for the admin to see and
            # fix, not a poison event that tells no one.
            log.warning("rule %s cannot render event %s: %s", rule.id, event.id, exc.code)
            for address in addresses:
                await self.ledger.record(conn, **common, recipient=address.key, message={}, status="dead",
                                         error=f"{'/'.join(exc.path)}: {exc}")
            return
        for address in addresses:
            did = await self.ledger.record(conn, **common, recipient=address.key, message=rendered,
                                           status="delivered")
            if told.count(did):
                await self.inbox.deliver(
                    conn, delivery_id=did, address_kind=address.kind, address=address.address,
                    jurisdiction=address.jurisdiction, event_type=event.type, urgent=rule.urgent,
                    title=rendered["title"], body=rendered["body"], link=rendered.get("link"), at=at,
                    digest=rule.digest)

    async def _tell_department(self, conn: asyncpg.Connection, told: "_Tally", event: CloudEvent, rule: Rule,
                               recipient: Recipient, context: Mapping[str, Any], at: datetime) -> None:
        department = self._department(recipient, _scoped(context))
        if department is None:
            return
        # Thin: the department fetches the full event with its own token.
        payload = {"id": event.id, "type": event.type, "subject": event.subject, "time": context["time"],
                   "department": department, "link": EVENT_LINK.format(id=event.id)}
        told.count(await self.ledger.record(
            conn, event_id=event.id, event_type=event.type, rule_id=rule.id, channel=Channel.WEBHOOK.value,
            recipient=f"department:{department}", urgent=rule.urgent, message=payload, status="pending", at=at))


    async def _tell_applicant(self, conn: asyncpg.Connection, told: "_Tally", event: CloudEvent, rule: Rule,
                              template: Any, channel: Channel, context: Mapping[str, Any], at: datetime) -> None:
        """A message on `channel` to the applicant of the event's case: recorded `pending` with the
        rendered template and the case, never an address; the sender asks intake for the address
        at send time, and intake gives one only for a channel the applicant chose."""
        case_id = case_of(event)
        if case_id is None:
            return
        common = {"event_id": event.id, "event_type": event.type, "rule_id": rule.id, "channel": channel.value,
                  "recipient": f"applicant:{case_id}", "urgent": rule.urgent, "at": at}
        try:
            rendered = template.render(channel, context, recipient={"kind": "applicant"}).fields
        except RenderFailed as exc:
            log.warning("rule %s cannot render event %s: %s", rule.id, event.id, exc.code)
            await self.ledger.record(conn, **common, message={}, status="dead", error=f"{'/'.join(exc.path)}: {exc}")
            return
        held = (self.quiet_hours.held_until(at, channel=channel.value, urgent=rule.urgent)
                if self.quiet_hours else None)
        told.count(await self.ledger.record(conn, **common, message=dict(rendered), status="pending",
                                            not_before=held))


def names_a_case(event_type: str) -> bool:
    """intake's case events (the case's own stream) and approval's (each names its case_id)."""
    return event_type.startswith(("civicgrid.intake.case.", "civicgrid.approval.approval."))


def case_of(event: CloudEvent) -> str | None:
    """The case an event is about: approval's name it in `case_id`; intake's case events are the
    case's own stream, whose id is the event's subject."""
    value = (event.data or {}).get("case_id")
    if isinstance(value, str) and value:
        return value
    if event.type.startswith("civicgrid.intake.case.") and event.subject:
        return event.subject
    return None


@dataclass
class _Tally:
    recorded: list[str] = field(default_factory=list)
    repeated: int = 0

    def count(self, delivery_id: str | None) -> bool:
        """Note a ledger answer: True for a delivery recorded now, False for one recorded before."""
        if delivery_id is None:
            self.repeated += 1
            return False
        self.recorded.append(delivery_id)
        return True
