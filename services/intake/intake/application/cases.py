"""Use cases of the case (受理件) at the one window: register, accept, refuse, supplement,
route, green channel, withdraw, complete, rate and the bad review's follow-up.

Each command loads the case, lets the aggregate decide, and in ONE transaction appends its
events and updates the window's read table (adapters/case_views.py), so a read right after a
command sees it and nothing is half-done whatever crashes when. `now` comes from the injected
clock; the working-day calendar is loaded with the admins' overrides for every acceptance.

Who may see a case is decided here (`may_see`), against the case itself: staff inside the case's
jurisdiction; a department system only a case routed to its department, inside its jurisdiction.
A case the caller may not see is answered as no case at all (CaseNotFound, 404): ids and
jurisdictions cannot be probed.
"""
from __future__ import annotations

import enum
import inspect
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any, Awaitable, Callable, Iterable, Protocol, Sequence

import asyncpg
from uuid6 import uuid7

from civicgrid_common.calendar.overrides import load_calendar
from civicgrid_common.calendar.working_days import local_date
from civicgrid_common.eventstore import ConcurrencyConflict, EventStore, Repository, Verification
from civicgrid_common.events import StoredEvent
from civicgrid_common.identity.principal import Principal, Role
from civicgrid_common.problems import NotFound, Refusal, RuleViolation

from intake.application.catalogue import CatalogueService
from intake.domain.applicant import IdentityKind
from intake.domain.case import Actor, Affair, AffairLevel, Case, CaseRuleViolation, CaseStatus, Channel
from intake.domain.catalogue import (
    AffairRevision, ApplicantFacts, CatalogueRuleViolation, EligibilityRule, Ineligibility, Material, evaluate,
    rule_to_data,
)
from intake.domain.rating import FollowUpPolicy

Clock = Callable[[], datetime]
# A case is changed by a few people at most: a lost race is retried on fresh state.
_ATTEMPTS = 3


class CaseViews(Protocol):
    """The window's read tables and the daily case-number counter (adapters/case_views.py),
    written inside the transaction that appends the case's events."""

    async def lock_for_writing(self, conn: asyncpg.Connection) -> None:
        """The first statement of a transaction that will append case events."""

    async def next_case_sequence(self, conn: asyncpg.Connection, street: str, day: date) -> int:
        """The street's next number of the day, given back if the transaction rolls back."""

    async def project(self, conn: asyncpg.Connection, events: Sequence[StoredEvent]) -> None:
        """Apply freshly stored case events to the read tables."""

    async def jurisdiction_of(self, case_id: str) -> str | None:
        """The case's jurisdiction, None if there is no such case."""

    async def departments_of(self, case_id: str) -> list[str]:
        """The departments the case was routed to (none before routing)."""


class KnownApplicants(Protocol):
    """The applicants this intake knows (application/applicants.py's ApplicantService)."""

    async def facts(self, applicant_id: str) -> ApplicantFacts | None:
        """The applicant's eligibility facts, None if intake does not know the applicant."""

    async def identity_of(self, conn: asyncpg.Connection, applicant_id: str) -> tuple[IdentityKind, str] | None:
        """The applicant's identity number and its kind, None if intake holds none."""


@dataclass(frozen=True)
class Disclosure:
    """An identity number handed to a department system; recorded on the case as an event."""

    case_id: str
    applicant_id: str
    kind: IdentityKind
    identity_number: str
    department: str
    disclosed_at: datetime


class NoIdentityOnRecord(RuleViolation):
    def __init__(self) -> None:
        super().__init__("no_identity_on_record",
                         "intake holds no identity number for this case's applicant (personal data erased)")


@dataclass(frozen=True)
class DeclaredFacts:
    """Facts the clerk declares from a document the applicant shows (the certificate itself is
    then among the materials); None: not declared, the profile's (unknown) stands."""

    registered_unemployed: bool | None = None
    holds_disability_certificate: bool | None = None

    def as_data(self) -> dict[str, bool]:
        return {k: v for k, v in vars(self).items() if v is not None}


