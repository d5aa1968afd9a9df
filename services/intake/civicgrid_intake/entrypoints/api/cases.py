"""Cases at the one window over HTTP.

POST /v1/cases                              register (window clerk): the case and every missing material
GET  /v1/cases                              the window's queue: green channel first, then oldest first
GET  /v1/cases/{id}                         the case as it stands
GET  /v1/cases/{id}/history                 its events in order and the hash chain's verification
POST /v1/cases/{id}/accept                  the receipt: case number and promised completion date
POST /v1/cases/{id}/refuse                  refuse at the window, with a reason
POST /v1/cases/{id}/supplements             materials brought later (补办): before acceptance, or what
                                            approval's supplement request asks for after routing
POST /v1/cases/{id}/route                   send it where the catalogue's routing rule says
POST /v1/cases/{id}/green-channel           urgent, with a reason (street reviewer or leader)
POST /v1/cases/{id}/withdraw                the applicant takes it back (recorded at the window)
POST /v1/cases/{id}/certificate             the approved result's certificate number, handed out (证照)
POST /v1/cases/{id}/archive                 file the closed case (归档)
POST /v1/cases/{id}/applicant-identity      the applicant's identity number, for a department system the case
                                            is routed to; every disclosure recorded (no-store)
POST /v1/cases/{id}/rating                  the applicant's rating; a bad review opens a follow-up
POST /v1/cases/{id}/follow-up/call-back     the applicant was called back
POST /v1/cases/{id}/follow-up/close         the problem is fixed; the applicant may rate again

A domain refusal is a problem+json with the rule's `code`: 409 when the case's state does not
allow it, 422 when the input is wrong (naming the field), 403 for a role or jurisdiction.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Awaitable, Callable, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from civicgrid_common.calendar.working_days import CHINA_TZ
from civicgrid_common.identity import Principal, Role
from civicgrid_common.identity.dependencies import require
from civicgrid_common.problems import VALIDATION_ERROR, Problem, parameter_error
from civicgrid_common.web.history import RecordedEventOut, VerificationOut, recorded_events_out, verification_out
from civicgrid_common.web.models import Day, Flag, QueryFlag, RequestBody

from civicgrid_intake.application.cases import CaseHistory, CaseService, DeclaredFacts, QueueFilter
from civicgrid_intake.domain.affair import Material
from civicgrid_intake.domain.applicant import IdentityKind
from civicgrid_intake.domain.case import (
    GREEN_CHANNEL_ROLES, Case, CaseStatus, Channel, Receipt, SupplementRequest,
)
from civicgrid_intake.domain.rating import RatingLevel
from civicgrid_intake.domain.routing import routing_to_data


# The window's people; admins (a technical role) and department systems do not read cases here.
STAFF = (Role.WINDOW_CLERK, Role.COMMUNITY_REVIEWER, Role.STREET_REVIEWER, Role.LEADER)
ROUTERS = (Role.WINDOW_CLERK, Role.STREET_REVIEWER, Role.LEADER)
GREEN_CHANNEL = tuple(Role(r) for r in sorted(GREEN_CHANNEL_ROLES))
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"

CaseId = Annotated[str, Path(max_length=64, description="the case's id (a UUID)")]
MaterialCode = Annotated[str, Field(max_length=64)]

# ---------------------------------------------------------------------- bodies


class _Body(RequestBody):
    pass


class DeclaredFactsIn(_Body):
    registered_unemployed: Flag | None = Field(None, description="shows a current unemployment registration (失业登记)")
    holds_disability_certificate: Flag | None = Field(None, description="shows a disability certificate (残疾人证)")


class RegistrationIn(_Body):
    # The pattern keeps a mistyped identity number or name out of the store and out of the
    # error answer (a pattern error does not echo the input).
    applicant_id: str = Field(pattern=_ID, description="the pseudonymous applicant id (as the applicants API gives it)")
    affair_code: str = Field(max_length=64, description="the catalogue's code; the case takes its current version")
    jurisdiction: str = Field(pattern=r"^[0-9]{9}([0-9]{3})?$",
                              description="the street (9 digits) or community (12 digits) the case belongs to")
    channel: Channel = Channel.WINDOW
    materials_handed_in: list[MaterialCode] = Field(default_factory=list, max_length=100,
                                           description="material codes of the affair's checklist")
    declared_facts: DeclaredFactsIn | None = Field(
        None, description="eligibility facts the clerk declares from a document the applicant shows")


class ReasonIn(_Body):
    reason: str = Field(min_length=1, max_length=500)


class MaterialsIn(_Body):
    materials: list[MaterialCode] = Field(min_length=1, max_length=100, description="material codes handed in now")


class CertificateIn(_Body):
    certificate_number: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,99}$",
                                    description="the number printed on the certificate (证照编号)")


class DisclosureIn(_Body):
    purpose: str = Field(min_length=1, max_length=500,
                         description="why the department needs the number (recorded with the disclosure)")


class DisclosureOut(BaseModel):
    """The applicant's identity number for the department system; never cache it."""

    case_id: str
    applicant_id: str
    kind: IdentityKind = Field(description="resident_id (GB 11643) or credit_code (GB 32100)")
    identity_number: str
    department: str
    disclosed_at: datetime


