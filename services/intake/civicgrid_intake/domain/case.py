"""The case (受理件): one applicant's affair at the one window, from registration to rating.

    register ──► registered ──accept──► accepted ──route──► routed ──complete──► completed
                   │    ▲                  │                 │   ▲                 │
                   │    └─supplement (补办) │  approval asks ─┘   └─ supplement    │
                   │                       └──────────────────┴──complete──────────►│
                   ├─refuse at the window ──► refused              certificate issued ┤
                   └─(any open state) withdraw by the applicant ──► withdrawn         │
    completed / refused / withdrawn ──archive──► archived          rate (after completion)

- Acceptance needs complete materials. When something is missing the clerk gets every
  missing item at once (`missing_materials`), never one at a time.
- The case number is street code + acceptance date (China time) + the caller's daily
  sequence; the receipt promises a due date N working days after acceptance.
- The green channel (urgent: reviewers take it first) is flagged with a reason, only by
  GREEN_CHANNEL_ROLES.
- After routing, approval may ask for a supplement (补办): the request is recorded on the case
  (`request_supplement`, from approval's event), the window tells the applicant once and
  completely what the reviewer needs (`missing_materials` is then the request's), and the
  clerk's `supplement` hands it in; a supplement that leaves nothing missing answers the
  request (approval restarts its clock on that `supplemented` event).
- The applicant's identity number goes to a department system only when the case is routed to
  that department, and every such disclosure is an event (`disclose_identity`), for audit.
- A bad review opens a follow-up: call back within 1 working day, fix within the policy's
  working days, then one more rating.

The aggregate gets what it needs from the catalogue as plain values (affair code and version,
time limit, materials, routing, level), the calendar and the clock as parameters: it does no
I/O. Every refused command raises CaseRuleViolation and emits nothing. No personal data in
events: the applicant is a pseudonymous id, staff are their token subjects.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Iterable, Mapping

from civicgrid_common.aggregate import Aggregate, applies
from civicgrid_common.calendar.working_days import WorkingCalendar, local_date
from civicgrid_common.problems import Refusal, RuleViolation

from civicgrid_intake.domain.case_number import CaseNumber, InvalidCaseNumber
from civicgrid_intake.domain.contact_channels import TellChannel
from civicgrid_intake.domain.materials import InvalidMaterials, MaterialsChecklist, check_material_codes
from civicgrid_intake.domain.rating import FollowUpPolicy, RatingLevel
from civicgrid_intake.domain.routing import Routing, routing_from_data, routing_to_data

PREFIX = "civicgrid.intake.case."
REGISTERED = PREFIX + "registered.v1"
ACCEPTED = PREFIX + "accepted.v1"
REFUSED = PREFIX + "refused.v1"
SUPPLEMENTED = PREFIX + "supplemented.v1"
ROUTED = PREFIX + "routed.v1"
GREEN_CHANNELLED = PREFIX + "green_channelled.v1"
WITHDRAWN = PREFIX + "withdrawn.v1"
COMPLETED = PREFIX + "completed.v1"
CERTIFICATE_ISSUED = PREFIX + "certificate_issued.v1"
ARCHIVED = PREFIX + "archived.v1"
RATED = PREFIX + "rated.v1"
FOLLOW_UP_OPENED = PREFIX + "follow_up_opened.v1"
APPLICANT_CALLED_BACK = PREFIX + "applicant_called_back.v1"
FOLLOW_UP_CLOSED = PREFIX + "follow_up_closed.v1"
SUPPLEMENT_REQUESTED = PREFIX + "supplement_requested.v1"
IDENTITY_DISCLOSED = PREFIX + "identity_disclosed.v1"
CONTACT_DISCLOSED = PREFIX + "contact_disclosed.v1"
# The channels intake holds an applicant's contact for (domain/contact_channels.py).
CONTACT_CHANNELS = tuple(str(c) for c in TellChannel)
EVENT_TYPES: tuple[str, ...] = (
    REGISTERED, ACCEPTED, REFUSED, SUPPLEMENTED, ROUTED, GREEN_CHANNELLED, WITHDRAWN, COMPLETED,
    CERTIFICATE_ISSUED, ARCHIVED, RATED, FOLLOW_UP_OPENED, APPLICANT_CALLED_BACK, FOLLOW_UP_CLOSED,
    SUPPLEMENT_REQUESTED, IDENTITY_DISCLOSED, CONTACT_DISCLOSED,
)

# Who may put a case on the green channel. The street reviewer supervises the acceptance
# centre's queue and the leader answers for the street's priorities; a window clerk may not
# (the person at the counter must not be able to push an acquaintance forward), nor may an
# admin (a technical role: separation of duties), nor a department system.
GREEN_CHANNEL_ROLES: frozenset[str] = frozenset({"street_reviewer", "leader"})

MAX_REASON_LENGTH = 500
MAX_COMMENT_LENGTH = 2000  # a reviewer's comment on a supplement request (approval's limit)
MAX_TIME_LIMIT_WORKING_DAYS = 365
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,99}$")
_JURISDICTION = re.compile(r"^[0-9]{9}([0-9]{3})?$")
_STEP = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class CaseStatus(str, enum.Enum):
    REGISTERED = "registered"
    ACCEPTED = "accepted"
    ROUTED = "routed"
    COMPLETED = "completed"
    REFUSED = "refused"  # at the window, before acceptance
    WITHDRAWN = "withdrawn"
    ARCHIVED = "archived"


OPEN_STATUSES = frozenset({CaseStatus.REGISTERED, CaseStatus.ACCEPTED, CaseStatus.ROUTED})
CLOSED_STATUSES = frozenset({CaseStatus.COMPLETED, CaseStatus.REFUSED, CaseStatus.WITHDRAWN})


class Channel(str, enum.Enum):
    """Where the applicant registered the affair."""

    WINDOW = "window"
    WEB = "web"
    MOBILE_APP = "mobile_app"
    SELF_SERVICE = "self_service"  # a self-service terminal in the centre


class AffairLevel(str, enum.Enum):
    """Who holds the power to decide the affair (the catalogue's level)."""

    COMMUNITY = "community"
    STREET = "street"
    DISTRICT = "district"


class ApprovalOutcome(str, enum.Enum):
    APPROVED = "approved"
    REFUSED = "refused"


# A rule about the input names the body member at fault (invalid: 422); a role the rule does
# not admit is forbidden (403); any other refusal is about the case's state (conflict: 409).
_FIELD_OF = {
    "invalid_applicant_id": "applicant_id", "not_the_applicant": "applicant_id",
    "invalid_affair_code": "affair_code", "invalid_affair": "affair_code", "unknown_affair": "affair_code",
    "invalid_jurisdiction": "jurisdiction", "invalid_registration": "materials_handed_in",
    "invalid_materials": "materials", "reason_required": "reason", "reason_too_long": "reason",
    "invalid_rating": "level", "invalid_certificate_number": "certificate_number",
    "invalid_comment": "comment", "invalid_declared_facts": "declared_facts",
}
_FORBIDDEN = frozenset({"not_entitled", "not_routed_to_department"})


class CaseRuleViolation(RuleViolation):
    """A command the case's rules do not allow; `code` is stable for API error bodies."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        field = _FIELD_OF.get(code)
        refusal = Refusal.FORBIDDEN if code in _FORBIDDEN else Refusal.INVALID if field else Refusal.CONFLICT
        super().__init__(code, message, refusal=refusal, field=field, **extra)


@dataclass(frozen=True)
class Actor:
    """A member of staff acting on the case: the token's subject and roles."""

    subject: str
    roles: frozenset[str] = frozenset()

    @classmethod
    def of(cls, subject: str, roles: Iterable[Any] = ()) -> "Actor":
        # Role enum members or plain strings: compare by value.
        return cls(subject, frozenset(str(getattr(r, "value", r)) for r in roles))


@dataclass(frozen=True)
class Affair:
    """What the case needs from the catalogue entry (the version the case started with)."""

    code: str
    version: int
    time_limit_working_days: int
    materials_required: tuple[str, ...]
    routing: Routing
    level: AffairLevel
    # Materials needed only in some situations (if applicable): accepted when handed in, never
    # counted as missing.
    materials_optional: tuple[str, ...] = ()


@dataclass(frozen=True)
class Receipt:
    """What the applicant takes home (受理回执)."""

    case_number: str
    affair_code: str
    accepted_at: datetime
    time_limit_working_days: int
    due_date: date


@dataclass(frozen=True)
class FollowUp:
    opened_at: datetime
    call_back_due: date
    fix_due: date
    fix_working_days: int
    called_back_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True)
