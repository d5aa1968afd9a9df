"""approval's use cases: workflows, starting approvals, acting, verifying, deadlines.

Every command runs in a unit of work (civicgrid_common.unit_of_work): load the aggregate, let
it decide, and the commit appends its events with their outbox rows, brings the read tables up
to date and reconciles the current task's deadline timers (the projectors of
adapters/approval_views.py and adapters/deadlines.py) in ONE transaction. A command that loses
to a concurrent one (a reviewer's append against a firing deadline timer, which lock in
opposite orders; a concurrency conflict) is tried again on fresh state under the service's one
retry policy, then answered 503 (Contended). A retry never decides on something the person did
not see: the task acted on is pinned on the first load (a moved task is then `task-not-current`,
409) and an `expected_version` is checked on every attempt.

Who may see and act is decided here, for every approval the same way: an approval the caller
may not see is answered as no approval at all (ApprovalNotFound, 404), ids and jurisdictions
cannot be probed; who may act on the current task the aggregate decides (`Approval.refusal`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Awaitable, Callable, Mapping, Protocol, Sequence

from civicgrid_common.calendar.working_days import WorkingCalendar
from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.contracts import Departments
from civicgrid_common.eventstore import AggregateNotFound, RecordedEvent, Verification
from civicgrid_common.identity.principal import Principal, Role
from civicgrid_common.problems import NotFound, Refusal, RuleViolation, body_error
from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_approval.domain.approval import (
    ACTED, ACCESS_AFFAIR, CONCLUDED, Approval, ApprovalRuleViolation, RuleKind, Subject, approval_id_for,
    archive_digest,
)
from civicgrid_approval.domain.definition import (
    Action, Definition, DefinitionIn, InvalidDefinition, Workflow, unknown_departments,
)
from civicgrid_approval.domain.seals import Signer, signature_valid

DEPARTMENT_SIGNER = "department:"


class Keys(Protocol):
    """The seal keys (adapters/keystore.py)."""

    async def signer_for(self, uow: UnitOfWork, owner: str, *, kind: str = "person") -> Signer:
        """The owner's active key, made on first use in the unit's transaction."""

    async def public_keys(self) -> dict[str, tuple[str, Any]]:
        """key id -> (owner, public key), every key ever made."""


class Archives(Protocol):
    """The archive records written on conclusion (adapters/approval_views.py)."""

    async def archive(self, approval_id: str) -> tuple[str, dict[str, Any]] | None: ...


class CaseFacts(Protocol):
    """What approval learned of intake's cases from their events (adapters/case_facts.py)."""

    async def record(self, uow: UnitOfWork, case_id: str, **facts: Any) -> None:
        """Set these columns of the case's facts (registered, accepted, green_reason, withdrawn, approval_id)."""

    async def of(self, uow: UnitOfWork, case_id: str) -> Mapping[str, Any] | None: ...


class ApprovalNotFound(NotFound):
    """No such approval, or none the caller may see (answered alike)."""

    def __init__(self, approval_id: str) -> None:
        super().__init__("approval", approval_id)


class WorkflowNotFound(NotFound):
    def __init__(self, affair_code: str) -> None:
        super().__init__("workflow for", affair_code)
        self.affair_code = affair_code


class StaleVersion(RuleViolation):
    refusal = Refusal.STALE

    def __init__(self, expected: int, actual: int) -> None:
        self.expected, self.actual = expected, actual
        super().__init__("stale_version", f"the approval is at version {actual}, not {expected}: reload it and "
                         "decide again", field="expected_version", current_version=actual)


class NotAllowed(RuleViolation):
    """The caller's role or department may not do this (403)."""

    refusal = Refusal.FORBIDDEN

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)


