"""What intake consumes. Approval's outcomes: a consumer of the topic approval publishes on.

    civicgrid.approval.approval.concluded.v1             → the case is completed (approved or refused)
    civicgrid.approval.approval.supplement_requested.v1  → the case records what the reviewer needs (补办)

Both CloudEvents have the approval id as subject and intake's case id as data.case_id. The
consumer is civicgrid_common's EventConsumer: the case's command runs in a unit of work inside
the transaction that records the event id in the inbox, so a redelivered event changes nothing
(effectively once). Approval's other events on the topic are none of
intake's business and are passed over.

What happens to an event that cannot take effect — decided here, said once:

- **Unknown case** (no case stream with that id): dead-lettered. approval starts only from
  intake's routed cases, and intake publishes a case's events after they are committed, so an
  unknown id is never "not there yet": it is a wrong message (another environment, a bug in
  the producer). Retrying cannot help and dropping it would hide it; the dead-letter topic
  keeps it with the error for an operator (who can replay it once the cause is fixed).
- **Data that break the contract** (validated against contracts/ before anything is done), a
  missing subject, or a request the case's rules refuse: dead-lettered for the same reason.
- **A case that waits for no result** (withdrawn by the applicant while the approval ran,
  completed by another approval, archived): handled, nothing changes, logged at warning. The
  fact is legitimate and stays in approval's log; no operator action could make it apply.
- **The same decision already on the case** (approval published it again under a new event
  id): handled, nothing changes.
"""
from __future__ import annotations

import logging
from datetime import datetime

import asyncpg

from civicgrid_common.cloudevents import CloudEvent
from civicgrid_common.consumer import EventConsumer, PoisonEvent
from civicgrid_common.contracts import Contracts, SchemaViolation

from civicgrid_common.unit_of_work import Transactions

from civicgrid_intake.application.cases import ApprovalEffect, CaseNotFound, CaseService
from civicgrid_intake.config import IntakeSettings
from civicgrid_intake.domain.case import CaseRuleViolation

log = logging.getLogger(__name__)

CONCLUDED = "civicgrid.approval.approval.concluded.v1"
SUPPLEMENT_REQUESTED = "civicgrid.approval.approval.supplement_requested.v1"


class UnusableApprovalEvent(PoisonEvent):
    """An event of approval that intake cannot apply: no retry can help, so the runtime sends it
    to the dead-letter topic at once."""


class ApprovalOutcomes:
    """The consumer's handler: one approval event on the consumer's connection."""

    def __init__(self, cases: CaseService, transactions: Transactions, contracts: Contracts) -> None:
        self.cases = cases
        self.transactions = transactions
        self.contracts = contracts

    async def __call__(self, conn: asyncpg.Connection, event: CloudEvent) -> None:
        if event.type not in (CONCLUDED, SUPPLEMENT_REQUESTED):
            return
        try:
            self.contracts.validate(event.type, event.data)
        except SchemaViolation as e:
            raise UnusableApprovalEvent(f"{event.type} {event.id} breaks its contract: {e}") from None
        if not event.subject:
            raise UnusableApprovalEvent(f"{event.type} {event.id} has no subject (the approval id)")
        data = event.data
        if event.type == CONCLUDED:
            command = self.cases.conclude_from_approval(
                data["case_id"], approval_reference=event.subject, outcome=data["outcome"],
                decided_at=_instant(data["decided_at"]))
        else:
            command = self.cases.record_supplement_request(
                data["case_id"], approval_reference=event.subject, step=data["step"],
                materials=data["materials"], comment=data["comment"], requested_by=data["requested_by"],
                requested_at=_instant(data["requested_at"]))
        try:
            effect = await self.transactions.within(conn, command)
        except CaseRuleViolation as e:
            raise UnusableApprovalEvent(f"{event.type} {event.id}: {e.code}: {e}") from None
        except CaseNotFound as e:
            # approval starts only from intake's own routed case: an unknown one is a wrong message.
            raise UnusableApprovalEvent(f"{event.type} {event.id}: {e}") from None
        level = logging.WARNING if effect is ApprovalEffect.NOT_WAITING else logging.INFO
        log.log(level, "approval event %s (%s) for case %s: %s", event.id, event.type, data["case_id"], effect.value)


def _instant(text: str) -> datetime:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise UnusableApprovalEvent(f"time {text!r} has no offset")
    return at


def approval_outcomes_consumer(settings: IntakeSettings, pool: asyncpg.Pool, cases: CaseService,
                               transactions: Transactions) -> EventConsumer:
    return EventConsumer(
        settings, pool, topics=[settings.approval_topic], group_id=settings.approval_consumer_group,
        handler=ApprovalOutcomes(cases, transactions, transactions.store.contracts),
        dead_letter_topic=settings.approval_dead_letter_topic,
    )