class SupplementRequest:
    """What approval asked the applicant for after routing (补办), and what came in since.

    `materials` may be empty when the reviewer's comment says what is needed; the first
    supplement then answers the request."""

    approval_reference: str
    step: str
    materials: tuple[str, ...]
    comment: str
    requested_at: datetime
    requested_by: str
    handed_in: frozenset[str] = frozenset()
    answered_at: datetime | None = None

    @property
    def missing(self) -> tuple[str, ...]:
        """Every requested item still missing, in the reviewer's order (told once, completely)."""
        return tuple(code for code in self.materials if code not in self.handed_in)

    @property
    def open(self) -> bool:
        return self.answered_at is None


# ---------------------------------------------------------------------- small checks


def _violation(code: str, message: str) -> CaseRuleViolation:
    return CaseRuleViolation(code, message)


def _aware(at: datetime, what: str) -> str:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise _violation("invalid_time", f"{what} must be a timezone-aware instant")
    return at.isoformat()


def _reason(text: str | None, *, required: bool) -> str | None:
    if text is None or not text.strip():
        if required:
            raise _violation("reason_required", "a reason is required")
        return None
    text = text.strip()
    if len(text) > MAX_REASON_LENGTH:
        raise _violation("reason_too_long", f"a reason has at most {MAX_REASON_LENGTH} characters")
    return text


