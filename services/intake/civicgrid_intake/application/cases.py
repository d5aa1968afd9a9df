"""Use cases of the case (受理件) at the one window: register, accept, refuse, supplement,
route, green channel, withdraw, complete, rate and the bad review's follow-up.

Each command runs in a unit of work (civicgrid_common.unit_of_work): load the case, let the
aggregate decide, and the commit appends its events with their outbox rows and brings the
window's read table up to date (the case projector, adapters/case_views.py) in ONE
transaction, so a read right after a command sees it and nothing is half-done whatever
crashes when; a lost race is retried on fresh state by the service's one retry policy. `now`
comes from the injected clock; the working-day calendar is loaded with the overrides for
every acceptance.

Who may see a case is decided here (`may_see`), against the case itself: staff inside the case's
jurisdiction; a department system only a case routed to its department, inside its jurisdiction.
A case the caller may not see is answered as no case at all (CaseNotFound, 404): ids and
jurisdictions cannot be probed.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Awaitable, Callable, Iterable, Protocol, Sequence

from uuid6 import uuid7

from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.calendar.working_days import WorkingCalendar, local_date
from civicgrid_common.eventstore import AggregateNotFound, RecordedEvent, Verification
from civicgrid_common.identity.principal import Principal, Role
from civicgrid_common.problems import NotFound, OutsideJurisdiction, Refusal, RuleViolation
from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_intake.application.catalogue import CatalogueService
from civicgrid_intake.domain.affair import Material
from civicgrid_intake.domain.applicant import IdentityKind
from civicgrid_intake.domain.case import Actor, Affair, AffairLevel, Case, CaseRuleViolation, CaseStatus, Channel
from civicgrid_intake.domain.catalogue import AffairRevision, CatalogueRuleViolation
from civicgrid_intake.domain.eligibility import ApplicantFacts, EligibilityRule, Ineligibility, evaluate, rule_to_data
from civicgrid_intake.domain.rating import FollowUpPolicy



class CaseNumbers(Protocol):
    """The daily counter of case numbers per street (adapters/case_views.py)."""

    async def next(self, uow: UnitOfWork, street: str, day: date) -> int:
        """The street's next number of the day, taken in the unit's transaction: given back if
        it rolls back (no gaps from refused or conflicting acceptances)."""


@dataclass(frozen=True)
class QueueFilter:
    jurisdictions: tuple[str, ...]  # the caller's: only cases inside them
    status: str | None = None
    affair_code: str | None = None
    community: str | None = None
    registered_from: datetime | None = None  # inclusive
    registered_before: datetime | None = None  # exclusive
    awaiting_supplement: bool | None = None


class CaseViews(Protocol):
    """What the window's read table tells about a case without replaying it."""

    async def queue(self, f: QueueFilter, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """The window's queue: green channel first, then oldest first; a page of it and the total."""

    async def jurisdiction_of(self, case_id: str) -> str | None:
        """The case's jurisdiction, None if there is no such case."""

    async def departments_of(self, case_id: str) -> list[str]:
        """The departments the case was routed to (none before routing)."""


class KnownApplicants(Protocol):
    """The applicants this intake knows (application/applicants.py's ApplicantService)."""

    async def facts(self, applicant_id: str) -> ApplicantFacts | None:
        """The applicant's eligibility facts, None if intake does not know the applicant."""

    async def identity_of(self, uow: UnitOfWork, applicant_id: str) -> tuple[IdentityKind, str] | None:
        """The applicant's identity number and its kind, None if intake holds none."""

    async def contact_for(self, uow: UnitOfWork, applicant_id: str, channel: str) -> str:
        """The applicant's address on a channel they chose; refused (409 no_contact_on_record,
        saying why) when there is none."""


@dataclass(frozen=True)
class ContactDisclosure:
    """A case's applicant's contact handed to the notifications service; recorded on the case."""

    case_id: str
    applicant_id: str
    channel: str
    address: str
    disclosed_at: datetime


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


class CaseNotFound(NotFound):
    """No such case, or none the caller may see (answered alike)."""

    def __init__(self, case_id: str) -> None:
        super().__init__("case", case_id)
        self.case_id = case_id


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
    events: list[RecordedEvent]  # as recorded: every input of each hash, the data not upcast
    verification: Verification


Command = Callable[[Case, UnitOfWork, datetime], Awaitable[Any] | Any]


class CaseService:
    def __init__(self, transactions: Transactions, catalogue: CatalogueService, views: CaseViews,
                 numbers: CaseNumbers, applicants: KnownApplicants, *,
                 calendar: Callable[[], Awaitable[WorkingCalendar]], clock: Clock = utc_now,
                 follow_up_policy: FollowUpPolicy = FollowUpPolicy()) -> None:
        self.transactions = transactions
        self.catalogue = catalogue
        self.views = views
        self.numbers = numbers
        self.applicants = applicants
        self.calendar = calendar
        self.clock = clock
        self.follow_up_policy = follow_up_policy

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
        store = self.transactions.store
        return CaseHistory(case_id, await store.read_stream_as_recorded(case_id), await store.verify_stream(case_id))

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
            raise OutsideJurisdiction("jurisdiction", f"{jurisdiction} is not inside your jurisdiction",
                                      jurisdiction=jurisdiction)
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
        handed_in = list(materials_handed_in)

        async def register(uow: UnitOfWork) -> Case:
            case = uow.add(Case(str(uuid7())))
            case.register(applicant_id=applicant_id, affair=case_affair(revision), jurisdiction=jurisdiction,
                          channel=channel, materials_handed_in=handed_in, actor=actor_of(principal), at=now,
                          declared_facts=declared.as_data())
            return case

        return await self.transactions(register)

    async def accept(self, case_id: str, principal: Principal) -> Case:
        """Accept at the window; the case's receipt has its number and promised completion date."""
        calendar = await self.calendar()

        async def accept(case: Case, uow: UnitOfWork, at: datetime) -> None:
            # The number is taken in this transaction: if the acceptance fails, it is given back.
            sequence = await self.numbers.next(uow, case.street_code, local_date(at))
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

    async def complete(self, case_id: str, *, outcome: str, approval_reference: str, decided_at: datetime) -> Case:
        """The approval's result arrived (called for approval's event, not by a person)."""
        return await self._change(case_id, None, lambda case, _, at: case.complete(
            outcome=outcome, approval_reference=approval_reference, decided_at=decided_at, at=at))

    def conclude_from_approval(self, case_id: str, *, approval_reference: str, outcome: str,
                               decided_at: datetime) -> Callable[[UnitOfWork], Awaitable[ApprovalEffect]]:
        """Approval concluded: complete the case, as a command for the consumer to run inside its
        inbox transaction. A case that no longer waits for a result is left alone (ApprovalEffect)."""
        async def conclude(uow: UnitOfWork) -> ApprovalEffect:
            case = await self._in(uow, case_id)
            if case.concluded_by(approval_reference):
                return ApprovalEffect.ALREADY_RECORDED
            if case.status not in COMPLETABLE:
                return ApprovalEffect.NOT_WAITING
            case.complete(outcome=outcome, approval_reference=approval_reference, decided_at=decided_at,
                          at=self.clock())
            return ApprovalEffect.COMPLETED

        return conclude

    def record_supplement_request(self, case_id: str, *, approval_reference: str, step: str,
                                  materials: Sequence[str], comment: str, requested_by: str,
                                  requested_at: datetime) -> Callable[[UnitOfWork], Awaitable[ApprovalEffect]]:
        """Approval asked for a supplement: record it on the case for the window (same rules)."""
        async def record(uow: UnitOfWork) -> ApprovalEffect:
            case = await self._in(uow, case_id)
            request = case.supplement_request
            if (request is not None and request.approval_reference == approval_reference
                    and request.step == step and request.requested_at == requested_at):
                return ApprovalEffect.ALREADY_RECORDED
            if case.status not in COMPLETABLE:
                return ApprovalEffect.NOT_WAITING
            case.request_supplement(approval_reference=approval_reference, step=step, materials=materials,
                                    comment=comment, requested_by=requested_by, requested_at=requested_at,
                                    at=self.clock())
            return ApprovalEffect.SUPPLEMENT_REQUESTED

        return record

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

        async def disclose(case: Case, uow: UnitOfWork, at: datetime) -> None:
            case.disclose_identity(department=department, purpose=purpose, actor=actor_of(principal), at=at)
            identity = await self.applicants.identity_of(uow, case.applicant_id)
            if identity is None:
                raise NoIdentityOnRecord()
            disclosed.append(Disclosure(case.id, case.applicant_id, identity[0], identity[1], department, at))

        await self._change(case_id, principal, disclose)
        return disclosed[-1]

    async def disclose_contact(self, case_id: str, principal: Principal, channel: str, purpose: str) -> ContactDisclosure:
        """The contact of the case's applicant on `channel`, for the notifications service (role
        notifier) to send one message. The disclosure event and the read of the contact are one
        transaction: no number leaves without its record, and a refusal records nothing."""
        disclosed: list[ContactDisclosure] = []

        async def disclose(case: Case, uow: UnitOfWork, at: datetime) -> None:
            case.disclose_contact(channel=channel, purpose=purpose, actor=actor_of(principal), at=at)
            address = await self.applicants.contact_for(uow, case.applicant_id, channel)
            disclosed.append(ContactDisclosure(case.id, case.applicant_id, channel, address, at))

        await self._change(case_id, principal, disclose)
        return disclosed[-1]

    async def rate(self, case_id: str, principal: Principal, *, applicant_id: str, level: str) -> Case:
        """The applicant's rating, recorded at the window; a bad review opens a follow-up."""
        calendar = await self.calendar()
        return await self._change(case_id, principal, lambda case, _, at: case.rate(
            level, applicant_id=applicant_id, calendar=calendar, at=at, policy=self.follow_up_policy))

    async def record_call_back(self, case_id: str, principal: Principal) -> Case:
        return await self._change(case_id, principal,
                                  lambda case, _, at: case.record_call_back(actor=actor_of(principal), at=at))

    async def close_follow_up(self, case_id: str, principal: Principal) -> Case:
        return await self._change(case_id, principal,
                                  lambda case, _, at: case.close_follow_up(actor=actor_of(principal), at=at))

    # ------------------------------------------------------------------ plumbing

    async def _load(self, case_id: str) -> Case:
        try:
            return await self.transactions.load(Case, case_id)
        except AggregateNotFound:
            raise CaseNotFound(case_id) from None

    @staticmethod
    async def _in(uow: UnitOfWork, case_id: str) -> Case:
        try:
            return await uow.get(Case, case_id)
        except AggregateNotFound:
            raise CaseNotFound(case_id) from None

    async def _change(self, case_id: str, principal: Principal | None, command: Command) -> Case:
        """Load, check the caller may see it, decide; the unit of work appends and projects."""
        async def change(uow: UnitOfWork) -> Case:
            case = await self._in(uow, case_id)
            if principal is not None:
                _check_visible(principal, case)
            result = command(case, uow, self.clock())
            if hasattr(result, "__await__"):
                await result
            return case

        return await self.transactions(change)


def _check_visible(principal: Principal, case: Case) -> None:
    if not may_see(principal, case.jurisdiction, case.routed_to()):
        raise CaseNotFound(case.id)