class UnknownApplicant(RuleViolation):
    refusal = Refusal.INVALID

    def __init__(self) -> None:
        super().__init__("unknown_applicant", "intake knows no applicant with this id: register the applicant "
                         "first (POST /v1/applicants)", field="applicant_id")


class NotEligible(RuleViolation):
    """The catalogue's eligibility rule for the affair refuses the applicant at the window."""

    refusal = Refusal.INVALID

    def __init__(self, affair_code: str, rule: EligibilityRule, reasons: Sequence[Ineligibility]) -> None:
        self.affair_code = affair_code
        self.rule = rule
        self.reasons = list(reasons)
        super().__init__("not_eligible", f"the applicant may not apply for {affair_code}: "
                         + "; ".join(f"{r.rule}: {r.reason}" for r in self.reasons),
                         errors=[{"pointer": "#/applicant_id", "rule": r.rule, "detail": r.reason} for r in reasons],
                         affair_code=affair_code, eligibility_rule=rule_to_data(rule))


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


# The states in which a case waits for approval: accepted (and routed) until the result is in.
COMPLETABLE = frozenset({CaseStatus.ACCEPTED, CaseStatus.ROUTED})


class ApprovalEffect(str, enum.Enum):
    """What an event of approval did to the case."""

    COMPLETED = "completed"
    SUPPLEMENT_REQUESTED = "supplement_requested"
    # The same decision or request is already on the case (approval sent it again): nothing to do.
    ALREADY_RECORDED = "already_recorded"
    # The case waits for no result any more (withdrawn by the applicant meanwhile, refused at the
    # window, completed by another approval, archived): the fact is kept in approval's log,
    # intake's case is left as it is.
    NOT_WAITING = "not_waiting"


class _Unchanged(Exception):
    def __init__(self, effect: ApprovalEffect) -> None:
        self.effect = effect


class CaseNotFound(NotFound):
    """No such case, or none the caller may see (answered alike)."""

    def __init__(self, case_id: str) -> None:
        super().__init__("case", case_id)
        self.case_id = case_id


class OutsideJurisdiction(RuleViolation):
    """A new case's jurisdiction (from the body) is not the clerk's."""

    refusal = Refusal.OUTSIDE_JURISDICTION

    def __init__(self, code: str) -> None:
        self.jurisdiction = code
        super().__init__("outside_jurisdiction", f"{code} is not inside your jurisdiction", field="jurisdiction",
                         jurisdiction=code)


def may_see(principal: Principal, jurisdiction: str, routed_to: Sequence[str]) -> bool:
    """Staff inside the case's jurisdiction; a department system only what is routed to its
    department (a department's code is the same in every district, so its jurisdiction counts too)."""
    if not principal.may_act_in(jurisdiction):
        return False
    if principal.roles - {Role.DEPARTMENT}:
        return True
    return principal.department is not None and principal.department in routed_to


def case_affair(revision: AffairRevision) -> Affair:
    """What a case keeps of the catalogue entry's version it starts with."""
    entry = revision.affair
    return Affair(
        code=entry.code,
        version=revision.version,
        time_limit_working_days=entry.time_limit_working_days,
        # The once-and-complete "what is missing" answer is about required materials only.
        materials_required=tuple(m.code for m in entry.required_materials()),
        routing=entry.routing,
        level=AffairLevel(entry.level.value),
        # Accepted when handed in ("if applicable"), never counted as missing.
        materials_optional=tuple(m.code for m in entry.materials if not m.required),
    )


def actor_of(principal: Principal) -> Actor:
    return Actor.of(principal.subject, principal.roles)


@dataclass(frozen=True)
class CaseHistory:
    case_id: str
    events: list[StoredEvent]
    verification: Verification