def _identifier(value: str, what: str, pattern: re.Pattern[str] = _IDENTIFIER) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise _violation(f"invalid_{what}", f"{what.replace('_', ' ')} {value!r} is not a valid identifier")
    return value


def _positive_int(value: Any, upper: int = 2**31 - 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= upper


DECLARABLE_FACTS = ("registered_unemployed", "holds_disability_certificate")


def _declared(facts: Mapping[str, bool]) -> dict[str, bool]:
    unknown = sorted(set(facts) - set(DECLARABLE_FACTS))
    if unknown or not all(isinstance(v, bool) for v in facts.values()):
        raise _violation("invalid_declared_facts", f"declared facts are true/false values of {', '.join(DECLARABLE_FACTS)}")
    return dict(facts)


def _actor(actor: Actor) -> str:
    return _identifier(actor.subject, "actor", re.compile(r"^\S{1,128}$"))


# ---------------------------------------------------------------------- the aggregate


class Case(Aggregate):
    stream_type = "case"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.status: CaseStatus | None = None
        self.applicant_id = ""
        self.affair: Affair | None = None
        self.jurisdiction = ""
        self.channel: Channel | None = None
        self.checklist = MaterialsChecklist((), frozenset())
        self.receipt: Receipt | None = None
        self.refusal_reason: str | None = None
        self.green_channel_reason: str | None = None
        self.routed = False
        self.outcome: ApprovalOutcome | None = None
        self.approval_reference: str | None = None
        self.certificate_number: str | None = None
        self.ratings: list[RatingLevel] = []
        self.follow_up: FollowUp | None = None
        self.supplement_request: SupplementRequest | None = None
        self.disclosures = 0  # how often the identity number went to a department (audited)
        self.contacts_disclosed = 0  # how often the applicant's contact went to notifications (audited)

    # ------------------------------------------------------------------ reads

    @property
    def street_code(self) -> str:
        return self.jurisdiction[:9]

    @property
    def green_channel(self) -> bool:
        return self.green_channel_reason is not None

    @property
    def missing_materials(self) -> tuple[str, ...]:
        """Every missing item at once (一次性告知): before acceptance the catalogue's, in its
        order; while a supplement request of approval is open, the request's."""
        if self.awaiting_supplement:
            assert self.supplement_request is not None
            return self.supplement_request.missing
        return self.checklist.missing

    @property
    def awaiting_supplement(self) -> bool:
        """Approval asked for a supplement that the applicant has not yet brought."""
        return (self.status in (CaseStatus.ACCEPTED, CaseStatus.ROUTED)
                and self.supplement_request is not None and self.supplement_request.open)

    @property
    def completed(self) -> bool:
        return self.outcome is not None

    def _require(self, allowed: Iterable[CaseStatus], action: str) -> None:
        if self.status is None:
            raise _violation("not_registered", f"case {self.id} is not registered: cannot {action}")
        if self.status not in set(allowed):
            raise _violation("illegal_transition", f"case {self.id} is {self.status.value}: cannot {action}")

    # ------------------------------------------------------------------ commands

    def register(self, *, applicant_id: str, affair: Affair, jurisdiction: str, channel: Channel | str,
                 materials_handed_in: Iterable[str], actor: Actor, at: datetime,
                 declared_facts: Mapping[str, bool] | None = None) -> None:
        """Record the affair at the window with the materials handed in (complete or not).

        The catalogue's eligibility rule is checked before (by the application, which knows the
        applicant); `declared_facts` are what the clerk declared from a document for it."""
        if self.status is not None:
            raise _violation("already_registered", f"case {self.id} is already registered")
        if not (isinstance(jurisdiction, str) and _JURISDICTION.match(jurisdiction)):
            raise _violation("invalid_jurisdiction",
                             f"a case belongs to a street (9 digits) or community (12 digits), got {jurisdiction!r}")
        if not (_positive_int(affair.version)
                and _positive_int(affair.time_limit_working_days, MAX_TIME_LIMIT_WORKING_DAYS)):
            raise _violation("invalid_affair", "an affair has a version >= 1 and a time limit of 1 to "
                             f"{MAX_TIME_LIMIT_WORKING_DAYS} working days")
        try:  # InvalidMaterials, an unknown channel or level: all ValueErrors
            checklist = MaterialsChecklist.start(affair.materials_required, materials_handed_in,
                                                 affair.materials_optional)
            channel = Channel(channel)
            level = AffairLevel(affair.level)
        except ValueError as error:
            raise _violation("invalid_registration", str(error)) from None
        self._emit(REGISTERED, {
            "applicant_id": _identifier(applicant_id, "applicant_id"),
            "affair_code": _identifier(affair.code, "affair_code"),
            "affair_version": affair.version,
            "time_limit_working_days": affair.time_limit_working_days,
            "level": level.value,
            "routing": routing_to_data(affair.routing),
            "jurisdiction": jurisdiction,
            "channel": channel.value,
            "materials_required": list(checklist.required),
            "materials_handed_in": checklist.ordered_handed_in(),
            "materials_missing": list(checklist.missing),
            "registered_at": _aware(at, "registered_at"),
            "actor": _actor(actor),
            **({"materials_optional": list(checklist.optional)} if checklist.optional else {}),
            **({"declared_facts": _declared(declared_facts)} if declared_facts else {}),
        })

    def supplement(self, materials: Iterable[str], *, actor: Actor, at: datetime) -> None:
        """补办: the applicant brings missing materials, before acceptance (the catalogue's
        checklist) or, once accepted, what approval's open supplement request asks for."""
        self._require({CaseStatus.REGISTERED, CaseStatus.ACCEPTED, CaseStatus.ROUTED}, "add materials")
        if self.status is not CaseStatus.REGISTERED:
            self._answer_supplement_request(materials, actor=actor, at=at)
            return
        try:
            checklist = self.checklist.with_added(materials)
        except InvalidMaterials as error:
            raise _violation("invalid_materials", str(error)) from None
        added = [code for code in checklist.listed if code in checklist.handed_in - self.checklist.handed_in]
        self._emit(SUPPLEMENTED, {
            "materials_added": added,
            "materials_missing": list(checklist.missing),
            "supplemented_at": _aware(at, "supplemented_at"),
            "actor": _actor(actor),
        })

    def _answer_supplement_request(self, materials: Iterable[str], *, actor: Actor, at: datetime) -> None:
        request = self.supplement_request
        if request is None or not request.open:
            raise _violation("no_supplement_requested",
                             f"case {self.id} is {self.status.value if self.status else 'unknown'} and approval "
                             "has asked for no supplement")
        try:
            added = check_material_codes(materials, "materials added")
        except InvalidMaterials as error:
            raise _violation("invalid_materials", str(error)) from None
        if not added:
            raise _violation("invalid_materials", "a supplement hands in at least one material")
        # What may be handed in: what the reviewer listed; if the comment alone says what is
        # needed, any material of the affair's checklist.
        assert self.affair is not None
        allowed = request.materials or (self.affair.materials_required + self.affair.materials_optional)
        unknown = [code for code in added if code not in allowed]
        if unknown:
            raise _violation("invalid_materials", f"not asked for by the supplement request: {', '.join(unknown)}; "
                             f"it asks for: {', '.join(allowed)}")
        again = [code for code in added if code in request.handed_in]
        if again:
            raise _violation("invalid_materials", f"already handed in for this request: {', '.join(again)}")
        self._emit(SUPPLEMENTED, {
            "materials_added": list(added),
            "materials_missing": [code for code in request.missing if code not in added],
            "supplemented_at": _aware(at, "supplemented_at"),
            "actor": _actor(actor),
            "approval_reference": request.approval_reference,
        })

    def request_supplement(self, *, approval_reference: str, step: str, materials: Iterable[str], comment: str,
                           requested_by: str, requested_at: datetime, at: datetime) -> None:
        """Approval asks for a supplement (补办) after routing: recorded so that the window tells
        the applicant, once and completely, what the reviewer needs. A newer request replaces
        an open one (each request is complete in itself)."""
        self._require({CaseStatus.ACCEPTED, CaseStatus.ROUTED}, "record a supplement request")
        try:
            codes = check_material_codes(materials, "materials requested")
        except InvalidMaterials as error:
            raise _violation("invalid_materials", str(error)) from None
        text = (comment or "").strip()
        if not text or len(text) > MAX_COMMENT_LENGTH:
            raise _violation("invalid_comment", f"a supplement request has a comment of 1 to {MAX_COMMENT_LENGTH} "
                             "characters")
        self._emit(SUPPLEMENT_REQUESTED, {
            "approval_reference": _identifier(approval_reference, "approval_reference", _REFERENCE),
            "step": _identifier(step, "step", _STEP),
            "materials_requested": list(codes),
            "comment": text,
            "requested_by": _identifier(requested_by, "requested_by", re.compile(r"^\S{1,128}$")),
            "requested_at": _aware(requested_at, "requested_at"),
            "recorded_at": _aware(at, "recorded_at"),
        })

    def accept(self, *, daily_sequence: int, calendar: WorkingCalendar, actor: Actor, at: datetime) -> Receipt:
        """Accept at the window: a case number and a receipt with the promised completion date."""
        self._require({CaseStatus.REGISTERED}, "accept")
        if self.missing_materials:
            # Said again, completely: the applicant is told once and in full.
            raise CaseRuleViolation("materials_incomplete", "materials missing (tell the applicant all at once): "
                                    + ", ".join(self.missing_materials), missing_materials=list(self.missing_materials))
        assert self.affair is not None
        accepted_at = _aware(at, "accepted_at")
        try:
            number = CaseNumber(self.street_code, local_date(at), daily_sequence)
        except InvalidCaseNumber as error:
            raise _violation("invalid_case_number", str(error)) from None
        due = calendar.add_working_days(at, self.affair.time_limit_working_days)
        self._emit(ACCEPTED, {
            "case_number": str(number),
            "accepted_at": accepted_at,
            "time_limit_working_days": self.affair.time_limit_working_days,
            "due_date": due.isoformat(),
            "actor": _actor(actor),
        })
        assert self.receipt is not None
        return self.receipt

    def refuse(self, reason: str, *, actor: Actor, at: datetime) -> None:
        """Refuse at the window (not ours to handle, not eligible...): the reason is required."""
        self._require({CaseStatus.REGISTERED}, "refuse at the window")
        self._emit(REFUSED, {
            "reason": _reason(reason, required=True),
            "refused_at": _aware(at, "refused_at"),
            "actor": _actor(actor),
        })

    def route(self, *, actor: Actor, at: datetime) -> Routing:
        """Send the accepted case where the catalogue's routing rule says."""
        self._require({CaseStatus.ACCEPTED}, "route")
        assert self.affair is not None
        self._emit(ROUTED, {
            "routing": routing_to_data(self.affair.routing),
            "level": self.affair.level.value,
            "routed_at": _aware(at, "routed_at"),
            "actor": _actor(actor),
        })
        return self.affair.routing

    def put_on_green_channel(self, reason: str, *, actor: Actor, at: datetime) -> None:
        """Flag the case urgent (reviewers take it first): only GREEN_CHANNEL_ROLES, with a reason."""
        self._require(OPEN_STATUSES, "put on the green channel")
        entitled = sorted(GREEN_CHANNEL_ROLES & actor.roles)
        if not entitled:
            raise _violation("not_entitled", "only a street reviewer or a leader may put a case on the green channel")
        if self.green_channel:
            raise _violation("already_green_channel", f"case {self.id} is already on the green channel")
        self._emit(GREEN_CHANNELLED, {
            "reason": _reason(reason, required=True),
            "green_channelled_at": _aware(at, "green_channelled_at"),
            "actor": _actor(actor),
            "actor_role": entitled[0],
        })

    def withdraw(self, *, applicant_id: str, at: datetime, reason: str | None = None) -> None:
        """The applicant takes the affair back; possible until the result is in."""
        if self.status is not None and self.applicant_id != applicant_id:
            raise _violation("not_the_applicant", "only the case's applicant may withdraw it")
        self._require(OPEN_STATUSES, "withdraw")
        data: dict[str, Any] = {"withdrawn_at": _aware(at, "withdrawn_at")}
        if (text := _reason(reason, required=False)) is not None:
            data["reason"] = text
        self._emit(WITHDRAWN, data)

    def complete(self, *, outcome: ApprovalOutcome | str, approval_reference: str, decided_at: datetime,
                 at: datetime) -> None:
        """The approval's result arrived (approved or refused by approval)."""
        self._require({CaseStatus.ACCEPTED, CaseStatus.ROUTED}, "complete")
        try:
            outcome = ApprovalOutcome(outcome)
        except ValueError:
            raise _violation("invalid_outcome", f"outcome must be approved or refused, got {outcome!r}") from None
        self._emit(COMPLETED, {
            "outcome": outcome.value,
            "approval_reference": _identifier(approval_reference, "approval_reference", _REFERENCE),
            "decided_at": _aware(decided_at, "decided_at"),
            "completed_at": _aware(at, "completed_at"),
        })

    def routed_to(self) -> tuple[str, ...]:
        """The departments the case went to (lead first); none before routing or for the street."""
        if not self.routed or self.affair is None:
            return ()
        return self.affair.routing.departments()

    def disclose_identity(self, *, department: str, purpose: str, actor: Actor, at: datetime) -> None:
        """Record that the applicant's identity number goes to a department system that needs it:
        only once the case is routed, and only to a department its routing names (the lead or a
        co-department). The event names who got it, why and when; never the number."""
        if self.status is None:
            raise _violation("not_registered", f"case {self.id} is not registered")
        assert self.affair is not None
        if not self.routed:
            raise _violation("not_routed_to_department", f"case {self.id} has not been routed to any department")
        if department not in self.affair.routing.departments():
            raise _violation("not_routed_to_department", f"case {self.id} is not routed to department {department!r}")
        self._emit(IDENTITY_DISCLOSED, {
            "applicant_id": self.applicant_id,
            "department": department,
            "purpose": _reason(purpose, required=True),
            "disclosed_at": _aware(at, "disclosed_at"),
            "actor": _actor(actor),
        })

    def disclose_contact(self, *, channel: str, purpose: str, actor: Actor, at: datetime) -> None:
        """Record that the applicant's contact for `channel` goes to the notifications service, to
        tell them about this case. The event names the channel, the purpose (the delivery), who
        and when; never the number."""
        if self.status is None:
            raise _violation("not_registered", f"case {self.id} is not registered")
        if channel not in CONTACT_CHANNELS:
            raise _violation("no_contact_on_record", f"intake records no {channel} contact of an applicant; "
                                                     f"it records {', '.join(CONTACT_CHANNELS)}")
        self._emit(CONTACT_DISCLOSED, {
            "applicant_id": self.applicant_id,
            "channel": channel,
            "purpose": _reason(purpose, required=True),
            "disclosed_at": _aware(at, "disclosed_at"),
            "actor": _actor(actor),
        })

    def concluded_by(self, approval_reference: str) -> bool:
        """This approval's result is already recorded (a redelivered or re-sent conclusion)."""
        return self.completed and self.approval_reference == approval_reference

    def issue_certificate(self, certificate_number: str, *, actor: Actor, at: datetime) -> None:
        self._require({CaseStatus.COMPLETED}, "issue a certificate")
        if self.outcome is not ApprovalOutcome.APPROVED:
            raise _violation("not_approved", "a certificate is issued only for an approved case")
        if self.certificate_number is not None:
            raise _violation("certificate_already_issued", f"certificate {self.certificate_number} is already issued")
        self._emit(CERTIFICATE_ISSUED, {
            "certificate_number": _identifier(certificate_number, "certificate_number", _REFERENCE),
            "issued_at": _aware(at, "issued_at"),
            "actor": _actor(actor),
        })

    def archive(self, *, actor: Actor, at: datetime) -> None:
        """File the closed case with everything from registration to the final decision."""
        self._require(CLOSED_STATUSES, "archive")
        self._emit(ARCHIVED, {
            "final_status": self.status.value if self.status else "",
            "archived_at": _aware(at, "archived_at"),
            "actor": _actor(actor),
        })

    def rate(self, level: RatingLevel | str, *, applicant_id: str, calendar: WorkingCalendar, at: datetime,
             policy: FollowUpPolicy = FollowUpPolicy()) -> None:
        """The applicant's rating: once after completion, once more after a bad review's follow-up."""
        if self.status is not None and self.applicant_id != applicant_id:
            raise _violation("not_the_applicant", "only the case's applicant may rate it")
        if not self.completed:
            raise _violation("not_completed", f"case {self.id} can be rated only once its result is in")
        try:
            level = RatingLevel(level)
        except ValueError:
            known = ", ".join(r.value for r in RatingLevel)
            raise _violation("invalid_rating", f"rating {level!r} is not one of {known}") from None
        round_ = self._next_rating_round()
        rated_at = _aware(at, "rated_at")
        # Decide everything before emitting: a command emits all of its events or none.
        follow_up = None
        if level.is_bad_review and round_ == 1:  # a second bad rating is recorded, not followed up again
            follow_up = {
                "opened_at": rated_at,
                "call_back_due": calendar.add_working_days(at, policy.call_back_working_days).isoformat(),
                "fix_due": calendar.add_working_days(at, policy.fix_working_days).isoformat(),
                "fix_working_days": policy.fix_working_days,
            }
        self._emit(RATED, {"level": level.value, "round": round_, "bad_review": level.is_bad_review,
                           "rated_at": rated_at})
        if follow_up is not None:
            self._emit(FOLLOW_UP_OPENED, follow_up)

    def _next_rating_round(self) -> int:
        if not self.ratings:
            return 1
        if self.follow_up is None or len(self.ratings) >= 2:
            raise _violation("already_rated", f"case {self.id} is already rated")
        if self.follow_up.closed_at is None:
            raise _violation("follow_up_open", "the second rating comes after the follow-up is closed")
        return 2

    def record_call_back(self, *, actor: Actor, at: datetime) -> None:
        """The applicant who gave a bad review was called back."""
        follow_up = self._open_follow_up("record a call-back")
        if follow_up.called_back_at is not None:
            raise _violation("already_called_back", "the applicant was already called back")
        self._emit(APPLICANT_CALLED_BACK, {
            "called_back_at": _aware(at, "called_back_at"),
            "on_time": local_date(at) <= follow_up.call_back_due,
            "actor": _actor(actor),
        })

    def close_follow_up(self, *, actor: Actor, at: datetime) -> None:
        """The problem behind the bad review is fixed; the applicant may now rate again."""
        follow_up = self._open_follow_up("close the follow-up")
        if follow_up.called_back_at is None:
            raise _violation("not_called_back", "call the applicant back before closing the follow-up")
        self._emit(FOLLOW_UP_CLOSED, {
            "closed_at": _aware(at, "closed_at"),
            "fixed_on_time": local_date(at) <= follow_up.fix_due,
            "actor": _actor(actor),
        })

    def _open_follow_up(self, action: str) -> FollowUp:
        if self.follow_up is None:
            raise _violation("no_follow_up", f"case {self.id} has no follow-up: cannot {action}")
        if self.follow_up.closed_at is not None:
            raise _violation("follow_up_closed", f"the follow-up of case {self.id} is closed: cannot {action}")
        return self.follow_up

    # ------------------------------------------------------------------ state changes

    @applies(REGISTERED)
    def _registered(self, d: Mapping[str, Any]) -> None:
        self.status = CaseStatus.REGISTERED
        self.applicant_id = d["applicant_id"]
        self.affair = Affair(d["affair_code"], d["affair_version"], d["time_limit_working_days"],
                             tuple(d["materials_required"]), routing_from_data(d["routing"]), AffairLevel(d["level"]),
                             tuple(d.get("materials_optional", ())))
        self.jurisdiction = d["jurisdiction"]
        self.channel = Channel(d["channel"])
        self.checklist = MaterialsChecklist(tuple(d["materials_required"]), frozenset(d["materials_handed_in"]),
                                            tuple(d.get("materials_optional", ())))

    @applies(SUPPLEMENTED)
    def _supplemented(self, d: Mapping[str, Any]) -> None:
        if self.status is CaseStatus.REGISTERED:
            self.checklist = replace(self.checklist, handed_in=self.checklist.handed_in | set(d["materials_added"]))
            return
        assert self.supplement_request is not None
        request = replace(self.supplement_request, handed_in=self.supplement_request.handed_in | set(d["materials_added"]))
        if not d["materials_missing"]:
            request = replace(request, answered_at=datetime.fromisoformat(d["supplemented_at"]))
        self.supplement_request = request

    @applies(IDENTITY_DISCLOSED)
    def _identity_disclosed(self, d: Mapping[str, Any]) -> None:
        self.disclosures += 1

    @applies(CONTACT_DISCLOSED)
    def _contact_disclosed(self, d: Mapping[str, Any]) -> None:
        self.contacts_disclosed += 1

    @applies(SUPPLEMENT_REQUESTED)
    def _supplement_requested(self, d: Mapping[str, Any]) -> None:
        self.supplement_request = SupplementRequest(
            d["approval_reference"], d["step"], tuple(d["materials_requested"]), d["comment"],
            datetime.fromisoformat(d["requested_at"]), d["requested_by"])

    @applies(ACCEPTED)
    def _accepted(self, d: Mapping[str, Any]) -> None:
        assert self.affair is not None
        self.status = CaseStatus.ACCEPTED
        self.receipt = Receipt(d["case_number"], self.affair.code, datetime.fromisoformat(d["accepted_at"]),
                               d["time_limit_working_days"], date.fromisoformat(d["due_date"]))

    @applies(REFUSED)
    def _refused(self, d: Mapping[str, Any]) -> None:
        self.status = CaseStatus.REFUSED
        self.refusal_reason = d["reason"]

    @applies(ROUTED)
    def _routed(self, d: Mapping[str, Any]) -> None:
        self.status = CaseStatus.ROUTED
        self.routed = True

    @applies(GREEN_CHANNELLED)
    def _green_channelled(self, d: Mapping[str, Any]) -> None:
        self.green_channel_reason = d["reason"]

    @applies(WITHDRAWN)
    def _withdrawn(self, d: Mapping[str, Any]) -> None:
        self.status = CaseStatus.WITHDRAWN

    @applies(COMPLETED)
    def _completed(self, d: Mapping[str, Any]) -> None:
        self.status = CaseStatus.COMPLETED
        self.outcome = ApprovalOutcome(d["outcome"])
        self.approval_reference = d["approval_reference"]

    @applies(CERTIFICATE_ISSUED)
    def _certificate_issued(self, d: Mapping[str, Any]) -> None:
        self.certificate_number = d["certificate_number"]

    @applies(ARCHIVED)
    def _archived(self, d: Mapping[str, Any]) -> None:
        self.status = CaseStatus.ARCHIVED

    @applies(RATED)
    def _rated(self, d: Mapping[str, Any]) -> None:
        self.ratings.append(RatingLevel(d["level"]))

    @applies(FOLLOW_UP_OPENED)
    def _follow_up_opened(self, d: Mapping[str, Any]) -> None:
        self.follow_up = FollowUp(datetime.fromisoformat(d["opened_at"]), date.fromisoformat(d["call_back_due"]),
                                  date.fromisoformat(d["fix_due"]), d["fix_working_days"])

    @applies(APPLICANT_CALLED_BACK)
    def _called_back(self, d: Mapping[str, Any]) -> None:
        assert self.follow_up is not None
        self.follow_up = replace(self.follow_up, called_back_at=datetime.fromisoformat(d["called_back_at"]))

    @applies(FOLLOW_UP_CLOSED)
    def _follow_up_closed(self, d: Mapping[str, Any]) -> None:
        assert self.follow_up is not None
        self.follow_up = replace(self.follow_up, closed_at=datetime.fromisoformat(d["closed_at"]))


