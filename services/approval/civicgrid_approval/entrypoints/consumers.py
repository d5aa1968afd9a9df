"""What approval consumes, each handler in the consumer's transaction (effectively once), and
the deadline timers' handler.

- `civicgrid.intake.cases` (key = case id, so one case's events come in order): what approval
  needs of a case is kept in `case_facts` (registered, accepted); `routed` starts the approval
  (its id is uuid5 of the case id: a redelivered `routed` cannot start two); `green_channelled`
  puts it first; `supplemented` with nothing left missing restarts its clock; `withdrawn` ends it.
- `civicgrid.departments.<department>.opinions`: a department system's opinion on a task. The
  event must be that department's opinion type, its CloudEvents source must name the department
  (`/civicgrid/departments/<department>`), and the task must be the approval's current one;
  then it is attributed to the department, sealed with the department's key, and the approval
  moves on. An opinion that does not hold (not an opinion type, a source that is not the
  department, a schema violation, a task no longer current because the department answered
  late or twice, an unknown approval, an action the step refuses, a `dataschema` that is not the
  contract's or none) raises `RejectedOpinion`:
  its transaction changes nothing, and the consumer runtime at once (a PoisonEvent: no retry
  can make it acceptable) produces the record untouched to the dead-letter topic with the reason in `x-dlq-error-message`
  (`<reason>: <detail>`) and `x-dlq-error-type` naming RejectedOpinion.
"""
from __future__ import annotations

import logging
import re
from typing import Awaitable, Callable

import asyncpg

from civicgrid_common.cloudevents import CloudEvent, dataschema_for
from civicgrid_common.consumer import PoisonEvent
from civicgrid_common.consumer.runtime import Handler
from civicgrid_common.contracts import Contracts, SchemaViolation
from civicgrid_common.identity.principal import Principal, Role
from civicgrid_common.timers import Timer

from civicgrid_approval.application.service import ApprovalNotFound, ApprovalService
from civicgrid_approval.domain.approval import ApprovalRuleViolation
from civicgrid_approval.domain.definition import Action

log = logging.getLogger(__name__)

REGISTERED = "civicgrid.intake.case.registered.v1"
ACCEPTED = "civicgrid.intake.case.accepted.v1"
ROUTED = "civicgrid.intake.case.routed.v1"
GREEN = "civicgrid.intake.case.green_channelled.v1"
SUPPLEMENTED = "civicgrid.intake.case.supplemented.v1"
WITHDRAWN = "civicgrid.intake.case.withdrawn.v1"
OPINION = re.compile(r"^civicgrid\.department\.([a-z][a-z0-9_]{1,39})\.opinion_given\.v1$")
DEPARTMENT_SOURCE = "/civicgrid/departments/"
# What approval keeps of a registered case: enough to start its approval when it is routed.
REGISTERED_FACTS = ("affair_code", "affair_version", "jurisdiction", "routing", "level", "time_limit_working_days",
                    "materials_required", "materials_optional")


class RejectedOpinion(PoisonEvent):
    """A department opinion approval refuses; the runtime dead-letters it at once (no retry can
    make it acceptable) with this message."""

    # reason: not-an-opinion, wrong-source, wrong-dataschema, schema-violation, stale-task,
    # unknown-approval, refused
    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


def intake_cases_handler(service: ApprovalService) -> Handler:
    """civicgrid.intake.cases: each event one command of the service, in the inbox transaction."""
    within = service.transactions.within

    async def handle(conn: asyncpg.Connection, event: CloudEvent) -> None:
        case_id, data = event.subject, event.data or {}
        if not case_id:
            return
        actor = f"intake:{data.get('actor', 'system')}"
        if event.type == REGISTERED:
            await within(conn, service.case_registered(case_id, {k: data[k] for k in REGISTERED_FACTS if k in data}))
        elif event.type == ACCEPTED:
            await within(conn, service.case_accepted(case_id, {"case_number": data["case_number"],
                                                               "due_date": data["due_date"]}))
        elif event.type == ROUTED:
            if await within(conn, service.case_routed(case_id, data.get("routing"), actor=actor)) is None:
                log.info("case %s was routed: no approval started (unknown to approval, no workflow for its "
                         "affair, or started already)", case_id)
        elif event.type == GREEN:
            await within(conn, service.case_green_channelled(case_id, data["reason"], actor=actor))
        elif event.type == SUPPLEMENTED and not data.get("materials_missing"):
            await within(conn, service.case_supplemented(case_id, actor=actor))
        elif event.type == WITHDRAWN:
            await within(conn, service.case_withdrawn(case_id, data.get("reason"), actor=actor))

    return handle


def department_opinions_handler(service: ApprovalService, contracts: Contracts, schema_base_url: str):
    """`schema_base_url`: where the contracts are published (settings.schema_base_url); an
    opinion names its schema there, as contracts/asyncapi.yaml tells the department to."""
    async def handle(conn: asyncpg.Connection, event: CloudEvent) -> None:
        m = OPINION.match(event.type)
        if m is None:
            raise RejectedOpinion("not-an-opinion", f"{event.type} is not a department opinion type")
        department = m.group(1)
        if event.source != DEPARTMENT_SOURCE + department:
            raise RejectedOpinion("wrong-source", f"the source {event.source!r} of {event.id} is not the "
                                                  f"{department} system ({DEPARTMENT_SOURCE + department})")
        schema = dataschema_for(event.type, schema_base_url)
        if event.dataschema != schema:
            raise RejectedOpinion("wrong-dataschema", f"{event.id} names the schema {event.dataschema!r}; "
                                                      f"the contract's is {schema}")
        try:
            contracts.validate(event.type, event.data)
        except SchemaViolation as exc:
            raise RejectedOpinion("schema-violation", str(exc)) from exc
        data = event.data
        # The department's system answers for the whole district approval serves.
        system = Principal(subject=f"{department}-system", roles=frozenset({Role.DEPARTMENT}),
                           jurisdictions=(service.district,), department=department, name=data.get("checked_by"))
        try:
            await service.transactions.within(conn, service.acting(
                system, data["approval_id"], Action(data["opinion"]), comment=data["comment"], task=data["task"]))
        except ApprovalNotFound as exc:
            raise RejectedOpinion("unknown-approval", f"no approval {exc}") from exc
        except ApprovalRuleViolation as exc:
            stale = exc.code in ("task-not-current", "concluded", "opinion-given", "waiting-for-supplement")
            raise RejectedOpinion("stale-task" if stale else "refused",
                                  f"approval {data['approval_id']}, task {data['task']}: {exc.code}: {exc}") from exc

    return handle


def deadline_timers_handler(service: ApprovalService) -> Callable[[asyncpg.Connection, Timer], Awaitable[None]]:
    """The TimerWorker's handler: the deadline's command, in the transaction that marks the timer fired."""
    async def on_timer(conn: asyncpg.Connection, timer: Timer) -> None:
        await service.transactions.within(conn, service.deadline_reached(
            timer.payload["approval_id"], timer.payload["task"], timer.kind))

    return on_timer
