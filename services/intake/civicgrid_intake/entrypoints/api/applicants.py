"""Applicants over HTTP: the window registers and finds them; staff read profiles, masked by role.

POST /v1/applicants           register a resident or an enterprise (window_clerk): 201 with a new
                              applicant, or 200 with the applicant already registered under that
                              number (`matched`), their stored profile updated if the data differ
POST /v1/applicants/lookup    find an applicant by identity number (window_clerk). A POST, not a
                              GET with ?number=: a query string ends up in access logs, proxies'
                              logs and browser history; a body does not
POST /v1/applicants/relocations  record that a registered applicant moved into the clerk's
                              jurisdiction, with the document shown (window_clerk of the new place)
GET  /v1/applicants/{id}      the profile (masked per role, domain/applicant.py) and the history
                              of earlier cases and complaints the caller may see
PUT  /v1/applicants/{id}/contact-channels  how the applicant wants to be told about their cases:
                              SMS, email, WeChat, several or none, with the email and openid
                              (window_clerk who may serve them); GET reads it, masked like the phone

Every route is scoped (application/applicants.py says who sees whom); an applicant the caller may
not see is answered 404 like an unknown one. Error bodies name the field and the rule, never the
value typed in.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, Union

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import (
    BaseModel,
    Field,
    RootModel,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_validator,
)

from civicgrid_common.identity import Principal, Role
from civicgrid_common.identity.dependencies import require
from civicgrid_common.web.models import Day, RequestBody

from civicgrid_intake.application.applicants import (
    READERS,
    ApplicantInput,
    ApplicantService,
    ChosenChannels,
    ContactChannelsInput,
    EnterpriseInput,
    HistoryEntry,
    Keep,
    RelocationInput,
    ResidentInput,
    StoredApplicant,
    profile_extras,
)
from civicgrid_intake.domain.applicant import Evidence, IdentityKind, present, visibility_for
from civicgrid_intake.domain.contact_channels import MAX_EMAIL_LENGTH, TellChannel, mask_email, mask_openid

_APPLICANT_ID = r"^ap-[0-9a-f]{32}$"
_CODE = "district, street or community code (6, 9 or 12 digits)"
# Answers carry personal data: no browser, proxy or cache may keep a copy.
_NO_STORE = {"Cache-Control": "no-store"}


# ---------------------------------------------------------------------- bodies


class _Body(RequestBody):
    pass


class ResidentIn(_Body):
    kind: Literal["resident"]
    identity_number: str = Field(max_length=32, description="居民身份证号码, 18 characters (GB 11643)")
    name: str = Field(max_length=200)
    phone: str | None = Field(None, max_length=32, description="mobile or landline; omitted on a match: "
                              "keep the stored one; null: the applicant has none")
    household_registration_code: str = Field(max_length=16, description="户籍: " + _CODE)
    residence_community_code: str = Field(max_length=16, description="where the resident lives: 12 digits")
    birth_date: Day | None = Field(None, description="if given, must agree with the number")
    sex: Literal["male", "female"] | None = Field(None, description="if given, must agree with the number")

    def to_input(self) -> ResidentInput:
        return ResidentInput(
            identity_number=self.identity_number, name=self.name,
            household_registration_code=self.household_registration_code,
            residence_community_code=self.residence_community_code,
            phone=self.phone if "phone" in self.model_fields_set else Keep.STORED,
            birth_date=self.birth_date, sex=self.sex)


class EnterpriseIn(_Body):
    kind: Literal["enterprise"]
    credit_code: str = Field(max_length=32, description="统一社会信用代码, 18 characters (GB 32100)")
    name: str = Field(max_length=400)
    legal_representative: str = Field(max_length=200)
    registered_address_code: str = Field(max_length=16, description="registered address: " + _CODE)

    def to_input(self) -> EnterpriseInput:
        return EnterpriseInput(credit_code=self.credit_code, name=self.name,
                               legal_representative=self.legal_representative,
                               registered_address_code=self.registered_address_code)


class ApplicantRegistrationIn(RootModel[Annotated[Union[ResidentIn, EnterpriseIn], Field(discriminator="kind")]]):
    """A resident or an enterprise, told apart by `kind`."""

    @model_validator(mode="wrap")
    @classmethod
    def _errors_at_the_members(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # pydantic locates an error under the union's tag ("resident/name"); the client sent
        # a body with `name`, so the error's JSON pointer must be #/name (and #/kind for the tag).
        try:
            return handler(value)
        except ValidationError as e:
            raise ValidationError.from_exception_data(e.title, [_at_member(err) for err in e.errors()]) from None


def _at_member(err: Any) -> Any:
    loc = tuple(err["loc"])
    if err["type"].startswith("union_tag"):
        loc = ("kind",)
    elif loc and loc[0] in ("resident", "enterprise"):
        loc = loc[1:]
    detail = {"type": err["type"], "loc": loc, "input": err["input"]}
    if "ctx" in err:
        detail["ctx"] = err["ctx"]
    return detail


class LookupIn(_Body):
    kind: Literal["resident", "enterprise"] = "resident"
    identity_number: str = Field(max_length=32, description="resident identity number or credit code")


class RelocationIn(_Body):
    """Where a registered applicant is registered from now on: a resident's new residence community
    (and new 户籍 if it moved too), an enterprise's new registered address."""

    kind: Literal["resident", "enterprise"] = "resident"
    identity_number: str = Field(max_length=32, description="resident identity number or credit code")
    residence_community_code: str | None = Field(None, max_length=16, description="residents: the new community, "
                                                                                "12 digits, inside yours")
    household_registration_code: str | None = Field(None, max_length=16, description="residents: the new 户籍 "
                                                    "(" + _CODE + "); omitted: unchanged")
    registered_address_code: str | None = Field(None, max_length=16, description="enterprises: the new "
                                                "registered address (" + _CODE + "), inside yours")
    evidence: Evidence = Field(description="the document shown: household_register 户口簿, residence_permit 居住证, "
                                           "residence_registration 居住登记, property_certificate 不动产权证书, "
                                           "tenancy_registration 租赁登记, business_licence 营业执照")

    def to_input(self) -> RelocationInput:
        kind = IdentityKind.RESIDENT_ID if self.kind == "resident" else IdentityKind.CREDIT_CODE
        return RelocationInput(kind=kind, identity_number=self.identity_number, evidence=self.evidence,
                               residence_community_code=self.residence_community_code,
                               household_registration_code=self.household_registration_code,
                               registered_address_code=self.registered_address_code)