class InvalidApplication(RuleViolation):
    refusal = Refusal.INVALID

    def __init__(self, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__("invalid_application", "The application does not hold.", errors=errors)


@dataclass(frozen=True)
class CaseStart:
    """What approval learned of a case from intake's events, enough to start its approval."""

    case_id: str
    case_number: str | None
    affair_code: str
    jurisdiction: str
    routing: Mapping[str, Any]
    green_channel: bool = False
    # The affair's checklist (material codes) the case was registered with: what a supplement
    # request may ask for. None: not known (a case registered before approval kept it).
    materials: tuple[str, ...] | None = None


Command = Callable[[UnitOfWork], Awaitable[Any]]


class ApprovalService:
    def __init__(self, transactions: Transactions, keys: Keys, archives: Archives, case_facts: CaseFacts, *,
                 calendar: Callable[[], Awaitable[WorkingCalendar]], departments: Departments, district: str,
                 clock: Clock = utc_now) -> None:
        self.transactions = transactions
        self.keys = keys
        self.archives = archives
        self.case_facts = case_facts
        self.calendar = calendar
        self.departments = departments
        self.district = district
        self.clock = clock

    def now(self) -> datetime:
        """The clock's instant in UTC (the one convention; local dates are the domain's to compute)."""
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the clock gives timezone-aware instants")
        return now.astimezone(timezone.utc)

    # ------------------------------------------------------------------ workflows

    async def seed_if_empty(self, definitions: Sequence[Definition]) -> int:
        """Define each workflow that has no version yet (another replica may seed at once: a
        conflict is retried and then finds it defined)."""
        made = 0
        for definition in definitions:
            async def seed(uow: UnitOfWork, d: Definition = definition) -> bool:
                stream = Workflow.stream_for(d.affair_code)
                if await uow.find(Workflow, stream) is not None:
                    return False
                uow.add(Workflow(stream)).define(d, by="seed", at=self.now().isoformat())
                return True

            made += await self.transactions(seed)
        return made

    async def workflow(self, affair_code: str) -> Workflow:
        try:
            return await self.transactions.load(Workflow, Workflow.stream_for(affair_code))
        except AggregateNotFound:
            raise WorkflowNotFound(affair_code) from None

    async def workflows(self) -> list[Workflow]:
        """Every affair's workflow, by affair code."""
        ids = await self.transactions.store.stream_ids(Workflow.stream_type)
        return [await self.transactions.load(Workflow, stream_id) for stream_id in ids]

    async def define_workflow(self, principal: Principal, affair_code: str, body: DefinitionIn) -> Workflow:
        """A leader or bureau approver of the owning department (or an admin) sets a new version."""
        definition = body.for_affair(affair_code)
        unknown = unknown_departments(definition, self.departments)
        if unknown:
            raise InvalidDefinition([{"pointer": pointer, "detail": f"{code!r} is no department "
                                      "(contracts/departments.yaml lists them)"} for pointer, code in unknown])

        async def define(uow: UnitOfWork) -> Workflow:
            stream = Workflow.stream_for(affair_code)
            w = await uow.find(Workflow, stream) or uow.add(Workflow(stream))
            owner = w.current.department if w.current else None
            owners = {definition.department} | ({owner} if owner else set())
            if not principal.has_any(Role.ADMIN):
                if not principal.has_any(Role.LEADER, Role.BUREAU_APPROVER) or principal.department not in owners \
                        or len(owners) > 1 and principal.department != owner:
                    raise NotAllowed("not_the_owner", f"the {affair_code} workflow is changed by the "
                                     f"{' / '.join(sorted(owners))} bureau's leaders or approvers, or an admin")
            w.define(definition, by=principal.subject, at=self.now().isoformat())
            return w

        return await self.transactions(define)

    # ------------------------------------------------------------------ starting

    async def start_access(self, principal: Principal, application_id: str,
                           application: Mapping[str, Any]) -> Approval:
        """A department's access application (准入) starts an approval of the access workflow."""
        # The input first: the departments and communities it names are public, and a caller who
        # names one that does not exist is told so rather than that it is not theirs.
        self._check_application(application)
        if not principal.has_any(Role.DEPARTMENT, Role.BUREAU_APPROVER, Role.LEADER) or \
                principal.department != application["department"] or not principal.jurisdictions:
            raise NotAllowed("not_your_department",
                             "a department applies for its own access (department system, approver or leader)")
        approval_id = approval_id_for(f"access:{application_id}")

        async def start(uow: UnitOfWork) -> Approval:
            if await uow.find(Approval, approval_id) is not None:
                raise ApprovalRuleViolation(RuleKind.CONFLICT, "already-applied", "this application was submitted")
            # The district approval serves: the communities were checked against it.
            subject = Subject(application_id, None, ACCESS_AFFAIR, self.district, {"kind": "access"},
                              application=application)
            return await self._start(uow, approval_id, subject, principal.subject)

        return await self.transactions(start)

    def _check_application(self, application: Mapping[str, Any]) -> None:
        communities = list(application["communities"])
        errors = [body_error(["communities", i], "a community code has 12 digits")
                  for i, c in enumerate(communities) if not (len(c) == 12 and c.isdigit())]
        errors += [body_error(["communities", i], f"not a community of district {self.district}")
                   for i, c in enumerate(communities) if len(c) == 12 and not c.startswith(self.district)]
        if application["department"] not in self.departments:
            errors.append(body_error("department", f"{application['department']!r} is no department "
                                                   "(contracts/departments.yaml lists them)"))
        if date.fromisoformat(str(application["valid_until"])) < date.fromisoformat(str(application["valid_from"])):
            errors.append(body_error("valid_until", "valid_until is not before valid_from"))
        if len(set(communities)) != len(communities):
            errors.append(body_error("communities", "each community once"))
        if errors:
            raise InvalidApplication(errors)

    async def _start(self, uow: UnitOfWork, approval_id: str, subject: Subject, actor: str) -> Approval:
        w = await uow.find(Workflow, Workflow.stream_for(subject.affair_code))
        if w is None or w.current is None:
            raise WorkflowNotFound(subject.affair_code)
        a = uow.add(Approval(approval_id))
        a.start(subject, w.current, w.current_version, now=self.now(), calendar=await self.calendar(), actor=actor)
        return a

    # ------------------------------------------------------------------ what intake's cases tell

    def case_registered(self, case_id: str, registered: Mapping[str, Any]) -> Command:
        async def record(uow: UnitOfWork) -> None:
            await self.case_facts.record(uow, case_id, registered=dict(registered))
        return record

    def case_accepted(self, case_id: str, accepted: Mapping[str, Any]) -> Command:
        async def record(uow: UnitOfWork) -> None:
            await self.case_facts.record(uow, case_id, accepted=dict(accepted))
        return record

    def case_routed(self, case_id: str, routing: Mapping[str, Any] | None, *, actor: str) -> Command:
        """Start the case's approval from what approval learned of it (deterministic id: a
        second `routed` starts nothing); None if the case needs no approval here."""
        async def start(uow: UnitOfWork) -> Approval | None:
            facts = await self.case_facts.of(uow, case_id)
            if facts is None or facts.get("registered") is None:
                return None  # routed but never seen registered: nothing to start from
            registered, accepted = facts["registered"], facts.get("accepted") or {}
            if await uow.find(Workflow, Workflow.stream_for(registered["affair_code"])) is None:
                return None  # no workflow: the affair needs no approval here
            approval_id = approval_id_for(case_id)
            if await uow.find(Approval, approval_id) is not None:
                return None
            checklist = None
            if "materials_required" in registered:  # cases registered before approval kept it: unknown
                checklist = (*registered["materials_required"], *registered.get("materials_optional", ()))
            subject = Subject(case_id, accepted.get("case_number"), registered["affair_code"],
                              registered["jurisdiction"], routing or registered.get("routing") or {},
                              facts.get("green_reason") is not None, materials=checklist)
            a = await self._start(uow, approval_id, subject, actor)
            await self.case_facts.record(uow, case_id, approval_id=a.id)
            return a
        return start

    def case_green_channelled(self, case_id: str, reason: str, *, actor: str) -> Command:
        async def prioritise(uow: UnitOfWork) -> bool:
            await self.case_facts.record(uow, case_id, green_reason=reason)
            return await self._decide(uow, approval_id_for(case_id),
                                      lambda a, now, _: a.prioritise(reason, now=now, actor=actor))
        return prioritise

    def case_supplemented(self, case_id: str, *, actor: str) -> Command:
        """Nothing is missing any more: the approval's clock runs again."""
        return lambda uow: self._decide(uow, approval_id_for(case_id),
                                        lambda a, now, cal: a.resume(now=now, calendar=cal, actor=actor))

    def case_withdrawn(self, case_id: str, reason: str | None, *, actor: str) -> Command:
        async def cancel(uow: UnitOfWork) -> bool:
            await self.case_facts.record(uow, case_id, withdrawn=True)
            return await self._decide(uow, approval_id_for(case_id),
                                      lambda a, now, _: a.cancel(reason, now=now, actor=actor))
        return cancel

    def deadline_reached(self, approval_id: str, task: str, kind: str) -> Command:
        """A timer fired: warn or mark overdue, if that task is still the current one."""
        if kind == "warning":
            return lambda uow: self._decide(uow, approval_id, lambda a, now, _: a.warn(task, now=now))
        return lambda uow: self._decide(uow, approval_id, lambda a, now, _: a.mark_overdue(task, now=now))

    async def _decide(self, uow: UnitOfWork, approval_id: str,
                      decide: Callable[[Approval, datetime, WorkingCalendar], bool]) -> bool:
        """A system decision on the approval, if it exists; False if nothing was decided."""
        a = await uow.find(Approval, approval_id)
        if a is None:
            return False
        return decide(a, self.now(), await self.calendar())

    # ------------------------------------------------------------------ acting

    async def get(self, principal: Principal, approval_id: str) -> Approval:
        """The approval, if the caller may see it."""
        try:
            a = await self.transactions.load(Approval, approval_id)
        except AggregateNotFound:
            raise ApprovalNotFound(approval_id) from None
        if not a.may_be_seen_by(principal):
            raise ApprovalNotFound(approval_id)
        return a

    async def load(self, approval_id: str) -> Approval:
        """The approval as its stream has it (for the system and tests: no access check)."""
        try:
            return await self.transactions.load(Approval, approval_id)
        except AggregateNotFound:
            raise ApprovalNotFound(approval_id) from None

    async def act(self, principal: Principal, approval_id: str, action: Action, *, comment: str,
                  expected_version: int | None = None, task: str | None = None, branch: str | None = None,
                  finish: bool = False, new_due_date: date | None = None,
                  materials: Sequence[str] = ()) -> Approval:
        return await self.transactions(self.acting(
            principal, approval_id, action, comment=comment, expected_version=expected_version, task=task,
            branch=branch, finish=finish, new_due_date=new_due_date, materials=materials))

    def acting(self, principal: Principal, approval_id: str, action: Action, *, comment: str,
               expected_version: int | None = None, task: str | None = None, branch: str | None = None,
               finish: bool = False, new_due_date: date | None = None, materials: Sequence[str] = ()) -> Command:
        """A person's or a department system's move on the current task, as a command."""
        pinned = task

        async def act(uow: UnitOfWork) -> Approval:
            nonlocal pinned
            a = await uow.find(Approval, approval_id)
            if a is None or not a.may_be_seen_by(principal):
                raise ApprovalNotFound(approval_id)
            if expected_version is not None and expected_version != a.version:
                raise StaleVersion(expected_version, a.version)
            if pinned is None and not a.is_final:
                pinned = a.task.key  # a retry acts on the task the first attempt saw, or not at all
            if principal.has_any(Role.DEPARTMENT) and principal.department:
                signer = await self.keys.signer_for(uow, DEPARTMENT_SIGNER + principal.department, kind="department")
            else:
                signer = await self.keys.signer_for(uow, principal.subject)
            a.act(principal, action, comment=comment, signer=signer, now=self.now(), calendar=await self.calendar(),
                  task=pinned, branch=branch, finish=finish, new_due_date=new_due_date, materials=materials)
            return a

        return act

    # ------------------------------------------------------------------ verification

    async def history(self, principal: Principal, approval_id: str) -> tuple[list[RecordedEvent], Verification]:
        """The approval's events as recorded (every input of each hash, the data not upcast) and
        whether the chain holds: for an auditor to re-check it without our word."""
        await self.get(principal, approval_id)
        store = self.transactions.store
        return await store.read_stream_as_recorded(approval_id), await store.verify_stream(approval_id)

    async def verify(self, principal: Principal, approval_id: str) -> dict[str, Any]:
        """Every seal (its decision equals the event, the signature, the chain, the key's owner),
        the final seal and archive digest, and the event store's hash chain."""
        await self.get(principal, approval_id)
        store = self.transactions.store
        events = await store.read_stream(approval_id)
        keys = await self.keys.public_keys()
        checks: list[dict[str, Any]] = []

        def check(name: str, ok: bool, detail: str, **where: Any) -> None:
            checks.append({"check": name, "passed": ok, "detail": detail, **where})

        chain = await store.verify_stream(approval_id)
        check("hash_chain", chain.valid,
              f"{chain.checked} stored events re-hashed" if chain.valid else
              "; ".join(f"version {f.version}: {f.reason}" for f in chain.failures))
        previous: str | None = None
        last_seal: dict[str, Any] | None = None
        for e in events:
            if e.type != ACTED:
                continue
            d, s = e.data, e.data["seal"]
            decision = s["decision"]
            signer_ok = decision["signer"] in (d["actor"], DEPARTMENT_SIGNER + str(d.get("actor_department")))
            expected = {"approval_id": approval_id, "step": d["step"], "branch": d["branch"], "action": d["action"],
                        "outcome": d["outcome"], "time": d["acted_at"], "signer": decision["signer"],
                        "key_id": s["key_id"], "previous": previous}
            mismatched = sorted(k for k in expected if decision.get(k) != expected[k])
            if not signer_ok:
                mismatched.append("signer")
            check("seal_matches_event", not mismatched,
                  "the sealed decision is this event's" if not mismatched else
                  f"the sealed decision differs from the event in: {', '.join(mismatched)}",
                  version=e.version, step=d["step"], action=d["action"])
            known = keys.get(s["key_id"])
            if known is None:
                check("seal_signature", False, f"unknown key {s['key_id']}", version=e.version)
            else:
                owner, public = known
                ok = owner == decision["signer"] and signature_valid(public, decision, s["signature"])
                check("seal_signature", ok, "Ed25519 signature valid" if ok else
                      "the signature does not verify with the signer's key", version=e.version, key_id=s["key_id"])
            previous = s["signature"]
            last_seal = s
        concluded = next((e for e in events if e.type == CONCLUDED or e.type.endswith("access.decided.v1")), None)
        if concluded is not None:
            final = concluded.data["final_seal"]
            ok = last_seal is not None and final == {"key_id": last_seal["key_id"], "signature": last_seal["signature"]}
            check("final_seal", ok, "the conclusion carries the last decision's seal" if ok else
                  "the conclusion's seal is not the last decision's", version=concluded.version)
            replayed = Approval.replay(approval_id, events)
            digest = archive_digest(replayed.archive_record())
            stored = await self.archives.archive(approval_id)
            ok = concluded.data["archive_digest"] == digest and stored is not None and stored[0] == digest \
                and archive_digest(stored[1]) == digest
            check("archive", ok, "the archive record hashes to the digest the conclusion carries" if ok else
                  "the archive record does not match the digest the conclusion carries")
        return {"approval_id": approval_id, "valid": all(c["passed"] for c in checks), "checks": checks}

    async def archive(self, principal: Principal, approval_id: str) -> tuple[str, dict[str, Any]]:
        await self.get(principal, approval_id)
        found = await self.archives.archive(approval_id)
        if found is None:
            raise NotYetArchived()
        return found


class NotYetArchived(RuleViolation):
    refusal = Refusal.NOT_FOUND

    def __init__(self) -> None:
        super().__init__("not_concluded", "the approval is not concluded: no archive yet")
