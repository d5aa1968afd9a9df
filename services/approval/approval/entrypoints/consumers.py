"""What approval consumes, each handler in the consumer's transaction (effectively once).

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
  late or twice, an unknown approval, an action the step refuses) raises `RejectedOpinion`:
  its transaction changes nothing, and the consumer runtime, after its retries, produces the
  record untouched to the dead-letter topic with the reason in `x-dlq-error-message`
  (`<reason>: <detail>`) and `x-dlq-error-type` naming RejectedOpinion.
"""
from __future__ import annotations

import json
import logging
import re

import asyncpg

from civicgrid_common.cloudevents import CloudEvent
from civicgrid_common.consumer import PoisonEvent
from civicgrid_common.contracts import Contracts, SchemaViolation
from civicgrid_common.identity.principal import Principal, Role

from approval.application.service import ApprovalNotFound, ApprovalService, CaseStart
from approval.domain.approval import ApprovalRuleViolation
from approval.domain.definition import Action

log = logging.getLogger(__name__)

REGISTERED = "civicgrid.intake.case.registered.v1"
ACCEPTED = "civicgrid.intake.case.accepted.v1"
ROUTED = "civicgrid.intake.case.routed.v1"
GREEN = "civicgrid.intake.case.green_channelled.v1"
SUPPLEMENTED = "civicgrid.intake.case.supplemented.v1"
WITHDRAWN = "civicgrid.intake.case.withdrawn.v1"
OPINION = re.compile(r"^civicgrid\.department\.([a-z][a-z0-9_]{1,39})\.opinion_given\.v1$")
DEPARTMENT_SOURCE = "/civicgrid/departments/"


class RejectedOpinion(PoisonEvent):
    """A department opinion approval refuses; the runtime dead-letters it at once (no retry can
    make it acceptable) with this message."""

    # reason: not-an-opinion, wrong-source, schema-violation, stale-task, unknown-approval, refused
    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


def intake_cases_handler(service: ApprovalService):
    async def handle(conn: asyncpg.Connection, event: CloudEvent) -> None:
        case_id = event.subject
        data = event.data or {}
        if not case_id:
            return
        actor = f"intake:{data.get('actor', 'system')}"
        if event.type == REGISTERED:
            await conn.execute(
                "INSERT INTO case_facts (case_id, registered) VALUES ($1, $2::jsonb) "
                "ON CONFLICT (case_id) DO UPDATE SET registered = EXCLUDED.registered",
                case_id, {k: data[k] for k in ("affair_code", "affair_version", "jurisdiction", "routing", "level",
                                               "time_limit_working_days", "materials_required",
                                               "materials_optional") if k in data})
        elif event.type == ACCEPTED:
            await conn.execute(
                "INSERT INTO case_facts (case_id, accepted) VALUES ($1, $2::jsonb) "
                "ON CONFLICT (case_id) DO UPDATE SET accepted = EXCLUDED.accepted",
                case_id, {"case_number": data["case_number"], "due_date": data["due_date"]})
        elif event.type == ROUTED:
            facts = await conn.fetchrow("SELECT * FROM case_facts WHERE case_id = $1", case_id)
            if facts is None or facts["registered"] is None:
                log.warning("case %s was routed but approval never saw it registered: no approval started", case_id)
                return
            registered = _object(facts["registered"])
            accepted = _object(facts["accepted"] or {})
            try:
                await service.workflow(registered["affair_code"], conn=conn)
            except ApprovalNotFound:
                log.warning("no workflow for %s: case %s needs no approval here", registered["affair_code"], case_id)
                return
            checklist = None
            if "materials_required" in registered:  # cases registered before approval kept it: unknown
                checklist = (*registered["materials_required"], *registered.get("materials_optional", ()))
            a = await service.start_for_case(conn, CaseStart(
                case_id=case_id, case_number=accepted.get("case_number"), affair_code=registered["affair_code"],
                jurisdiction=registered["jurisdiction"], routing=data.get("routing") or registered.get("routing") or {},
                green_channel=facts["green_reason"] is not None, materials=checklist), actor=actor)
            if a is not None:
                await conn.execute("UPDATE case_facts SET approval_id = $2 WHERE case_id = $1", case_id, a.id)
        elif event.type == GREEN:
            await conn.execute(
                "INSERT INTO case_facts (case_id, green_reason) VALUES ($1, $2) "
                "ON CONFLICT (case_id) DO UPDATE SET green_reason = EXCLUDED.green_reason", case_id, data["reason"])
            await service.prioritise(conn, case_id, data["reason"], actor=actor)
        elif event.type == SUPPLEMENTED:
            if not data.get("materials_missing"):
                await service.resume(conn, case_id, actor=actor)
        elif event.type == WITHDRAWN:
            await conn.execute(
                "INSERT INTO case_facts (case_id, withdrawn) VALUES ($1, true) "
                "ON CONFLICT (case_id) DO UPDATE SET withdrawn = true", case_id)
            await service.cancel(conn, case_id, data.get("reason"), actor=actor)

    return handle


def department_opinions_handler(service: ApprovalService, contracts: Contracts):
    async def handle(conn: asyncpg.Connection, event: CloudEvent) -> None:
        m = OPINION.match(event.type)
        if m is None:
            raise RejectedOpinion("not-an-opinion", f"{event.type} is not a department opinion type")
        department = m.group(1)
        if event.source != DEPARTMENT_SOURCE + department:
            raise RejectedOpinion("wrong-source", f"the source {event.source!r} of {event.id} is not the "
                                                  f"{department} system ({DEPARTMENT_SOURCE + department})")
        try:
            contracts.validate(event.type, event.data)
        except SchemaViolation as exc:
            raise RejectedOpinion("schema-violation", str(exc)) from exc
        data = event.data
        system = Principal(subject=f"{department}-system", roles=frozenset({Role.DEPARTMENT}), jurisdictions=(),
                           department=department, name=data.get("checked_by"))
        try:
            await service.act(system, data["approval_id"], Action(data["opinion"]), comment=data["comment"],
                              task=data["task"], conn=conn)
        except ApprovalNotFound as exc:
            raise RejectedOpinion("unknown-approval", f"no approval {exc}") from exc
        except ApprovalRuleViolation as exc:
            stale = exc.code in ("task-not-current", "concluded", "opinion-given", "waiting-for-supplement")
            raise RejectedOpinion("stale-task" if stale else "refused",
                                  f"approval {data['approval_id']}, task {data['task']}: {exc.code}: {exc}") from exc

    return handle


def _object(value):
    """A jsonb object; rows written by the first release hold it as a JSON string."""
    return json.loads(value) if isinstance(value, str) else value