class ContactChannelsIn(_Body):
    """How the applicant wants to be told. Addresses left out are removed from the record."""

    channels: list[TellChannel] = Field(max_length=3, description="the channels chosen, in the applicant's order; "
                                                                  "[] to be told on none. sms goes to the profile's "
                                                                  "mobile number")
    email: str | None = Field(None, max_length=MAX_EMAIL_LENGTH, description="required when email is chosen")
    wechat_openid: str | None = Field(None, max_length=64,
                                      description="the applicant's openid of the district's mini program (its "
                                                  "backend has it from WeChat's login); required when wechat is "
                                                  "chosen")

    def to_input(self) -> ContactChannelsInput:
        return ContactChannelsInput(channels=tuple(str(c) for c in self.channels), email=self.email,
                                    wechat_openid=self.wechat_openid)


# ---------------------------------------------------------------------- answers


class ContactChannelsOut(BaseModel):
    applicant_id: str
    channels: list[TellChannel]
    chosen: bool = Field(description="false: the applicant never chose, and SMS to a mobile applies")
    email: str | None = Field(description="masked unless the caller sees contact details in full")
    wechat_openid: str | None = Field(description="masked unless the caller sees contact details in full")
    shown_in_full: bool


def _channels_out(principal: Principal, chosen: ChosenChannels) -> ContactChannelsOut:
    full = visibility_for(principal.roles).phone  # contact details: seen as the phone is
    email, openid = chosen.chosen.email, chosen.chosen.wechat_openid
    return ContactChannelsOut(
        applicant_id=chosen.applicant_id, channels=list(chosen.chosen.channels), chosen=chosen.chosen_at,
        email=None if email is None else (email if full else mask_email(email)),
        wechat_openid=None if openid is None else (openid if full else mask_openid(openid)),
        shown_in_full=full)


class ShownInFull(BaseModel):
    """Which personal fields this caller sees unmasked (by role)."""

    identity_number: bool
    phone: bool
    name: bool


class ApplicantHistoryOut(BaseModel):
    kind: Literal["case", "complaint"]
    id: str
    status: str
    subject: str = Field(description="the case's affair code, the complaint's category")
    at: datetime = Field(description="registered (case) or received (complaint)")
    case_number: str | None = None


class ApplicantOut(BaseModel):
    applicant_id: str = Field(description="pseudonymous id, the one events and cases carry")
    kind: Literal["resident", "enterprise"]
    profile: dict[str, Any] = Field(description="the profile as the caller's roles may see it")
    birth_date: date | None = Field(None, description="from the number; only for who sees it in full")
    sex: Literal["male", "female"] | None = None
    shown_in_full: ShownInFull
    registered_at: datetime
    updated_at: datetime
    history: list[ApplicantHistoryOut]


class ApplicantRegistrationOut(ApplicantOut):
    matched: bool = Field(description="already registered under this number")
    profile_updated: bool = Field(description="the clerk's data changed the stored profile")