class ContactIn(_Body):
    channel: Literal["sms", "email", "wechat"] = Field(
        description="the channel the message goes on; intake answers only for a channel the applicant "
                    "chose (SMS to a mobile when they never chose)")
    purpose: str = Field(min_length=1, max_length=500,
                         description="the message it is for, e.g. the notification delivery's id (recorded "
                                     "with the disclosure)")


class ContactOut(BaseModel):
    """The contact of the case's applicant, for one message; never cache or store it."""

    case_id: str
    applicant_id: str
    channel: str
    address: str = Field(description="the mobile number (sms), the email address (email) or the openid of the "
                                     "district's mini program (wechat)")
    disclosed_at: datetime


class WithdrawalIn(_Body):
    applicant_id: str = Field(pattern=_ID, description="the case's applicant, who asks to withdraw")
    reason: str | None = Field(None, max_length=500)


class RatingIn(_Body):
    applicant_id: str = Field(pattern=_ID, description="the case's applicant, who rates")
    level: RatingLevel = Field(description="非常满意 very_satisfied … 非常不满意 very_dissatisfied")


# ---------------------------------------------------------------------- answers


class MaterialOut(BaseModel):
    code: str
    name_zh: str | None = None
    name_en: str | None = None
    copies: int | None = None


class ReceiptOut(BaseModel):
    """The receipt (受理回执): due_date is the time limit's last working day, China time."""

    case_id: str
    case_number: str
    affair_code: str
    affair_version: int
    accepted_at: datetime
    time_limit_working_days: int
    due_date: date
    time_zone: str = str(CHINA_TZ)


class FollowUpOut(BaseModel):
    opened_at: datetime
    call_back_due: date
    fix_due: date
    fix_working_days: int
    called_back_at: datetime | None
    closed_at: datetime | None


class SupplementRequestOut(BaseModel):
    """What approval's reviewer asked the applicant for after routing (补办)."""

    approval_reference: str = Field(description="the approval that asks")
    step: str
    comment: str
    materials_requested: list[MaterialOut]
    materials_missing: list[MaterialOut] = Field(description="what is still to bring, all at once")
    requested_at: datetime
    requested_by: str
    answered_at: datetime | None = Field(description="when the last requested material came in; null while open")


class CaseOut(BaseModel):
    id: str
    version: int
    status: CaseStatus
    applicant_id: str
    jurisdiction: str
    channel: Channel
    affair: dict[str, Any]
    materials_required: list[str]
    materials_optional: list[str] = Field(description="accepted if applicable, never missing")
    materials_handed_in: list[str]
    missing_materials: list[MaterialOut] = Field(description="every missing material at once (一次性告知): the "
                                                 "checklist's before acceptance, approval's request while one is open")
    awaiting_supplement: bool = Field(description="approval asked for a supplement that has not been brought yet")
    supplement_request: SupplementRequestOut | None = Field(description="approval's latest supplement request")
    receipt: ReceiptOut | None
    refusal_reason: str | None
    green_channel: bool
    green_channel_reason: str | None
    outcome: str | None
    approval_reference: str | None
    certificate_number: str | None
    ratings: list[RatingLevel]
    follow_up: FollowUpOut | None