class CasesService:
    def __init__(self, pool: asyncpg.Pool, store: EventStore, catalogue: CatalogueService, views: CaseViews,
                 applicants: KnownApplicants, *, clock: Clock = system_clock,
                 follow_up_policy: FollowUpPolicy = FollowUpPolicy()) -> None:
        self.pool = pool
        self.applicants = applicants
        self.store = store
        self.views = views
        self.catalogue = catalogue
        self.clock = clock
        self.follow_up_policy = follow_up_policy
        self.repository: Repository[Case] = Repository(store, Case)

    # ------------------------------------------------------------------ reads

    async def get(self, case_id: str, principal: Principal) -> Case:
        case = await self._load(case_id)
        _check_visible(principal, case)
        return case

    async def history(self, case_id: str, principal: Principal) -> CaseHistory:
        """The stored events as they are, and whether their hash chain still holds. The case
        is not replayed: an altered history must still be shown, not fail to load."""
        jurisdiction = await self.views.jurisdiction_of(case_id)
        if jurisdiction is None or not may_see(principal, jurisdiction, await self.views.departments_of(case_id)):
            raise CaseNotFound(case_id)
        events = await self.store.read_stream(case_id)
        return CaseHistory(case_id, events, await self.store.verify_stream(case_id))

    async def materials_of(self, case: Case) -> dict[str, Material]:
        """The catalogue's materials (names, copies) of the affair's version the case keeps, by
        code: what the window prints in the "what is missing" answer."""
        if case.affair is None:
            return {}
        try:
            revision = (await self.catalogue.load()).revision(case.affair.code, case.affair.version)
        except CatalogueRuleViolation:
            return {}
        return {m.code: m for m in revision.affair.materials}

    # ------------------------------------------------------------------ commands

    async def register(self, principal: Principal, *, applicant_id: str, affair_code: str, jurisdiction: str,
                       channel: Channel | str, materials_handed_in: Iterable[str],
                       declared: DeclaredFacts = DeclaredFacts()) -> Case:
        """Record the affair with the materials handed in; the case takes the catalogue's
        current version of the affair and keeps it for life. The applicant must be one intake
        knows, and the affair's eligibility rule must hold for them where the case is made
        (UnknownApplicant, NotEligible: nothing is recorded)."""
        if not principal.may_act_in(jurisdiction):
            raise OutsideJurisdiction(jurisdiction)
        try:
            revision = await self.catalogue.current(affair_code)
        except CatalogueRuleViolation as e:
            raise CaseRuleViolation("unknown_affair", e.message) from None
        facts = await self.applicants.facts(applicant_id)
        if facts is None:
            raise UnknownApplicant()
        now = self.clock()
        facts = replace(facts, **{k: v for k, v in vars(declared).items() if v is not None})
        reasons = evaluate(revision.affair.eligibility, facts, place=jurisdiction, on=local_date(now))
        if reasons:
            raise NotEligible(affair_code, revision.affair.eligibility, reasons)
        case = Case(str(uuid7()))
        case.register(applicant_id=applicant_id, affair=case_affair(revision), jurisdiction=jurisdiction,
                      channel=channel, materials_handed_in=list(materials_handed_in), actor=actor_of(principal),
                      at=now, declared_facts=declared.as_data())
        async with self.pool.acquire() as conn, conn.transaction():
            await self.views.lock_for_writing(conn)
            await self._save(case, conn)
        return case

    async def accept(self, case_id: str, principal: Principal) -> Case:
        """Accept at the window; the case's receipt has its number and promised completion date."""
        calendar = await load_calendar(self.pool)

        async def accept(case: Case, conn: asyncpg.Connection, at: datetime) -> None:
            # The number is taken in this transaction: if the acceptance fails, it is given back.
            sequence = await self.views.next_case_sequence(conn, case.street_code, local_date(at))
            case.accept(daily_sequence=sequence, calendar=calendar, actor=actor_of(principal), at=at)

        return await self._change(case_id, principal, accept)

    async def refuse(self, case_id: str, principal: Principal, reason: str) -> Case:
        return await self._change(case_id, principal,
                                  lambda case, _, at: case.refuse(reason, actor=actor_of(principal), at=at))

    async def supplement(self, case_id: str, principal: Principal, materials: Iterable[str]) -> Case:
        handed_in = list(materials)
        return await self._change(case_id, principal,
                                  lambda case, _, at: case.supplement(handed_in, actor=actor_of(principal), at=at))

    async def route(self, case_id: str, principal: Principal) -> Case:
        return await self._change(case_id, principal,
                                  lambda case, _, at: case.route(actor=actor_of(principal), at=at))

    async def put_on_green_channel(self, case_id: str, principal: Principal, reason: str) -> Case:
        return await self._change(case_id, principal, lambda case, _, at: case.put_on_green_channel(
            reason, actor=actor_of(principal), at=at))

    async def withdraw(self, case_id: str, principal: Principal, *, applicant_id: str,
                       reason: str | None = None) -> Case:
        """The applicant takes the affair back, at the window (the clerk records it)."""
        return await self._change(case_id, principal, lambda case, _, at: case.withdraw(
            applicant_id=applicant_id, at=at, reason=reason))

    async def complete(self, case_id: str, *, outcome: str, approval_reference: str, decided_at: datetime,
                       conn: asyncpg.Connection | None = None) -> Case:
        """The approval's result arrived (called by approval's event handler, not by a person)."""
        return await self._change(case_id, None, lambda case, _, at: case.complete(
            outcome=outcome, approval_reference=approval_reference, decided_at=decided_at, at=at), conn=conn)

    async def conclude_from_approval(self, conn: asyncpg.Connection, case_id: str, *, approval_reference: str,
                                     outcome: str, decided_at: datetime) -> ApprovalEffect:
        """Approval concluded: complete the case, on the consumer's connection (its inbox
        transaction). A case that no longer waits for a result is left alone (see ApprovalEffect)."""
        def conclude(case: Case, _: asyncpg.Connection, at: datetime) -> None:
            if case.concluded_by(approval_reference):
                raise _Unchanged(ApprovalEffect.ALREADY_RECORDED)
            if case.status not in COMPLETABLE:
                raise _Unchanged(ApprovalEffect.NOT_WAITING)
            case.complete(outcome=outcome, approval_reference=approval_reference, decided_at=decided_at, at=at)

        return await self._unless_unchanged(case_id, conclude, conn, ApprovalEffect.COMPLETED)

    async def record_supplement_request(self, conn: asyncpg.Connection, case_id: str, *, approval_reference: str,
                                        step: str, materials: Sequence[str], comment: str, requested_by: str,
                                        requested_at: datetime) -> ApprovalEffect:
        """Approval asked for a supplement: record it on the case for the window (same rules)."""
        def record(case: Case, _: asyncpg.Connection, at: datetime) -> None:
            request = case.supplement_request
            if (request is not None and request.approval_reference == approval_reference
                    and request.step == step and request.requested_at == requested_at):
                raise _Unchanged(ApprovalEffect.ALREADY_RECORDED)
            if case.status not in COMPLETABLE:
                raise _Unchanged(ApprovalEffect.NOT_WAITING)
            case.request_supplement(approval_reference=approval_reference, step=step, materials=materials,
                                    comment=comment, requested_by=requested_by, requested_at=requested_at, at=at)

        return await self._unless_unchanged(case_id, record, conn, ApprovalEffect.SUPPLEMENT_REQUESTED)

    async def _unless_unchanged(self, case_id: str, command: Callable[[Case, asyncpg.Connection, datetime], Any],
                                conn: asyncpg.Connection, effect: ApprovalEffect) -> ApprovalEffect:
        try:
            await self._change(case_id, None, command, conn=conn)
        except _Unchanged as unchanged:
            return unchanged.effect
        return effect

    async def issue_certificate(self, case_id: str, principal: Principal, certificate_number: str) -> Case:
        """The approved result's certificate (证照) handed out at the window."""
        return await self._change(case_id, principal, lambda case, _, at: case.issue_certificate(
            certificate_number, actor=actor_of(principal), at=at))

    async def archive(self, case_id: str, principal: Principal) -> Case:
        """File the closed case (归档) with everything from registration to the final decision."""
        return await self._change(case_id, principal,
                                  lambda case, _, at: case.archive(actor=actor_of(principal), at=at))

    async def disclose_identity(self, case_id: str, principal: Principal, purpose: str) -> Disclosure:
        """The applicant's identity number for a department system (role department) whose
        department the case's routing names. The disclosure event and the read of the number
        are one transaction: no number leaves without its record, and a refusal records nothing."""
        department = principal.department or ""
        disclosed: list[Disclosure] = []

        async def disclose(case: Case, conn: asyncpg.Connection, at: datetime) -> None:
            case.disclose_identity(department=department, purpose=purpose, actor=actor_of(principal), at=at)
            identity = await self.applicants.identity_of(conn, case.applicant_id)
            if identity is None:
                raise NoIdentityOnRecord()
            disclosed.append(Disclosure(case.id, case.applicant_id, identity[0], identity[1], department, at))

        await self._change(case_id, principal, disclose)
        return disclosed[-1]

    async def rate(self, case_id: str, principal: Principal, *, applicant_id: str, level: str) -> Case:
        """The applicant's rating, recorded at the window; a bad review opens a follow-up."""
        calendar = await load_calendar(self.pool)
        return await self._change(case_id, principal, lambda case, _, at: case.rate(
            level, applicant_id=applicant_id, calendar=calendar, at=at, policy=self.follow_up_policy))

    async def record_call_back(self, case_id: str, principal: Principal) -> Case:
        return await self._change(case_id, principal,
                                  lambda case, _, at: case.record_call_back(actor=actor_of(principal), at=at))

    async def close_follow_up(self, case_id: str, principal: Principal) -> Case:
        return await self._change(case_id, principal,
                                  lambda case, _, at: case.close_follow_up(actor=actor_of(principal), at=at))

    # ------------------------------------------------------------------ plumbing

    async def _load(self, case_id: str, conn: asyncpg.Connection | None = None) -> Case:
        events = await self.store.read_stream(case_id, conn=conn)
        # Another aggregate's stream (a catalogue, a complaint) is no case either.
        if not events or events[0].stream_type != Case.stream_type:
            raise CaseNotFound(case_id)
        return Case.replay(case_id, events)

    async def _save(self, case: Case, conn: asyncpg.Connection) -> None:
        stored = await self.repository.save(case, conn=conn)
        await self.views.project(conn, stored)

    async def _change(self, case_id: str, principal: Principal | None,
                      command: Callable[[Case, asyncpg.Connection, datetime], Awaitable[Any] | Any], *,
                      conn: asyncpg.Connection | None = None) -> Case:
        """Load, check scope, decide, then append and project in one transaction; a refused
        command raises and leaves everything as it was. Given a connection (an event consumer's,
        inside its inbox transaction), the change is a savepoint of that transaction."""
        for attempt in range(_ATTEMPTS):
            try:
                if conn is not None:
                    async with conn.transaction():
                        return await self._change_once(case_id, principal, command, conn)
                async with self.pool.acquire() as own, own.transaction():
                    return await self._change_once(case_id, principal, command, own)
            except ConcurrencyConflict:
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _change_once(self, case_id: str, principal: Principal | None,
                           command: Callable[[Case, asyncpg.Connection, datetime], Awaitable[Any] | Any],
                           conn: asyncpg.Connection) -> Case:
        await self.views.lock_for_writing(conn)
        case = await self._load(case_id, conn)
        if principal is not None:
            _check_visible(principal, case)
        result = command(case, conn, self.clock())
        if inspect.isawaitable(result):
            await result
        await self._save(case, conn)
        return case


def _check_visible(principal: Principal, case: Case) -> None:
    if not may_see(principal, case.jurisdiction, case.routed_to()):
        raise CaseNotFound(case.id)