def _out(principal: Principal, stored: StoredApplicant, history: list[HistoryEntry]) -> dict[str, Any]:
    seen = visibility_for(principal.roles)
    return {
        "applicant_id": stored.applicant_id,
        "kind": stored.profile.kind.value,
        "profile": present(stored.profile, principal.roles),
        **profile_extras(stored.profile, seen.identity_number),
        "shown_in_full": ShownInFull(identity_number=seen.identity_number, phone=seen.phone, name=seen.name),
        "registered_at": stored.registered_at,
        "updated_at": stored.updated_at,
        "history": [ApplicantHistoryOut(kind=h.kind, id=h.id, status=h.status, subject=h.subject, at=h.at,
                               case_number=h.case_number) for h in history],
    }


# ---------------------------------------------------------------------- routes


def _service(request: Request) -> ApplicantService:
    return request.app.state.applicants


def applicants_router() -> APIRouter:
    router = APIRouter(prefix="/v1/applicants", tags=["applicants"])

    @router.post("", response_model=ApplicantRegistrationOut, status_code=201, responses={
        200: {"model": ApplicantRegistrationOut, "description": "matched an applicant already registered"}})
    async def register_applicant(response: Response, body: ApplicantRegistrationIn,
                                 principal: Principal = Depends(require(Role.WINDOW_CLERK)),
                                 svc: ApplicantService = Depends(_service)):
        data: ApplicantInput = body.root.to_input()
        registration = await svc.register(principal, data)
        applicant = registration.applicant
        response.headers.update({**_NO_STORE, "Location": f"/v1/applicants/{applicant.applicant_id}"})
        if registration.matched:
            response.status_code = 200
        return {**_out(principal, applicant, registration.history), "matched": registration.matched,
                "profile_updated": registration.profile_updated}

    @router.post("/lookup", response_model=ApplicantOut)
    async def look_up_applicant(body: LookupIn, response: Response,
                                principal: Principal = Depends(require(Role.WINDOW_CLERK)),
                                svc: ApplicantService = Depends(_service)):
        kind = IdentityKind.RESIDENT_ID if body.kind == "resident" else IdentityKind.CREDIT_CODE
        stored, history = await svc.look_up(principal, kind, body.identity_number)
        response.headers.update(_NO_STORE)
        return _out(principal, stored, history)

    @router.post("/relocations", response_model=ApplicantOut)
    async def relocate_applicant(body: RelocationIn, response: Response,
                                 principal: Principal = Depends(require(Role.WINDOW_CLERK)),
                                 svc: ApplicantService = Depends(_service)):
        """A registered applicant moved into your jurisdiction: their places change (recorded as
        civicgrid.intake.applicant.relocated.v1 with the kind of document shown); name and phone stay."""
        stored, history = await svc.relocate(principal, body.to_input())
        response.headers.update(_NO_STORE)
        return _out(principal, stored, history)

    @router.get("/{applicant_id}", response_model=ApplicantOut)
    async def get_applicant(response: Response,
                            applicant_id: str = Path(pattern=_APPLICANT_ID, description="ap- and 32 hex digits"),
                            principal: Principal = Depends(require(*READERS)),
                            svc: ApplicantService = Depends(_service)):
        stored, history = await svc.get(principal, applicant_id)
        response.headers.update(_NO_STORE)
        return _out(principal, stored, history)

    @router.get("/{applicant_id}/contact-channels", response_model=ContactChannelsOut)
    async def get_contact_channels(response: Response,
                                   applicant_id: str = Path(pattern=_APPLICANT_ID, description="ap- and 32 hex digits"),
                                   principal: Principal = Depends(require(*READERS)),
                                   svc: ApplicantService = Depends(_service)):
        chosen = await svc.contact_channels(principal, applicant_id)
        response.headers.update(_NO_STORE)
        return _channels_out(principal, chosen)

    @router.put("/{applicant_id}/contact-channels", response_model=ContactChannelsOut)
    async def set_contact_channels(body: ContactChannelsIn, response: Response,
                                   applicant_id: str = Path(pattern=_APPLICANT_ID, description="ap- and 32 hex digits"),
                                   principal: Principal = Depends(require(Role.WINDOW_CLERK)),
                                   svc: ApplicantService = Depends(_service)):
        """Record how the applicant wants to be told about their cases (告知方式), as
        civicgrid.intake.applicant.contact_channels_set.v1 (the channels, never the addresses).
        The notifications service is given an address only for a channel chosen here."""
        chosen = await svc.set_contact_channels(principal, applicant_id, body.to_input())
        response.headers.update(_NO_STORE)
        return _channels_out(principal, chosen)

    return router