class QueueItem(BaseModel):
    id: str
    awaiting_supplement: bool
    version: int
    applicant_id: str
    status: CaseStatus
    affair_code: str
    affair_version: int
    jurisdiction: str
    street: str
    community: str | None
    channel: str
    green_channel: bool
    materials_missing: list[str]
    registered_at: datetime
    accepted_at: datetime | None
    due_date: date | None
    case_number: str | None


class QueuePage(BaseModel):
    items: list[QueueItem]
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(description="the offset of the next page, null on the last")


class HistoryOut(BaseModel):
    case_id: str
    events: list[RecordedEventOut]
    verification: VerificationOut


def _receipt(case: Case, receipt: Receipt) -> ReceiptOut:
    assert case.affair is not None
    return ReceiptOut(case_id=case.id, case_number=receipt.case_number, affair_code=receipt.affair_code,
                      affair_version=case.affair.version, accepted_at=receipt.accepted_at,
                      time_limit_working_days=receipt.time_limit_working_days, due_date=receipt.due_date)


def _material(code: str, known: dict[str, Material]) -> MaterialOut:
    m = known.get(code)
    return MaterialOut(code=code) if m is None else MaterialOut(code=code, name_zh=m.name_zh, name_en=m.name_en,
                                                                 copies=m.copies)


def _supplement_request(request: SupplementRequest, materials: dict[str, Material]) -> SupplementRequestOut:
    return SupplementRequestOut(
        approval_reference=request.approval_reference, step=request.step, comment=request.comment,
        materials_requested=[_material(code, materials) for code in request.materials],
        materials_missing=[_material(code, materials) for code in request.missing],
        requested_at=request.requested_at, requested_by=request.requested_by, answered_at=request.answered_at)


def _case(case: Case, materials: dict[str, Material]) -> CaseOut:
    assert case.affair is not None and case.status is not None and case.channel is not None
    affair = case.affair
    follow_up = case.follow_up
    request = case.supplement_request
    return CaseOut(
        id=case.id, version=case.version, status=case.status, applicant_id=case.applicant_id,
        jurisdiction=case.jurisdiction, channel=case.channel,
        affair={"code": affair.code, "version": affair.version, "level": affair.level.value,
                "time_limit_working_days": affair.time_limit_working_days,
                "routing": routing_to_data(affair.routing)},
        materials_required=list(case.checklist.required),
        materials_optional=list(case.checklist.optional),
        materials_handed_in=case.checklist.ordered_handed_in(),
        missing_materials=[_material(code, materials) for code in case.missing_materials],
        awaiting_supplement=case.awaiting_supplement,
        supplement_request=_supplement_request(request, materials) if request else None,
        receipt=_receipt(case, case.receipt) if case.receipt else None,
        refusal_reason=case.refusal_reason, green_channel=case.green_channel,
        green_channel_reason=case.green_channel_reason,
        outcome=case.outcome.value if case.outcome else None, approval_reference=case.approval_reference,
        certificate_number=case.certificate_number, ratings=list(case.ratings),
        follow_up=FollowUpOut(**vars(follow_up)) if follow_up else None,
    )


def _history(h: CaseHistory) -> HistoryOut:
    return HistoryOut(case_id=h.case_id, events=recorded_events_out(h.events), verification=verification_out(h.verification))


# ---------------------------------------------------------------------- routes


def _service(request: Request) -> CaseService:
    return request.app.state.cases


def cases_router() -> APIRouter:
    router = APIRouter(prefix="/v1/cases", tags=["cases"])

    async def answer(svc: CaseService, call: Callable[[], Awaitable[Case]]) -> CaseOut:
        """Run a command on a case and answer the case as it now stands (a refusal is answered
        as its problem by the app's handlers)."""
        case = await call()
        return _case(case, await svc.materials_of(case))

    @router.post("", response_model=CaseOut, status_code=201)
    async def register_case(body: RegistrationIn, response: Response,
                            principal: Principal = Depends(require(Role.WINDOW_CLERK)),
                            svc: CaseService = Depends(_service)):
        declared = DeclaredFacts(**body.declared_facts.model_dump()) if body.declared_facts else DeclaredFacts()
        case = await svc.register(principal, applicant_id=body.applicant_id, affair_code=body.affair_code,
                                  jurisdiction=body.jurisdiction, channel=body.channel,
                                  materials_handed_in=body.materials_handed_in, declared=declared)
        response.headers["Location"] = f"/v1/cases/{case.id}"
        return _case(case, await svc.materials_of(case))

    @router.get("", response_model=QueuePage)
    async def window_queue(
        status: CaseStatus | None = Query(None),
        affair_code: str | None = Query(None, max_length=64),
        community: str | None = Query(None, pattern=r"^[0-9]{12}$", description="a community of yours"),
        registered_from: Day | None = Query(None, description="first day (China time), inclusive"),
        registered_to: Day | None = Query(None, description="last day (China time), inclusive"),
        awaiting_supplement: QueryFlag | None = Query(None, description="only cases approval waits on a supplement for"),
        limit: int = Query(50, ge=1, le=200),
        offset: int = Query(0, ge=0, le=1_000_000),
        principal: Principal = Depends(require(*STAFF, Role.AUDITOR, jurisdiction_param="community")),
        svc: CaseService = Depends(_service),
    ):
        if registered_from and registered_to and registered_to < registered_from:
            raise Problem(VALIDATION_ERROR, "registered_to is before registered_from",
                          errors=[parameter_error("registered_to", "query", "must not be before registered_from")])
        f = QueueFilter(
            jurisdictions=principal.jurisdictions,
            status=status.value if status else None, affair_code=affair_code, community=community,
            registered_from=_day_start(registered_from) if registered_from else None,
            registered_before=_day_start(registered_to + timedelta(days=1)) if registered_to else None,
            awaiting_supplement=awaiting_supplement,
        )
        items, total = await svc.views.queue(f, limit=limit, offset=offset)
        next_offset = offset + limit if offset + limit < total else None
        return QueuePage(items=[QueueItem(**i) for i in items], total=total, limit=limit, offset=offset,
                         next_offset=next_offset)

    @router.get("/{case_id}", response_model=CaseOut)
    async def get_case(case_id: CaseId, principal: Principal = Depends(require(*STAFF, Role.AUDITOR)),
                       svc: CaseService = Depends(_service)):
        return await answer(svc, lambda: svc.get(case_id, principal))

    @router.get("/{case_id}/history", response_model=HistoryOut)
    async def case_history(case_id: CaseId, principal: Principal = Depends(require(Role.AUDITOR, *STAFF)),
                           svc: CaseService = Depends(_service)):
        return _history(await svc.history(case_id, principal))

    @router.post("/{case_id}/accept", response_model=ReceiptOut)
    async def accept_case(case_id: CaseId, principal: Principal = Depends(require(Role.WINDOW_CLERK)),
                          svc: CaseService = Depends(_service)):
        case = await svc.accept(case_id, principal)
        assert case.receipt is not None
        return _receipt(case, case.receipt)

    @router.post("/{case_id}/refuse", response_model=CaseOut)
    async def refuse_case(case_id: CaseId, body: ReasonIn, principal: Principal = Depends(require(Role.WINDOW_CLERK)),
                          svc: CaseService = Depends(_service)):
        return await answer(svc, lambda: svc.refuse(case_id, principal, body.reason))

    @router.post("/{case_id}/supplements", response_model=CaseOut)
    async def supplement_case(case_id: CaseId, body: MaterialsIn,
                              principal: Principal = Depends(require(Role.WINDOW_CLERK)),
                              svc: CaseService = Depends(_service)):
        return await answer(svc, lambda: svc.supplement(case_id, principal, body.materials))

    @router.post("/{case_id}/route", response_model=CaseOut)
    async def route_case(case_id: CaseId, principal: Principal = Depends(require(*ROUTERS)),
                         svc: CaseService = Depends(_service)):
        return await answer(svc, lambda: svc.route(case_id, principal))

    @router.post("/{case_id}/green-channel", response_model=CaseOut)
    async def green_channel(case_id: CaseId, body: ReasonIn, principal: Principal = Depends(require(*GREEN_CHANNEL)),
                            svc: CaseService = Depends(_service)):
        return await answer(svc, lambda: svc.put_on_green_channel(case_id, principal, body.reason))

    @router.post("/{case_id}/withdraw", response_model=CaseOut)
    async def withdraw_case(case_id: CaseId, body: WithdrawalIn,
                            principal: Principal = Depends(require(Role.WINDOW_CLERK)),
                            svc: CaseService = Depends(_service)):
        return await answer(svc, lambda: svc.withdraw(case_id, principal, applicant_id=body.applicant_id,
                                                      reason=body.reason))

    @router.post("/{case_id}/certificate", response_model=CaseOut)
    async def issue_certificate(case_id: CaseId, body: CertificateIn,
                                principal: Principal = Depends(require(Role.WINDOW_CLERK)),
                                svc: CaseService = Depends(_service)):
        return await answer(svc, lambda: svc.issue_certificate(case_id, principal, body.certificate_number))

    @router.post("/{case_id}/archive", response_model=CaseOut)
    async def archive_case(case_id: CaseId, principal: Principal = Depends(require(Role.WINDOW_CLERK)),
                           svc: CaseService = Depends(_service)):
        return await answer(svc, lambda: svc.archive(case_id, principal))

    @router.post("/{case_id}/applicant-identity", response_model=DisclosureOut)
    async def disclose_identity(case_id: CaseId, body: DisclosureIn, response: Response,
                                principal: Principal = Depends(require(Role.DEPARTMENT)),
                                svc: CaseService = Depends(_service)):
        """A department system whose department the case is routed to obtains the applicant's
        identity number; every disclosure is recorded as an event (civicgrid.intake.case.identity_disclosed.v1)."""
        disclosure = await svc.disclose_identity(case_id, principal, body.purpose)
        response.headers["Cache-Control"] = "no-store"
        return DisclosureOut(**vars(disclosure))

    @router.post("/{case_id}/applicant-contact", response_model=ContactOut)
    async def disclose_contact(case_id: CaseId, body: ContactIn, response: Response,
                               principal: Principal = Depends(require(Role.NOTIFIER)),
                               svc: CaseService = Depends(_service)):
        """The notifications service (role notifier) obtains the contact of the case's applicant
        to send them one message about the case; every disclosure is recorded as an event
        (civicgrid.intake.case.contact_disclosed.v1, without the address). 409
        channel_not_chosen when the applicant did not choose the channel, no_contact_on_record
        when intake holds no address for it."""
        disclosure = await svc.disclose_contact(case_id, principal, body.channel, body.purpose)
        response.headers["Cache-Control"] = "no-store"
        return ContactOut(**vars(disclosure))

    @router.post("/{case_id}/rating", response_model=CaseOut)
    async def rate_case(case_id: CaseId, body: RatingIn, principal: Principal = Depends(require(Role.WINDOW_CLERK)),
                        svc: CaseService = Depends(_service)):
        return await answer(svc, lambda: svc.rate(case_id, principal, applicant_id=body.applicant_id,
                                                  level=body.level.value))

    @router.post("/{case_id}/follow-up/call-back", response_model=CaseOut)
    async def call_back(case_id: CaseId, principal: Principal = Depends(require(*ROUTERS)),
                        svc: CaseService = Depends(_service)):
        return await answer(svc, lambda: svc.record_call_back(case_id, principal))

    @router.post("/{case_id}/follow-up/close", response_model=CaseOut)
    async def close_follow_up(case_id: CaseId, principal: Principal = Depends(require(*ROUTERS)),
                              svc: CaseService = Depends(_service)):
        return await answer(svc, lambda: svc.close_follow_up(case_id, principal))

    return router


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=CHINA_TZ)
