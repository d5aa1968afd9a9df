"""Use cases of applicants (申请人) at the one window: register (matching someone already known),
look up by identity number, and read a profile with the history of earlier affairs.

- **Matching.** The identity number's blind index finds an applicant already registered. A match
  never discloses or overwrites what the caller may not see: only a clerk who may serve the
  stored applicant is served (and may update the name and phone); the stored places (residence,
  户籍, registered address) change only by a relocation, its own audited command. A clerk of
  another street learns only that the number is registered elsewhere (409, nothing of the
  person), since the resident standing at the window must be served somehow. Otherwise a new
  applicant stream is started under the pseudonymous id (the keyed HMAC of domain/applicant.py)
  and `applicant registered` is appended; the personal fields go to the encrypted applicant
  directory IN THE SAME TRANSACTION, so there is never an event without its person nor a person
  without their event.
- **Relocation (迁移).** A resident who moved (or an enterprise whose registered address moved)
  is relocated by a clerk of the new place, with the document shown as evidence; it is recorded
  as `applicant relocated` and the directory's places change in the same transaction.
- **Who sees an applicant** (`_visible`): staff whose jurisdiction holds a place the applicant
  lives or is registered in, or one of their cases or complaints (so a street keeps seeing the
  resident of its open case after they moved); a department system only an applicant with a case
  or complaint routed to its department, inside its jurisdiction, and of their history only
  those. Anyone else is told there is no such applicant (404), exactly as for an unknown id or
  number, so that numbers and ids cannot be probed.
- **Personal data** never leaves this module in events, logs or error messages: input errors
  name the field and the rule, not the value.

The directory is a port (`ApplicantDirectory`); adapters/applicant_store.py implements it with
AES-GCM-encrypted rows. This layer does not import adapters (layers import downwards only).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Iterable, Protocol, Sequence

from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.calendar.working_days import local_date
from civicgrid_common.identity.principal import Principal, Role
from civicgrid_common.problems import NotFound, OutsideJurisdiction, Refusal, RuleViolation
from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_intake.domain.applicant import (
    Applicant,
    Enterprise,
    Evidence,
    IdentityKind,
    InvalidApplicant,
    Profile,
    Resident,
    applicant_id_of,
    is_mobile,
    register_applicant,
)
from civicgrid_intake.domain.contact_channels import (
    NOT_CHOSEN,
    ContactChannels,
    InvalidContactChannels,
    TellChannel,
)
from civicgrid_intake.domain.eligibility import ApplicantFacts
from civicgrid_intake.domain.identity_numbers import (
    NumberError,
    NumberRule,
    ResidentIdNumber,
    credit_code_errors,
    resident_id_errors,
)

# Valid-shaped stand-ins so the other fields are still checked when the number itself is bad
# (the clerk hears about every problem at once). Never stored: an error is raised anyway.
_STAND_IN_RESIDENT_ID = "11010519491231002X"
_STAND_IN_CREDIT_CODE = "91110000000000000A"

# What each broken identity-number rule is called at the window. The domain's own messages
# quote parts of the number (area code, birth date); these do not, because error bodies may
# be logged by proxies and front ends.
_RULE_TEXT: dict[NumberRule, str] = {
    NumberRule.LENGTH: "must have 18 characters",
    NumberRule.CHARACTERS: "has characters outside those the standard allows",
    NumberRule.CHECK_CHARACTER: "the check character (the 18th) does not match the first 17",
    NumberRule.BIRTH_DATE_INVALID: "the birth date (characters 7 to 14) is not a calendar date",
    NumberRule.BIRTH_DATE_IN_FUTURE: "the birth date (characters 7 to 14) is in the future",
    NumberRule.BIRTH_DATE_TOO_EARLY: "the birth date (characters 7 to 14) is before 1900",
    NumberRule.AREA_CODE: "the area code (first 6 digits) names no province of GB/T 2260",
    NumberRule.REGISTRATION_DEPARTMENT: "the first character names no registration department of GB 32100",
    NumberRule.ORGANISATION_TYPE: "the second character is no organisation type of its registration department",
    NumberRule.ADMIN_CODE: "characters 3 to 8 are no administrative division code (GB/T 2260)",
}


# ---------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with the clerk's input: which field, which rule, in words."""

    field: str
    rule: str
    detail: str


class ApplicantInputError(RuleViolation):
    """The input breaks one or more rules; `problems` lists every one found."""

    refusal = Refusal.INVALID

    def __init__(self, problems: Sequence[FieldProblem]) -> None:
        self.problems = list(problems)
        super().__init__("applicant_rule", "; ".join(f"{p.field}: {p.detail}" for p in self.problems),
                         errors=[{"pointer": "#/" + p.field, "rule": p.rule, "detail": p.detail}
                                 for p in self.problems])


class ApplicantNotFound(NotFound):
    """No applicant with that id or number, or none the caller may see (answered alike)."""

    def __init__(self) -> None:
        RuleViolation.__init__(self, "not_found", "no applicant with that id or number is registered")


# The places the clerk typed in are not the clerk's: register where the applicant lives.
OUTSIDE_MESSAGE = "the applicant neither lives nor is registered inside your jurisdiction"


class RegisteredElsewhere(RuleViolation):
    """The number is registered at a window of another jurisdiction: nothing of it is shown."""

    def __init__(self) -> None:
        super().__init__("registered_elsewhere",
                         "this identity number is registered at another window; if the applicant moved into your "
                         "jurisdiction, record the move (POST /v1/applicants/relocations) with the document shown",
                         field="identity_number")


class PlacesDiffer(RuleViolation):
    """A matched applicant's stored places differ from the clerk's: a move is recorded as one."""

    def __init__(self, fields: Sequence[str]) -> None:
        message = ("differs from where the applicant is registered; a move is recorded as a relocation "
                   "(POST /v1/applicants/relocations) with the document shown")
        super().__init__("places_differ", f"the applicant's registered places differ: {', '.join(fields)}",
                         errors=[{"pointer": "#/" + f, "detail": message} for f in fields])


class NotMoved(RuleViolation):
    def __init__(self) -> None:
        super().__init__("not_moved", "the applicant is registered at these places already")


# ---------------------------------------------------------------------------- input


class Keep(enum.Enum):
    """An optional field the clerk did not send: a matched applicant keeps what is stored."""

    STORED = "stored"


@dataclass(frozen=True)
class ResidentInput:
    identity_number: str
    name: str
    household_registration_code: str
    residence_community_code: str
    phone: str | None | Keep = Keep.STORED  # None: the applicant has no phone (any more)
    birth_date: date | None = None  # if given, must agree with the number (GB 11643)
    sex: str | None = None  # "male" | "female"; if given, must agree with the number


@dataclass(frozen=True)
class EnterpriseInput:
    credit_code: str
    name: str
    legal_representative: str
    registered_address_code: str


ApplicantInput = ResidentInput | EnterpriseInput


@dataclass(frozen=True)
class RelocationInput:
    """Where an applicant is registered from now on, and the document that shows it."""

    kind: IdentityKind
    identity_number: str
    evidence: Evidence
    residence_community_code: str | None = None  # residents
    household_registration_code: str | None = None  # residents; None keeps the stored 户籍
    registered_address_code: str | None = None  # enterprises


def _number_problems(field_name: str, errors: Iterable[NumberError]) -> list[FieldProblem]:
    return [FieldProblem(field_name, e.rule.value, f"{field_name} {_RULE_TEXT[e.rule]}") for e in errors]


def _profile_problem(e: InvalidApplicant) -> FieldProblem:
    return FieldProblem(e.field, "invalid", e.message)


def parse_resident(data: ResidentInput, today: date) -> Resident:
    """A validated resident, or ApplicantInputError naming every failing rule of the number
    and the first problem of the other fields."""
    problems = _number_problems("identity_number", resident_id_errors(data.identity_number, today))
    if problems:
        value = _STAND_IN_RESIDENT_ID
    else:
        number = ResidentIdNumber.parse(data.identity_number, today)
        value = number.value
        problems.extend(_disagreements(data, number))
    try:
        phone = None if data.phone is Keep.STORED else data.phone
        resident = Resident(identity_number=value, name=data.name, phone=phone,
                            household_registration_code=data.household_registration_code,
                            residence_community_code=data.residence_community_code)
    except InvalidApplicant as e:
        problems.append(_profile_problem(e))
    if problems:
        raise ApplicantInputError(problems)
    return resident


def _disagreements(data: ResidentInput, number: ResidentIdNumber) -> list[FieldProblem]:
    """Birth date and sex, when the clerk gives them, must be what the number says."""
    problems = []
    if data.birth_date is not None and data.birth_date != number.birth_date:
        problems.append(FieldProblem("birth_date", "birth_date_mismatch",
                                     "birth_date differs from the birth date in the identity number"))
    if data.sex is not None and data.sex != number.sex:
        problems.append(FieldProblem("sex", "sex_mismatch",
                                     "sex differs from the sex the identity number's sequence gives"))
    return problems


def parse_enterprise(data: EnterpriseInput) -> Enterprise:
    problems = _number_problems("credit_code", credit_code_errors(data.credit_code))
    code = _STAND_IN_CREDIT_CODE if problems else data.credit_code.strip().upper()
    try:
        enterprise = Enterprise(credit_code=code, name=data.name, legal_representative=data.legal_representative,
                                registered_address_code=data.registered_address_code)
    except InvalidApplicant as e:
        problems.append(_profile_problem(e))
    if problems:
        raise ApplicantInputError(problems)
    return enterprise


def parse_identity_number(kind: IdentityKind, number: str, today: date) -> str:
    """A looked-up number, validated and normalised (upper-case X), or ApplicantInputError."""
    if kind is IdentityKind.RESIDENT_ID:
        problems = _number_problems("identity_number", resident_id_errors(number, today))
    else:
        problems = _number_problems("identity_number", credit_code_errors(number))
    if problems:
        raise ApplicantInputError(problems)
    return number.strip().upper()


# ---------------------------------------------------------------------------- the port


@dataclass(frozen=True)
class HistoryEntry:
    """An earlier case or complaint of the applicant, as the window's history lists it."""

    kind: str  # "case" | "complaint"
    id: str
    status: str
    subject: str  # the case's affair code, the complaint's category
    at: datetime  # registered (case) or received (complaint)
    case_number: str | None = None


@dataclass(frozen=True)
class StoredApplicant:
    applicant_id: str
    profile: Profile
    registered_at: datetime
    updated_at: datetime


class ApplicantDirectory(Protocol):
    """Where applicants' personal data lives (encrypted) and how they are found, in the unit of
    work's transaction (its rows and the applicant's events commit together). Two clerks
    registering one person at once: the loser's insert raises ConcurrencyConflict, and the retry
    finds the winner's row."""

    async def find_by_number(self, uow: UnitOfWork, identity_number: str, kind: IdentityKind, *,
                             for_update: bool = False) -> StoredApplicant | None: ...

    async def find(self, uow: UnitOfWork, applicant_id: str) -> StoredApplicant | None: ...

    async def insert(self, uow: UnitOfWork, applicant_id: str, profile: Profile, at: datetime) -> StoredApplicant: ...

    async def update(self, uow: UnitOfWork, applicant_id: str, profile: Profile, at: datetime) -> StoredApplicant: ...

    async def history(self, uow: UnitOfWork, applicant_id: str, within: Sequence[str], *,
                      routed_to: str | None = None) -> list[HistoryEntry]:
        """Cases and complaints inside `within`; with `routed_to`, only those routed to that department."""

    async def contact_channels(self, uow: UnitOfWork, applicant_id: str) -> ContactChannels | None:
        """How the applicant chose to be told, decrypted; None if they never chose."""

    async def set_contact_channels(self, uow: UnitOfWork, applicant_id: str, chosen: ContactChannels,
                                   at: datetime) -> None: ...


# ---------------------------------------------------------------------------- use cases


@dataclass(frozen=True)
class Registration:
    applicant: StoredApplicant
    matched: bool  # an applicant with this number was already registered
    profile_updated: bool  # ... and the clerk's data changed the stored profile
    history: list[HistoryEntry] = field(default_factory=list)


def _keeping_what_was_not_sent(data: ApplicantInput, profile: Profile, stored: Profile) -> Profile:
    """A phone the clerk did not send stays as stored (a null phone removes it)."""
    if isinstance(data, ResidentInput) and data.phone is Keep.STORED and isinstance(stored, Resident):
        return replace(profile, phone=stored.phone)
    return profile


def codes_of(profile: Profile) -> tuple[str, ...]:
    """The places that tie an applicant to a window: residence and 户籍, or registered address."""
    if isinstance(profile, Resident):
        return (profile.residence_community_code, profile.household_registration_code)
    return (profile.registered_address_code,)


def may_serve(principal: Principal, profile: Profile) -> bool:
    return any(principal.may_act_in(code) for code in codes_of(profile))


def _place_fields(profile: Profile) -> list[str]:
    if isinstance(profile, Resident):
        return ["residence_community_code", "household_registration_code"]
    return ["registered_address_code"]


def _places(profile: Profile) -> tuple[str, ...]:
    return codes_of(profile)


# Who reads applicants: the window's staff and those who decide on their files (masked per role,
# domain/applicant.py), auditors, and department systems for what is routed to them. Grid workers
# and admins do not: a grid worker's residents are reached through the window.
READERS = (Role.WINDOW_CLERK, Role.COMMUNITY_REVIEWER, Role.STREET_REVIEWER, Role.BUREAU_APPROVER, Role.LEADER,
           Role.AUDITOR, Role.DEPARTMENT)
@dataclass(frozen=True)
class ContactChannelsInput:
    """How the applicant wants to be told: the addresses beyond the phone and the channels."""

    channels: tuple[str, ...]
    email: str | None = None
    wechat_openid: str | None = None


@dataclass(frozen=True)
class ChosenChannels:
    applicant_id: str
    chosen: ContactChannels
    chosen_at: bool  # False: never chosen, the default (SMS to a mobile) applies
    profile: Profile


class NoContactForChannel(RuleViolation):
    """intake will not hand over an address for this channel: `no_contact_on_record`, or
    `channel_not_chosen` (the applicant chose other channels, or none)."""

    refusal = Refusal.CONFLICT

    def __init__(self, why: str, code: str = "no_contact_on_record") -> None:
        super().__init__(code, why)


_STAFF = tuple(r for r in READERS if r is not Role.DEPARTMENT)


class ApplicantService:
    def __init__(self, transactions: Transactions, directory: ApplicantDirectory, pseudonym_key: bytes, *,
                 clock: Clock = utc_now) -> None:
        self.transactions = transactions
        self.directory = directory
        self.pseudonym_key = pseudonym_key
        self.clock = clock

    def today(self) -> date:
        """Today in China: a birth date is in the future by the window's calendar."""
        return local_date(self.clock())

    def parse(self, data: ApplicantInput) -> Profile:
        if isinstance(data, ResidentInput):
            return parse_resident(data, self.today())
        return parse_enterprise(data)

    async def register(self, principal: Principal, data: ApplicantInput) -> Registration:
        profile = self.parse(data)
        if not may_serve(principal, profile):
            raise OutsideJurisdiction(_place_fields(profile), OUTSIDE_MESSAGE)

        async def register(uow: UnitOfWork) -> Registration:
            # FOR UPDATE: two matching registrations with different changes apply one by one.
            known = await self.directory.find_by_number(uow, profile.identity_number, profile.identity_kind,
                                                        for_update=True)
            now = self.clock()
            if known is not None:
                return await self._matched(uow, principal, data, profile, known, now)
            applicant_id = applicant_id_of(profile, self.pseudonym_key)
            # A stream without a row: the personal data were erased and the person comes back.
            # Their history (and id) continue; only the personal data are stored again.
            if await uow.find(Applicant, applicant_id) is None:
                uow.add(register_applicant(profile, self.pseudonym_key))
            stored = await self.directory.insert(uow, applicant_id, profile, now)
            history = await self.directory.history(uow, applicant_id, principal.jurisdictions)
            return Registration(stored, matched=False, profile_updated=False, history=history)

        return await self.transactions(register)

    async def _matched(self, uow: UnitOfWork, principal: Principal, data: ApplicantInput,
                       profile: Profile, known: StoredApplicant, now: datetime) -> Registration:
        """The number is registered: serve that applicant if the caller may, changing only its
        name and phone; its places change only by a relocation."""
        try:
            history = await self._visible_history(uow, principal, known)
        except ApplicantNotFound:
            raise RegisteredElsewhere() from None
        differing = [f for f, mine, stored in zip(_place_fields(profile), _places(profile), _places(known.profile))
                     if mine != stored]
        if differing:
            raise PlacesDiffer(differing)
        profile = _keeping_what_was_not_sent(data, profile, known.profile)
        changed = known.profile != profile
        if changed:
            known = await self.directory.update(uow, known.applicant_id, profile, now)
        return Registration(known, matched=True, profile_updated=changed, history=history)

    async def relocate(self, principal: Principal, data: RelocationInput) -> tuple[StoredApplicant, list[HistoryEntry]]:
        """Record that a registered applicant now lives (or is registered) at new places, shown by
        `evidence`; by a clerk of the new place. The places in the directory and the
        `applicant relocated` event change in one transaction; name and phone stay."""
        number = parse_identity_number(data.kind, data.identity_number, self.today())

        async def relocate(uow: UnitOfWork) -> tuple[StoredApplicant, list[HistoryEntry]]:
            known = await self.directory.find_by_number(uow, number, data.kind, for_update=True)
            if known is None:
                raise ApplicantNotFound()
            profile = self._relocated(known.profile, data)
            if not may_serve(principal, profile):
                raise OutsideJurisdiction(_place_fields(profile)[:1], OUTSIDE_MESSAGE)
            if _places(profile) == _places(known.profile):
                raise NotMoved()
            now = self.clock()
            applicant = await uow.get(Applicant, known.applicant_id)
            applicant.relocate(profile.jurisdiction, evidence=data.evidence, actor=principal.subject, at=now)
            stored = await self.directory.update(uow, known.applicant_id, profile, now)
            return stored, await self.directory.history(uow, stored.applicant_id, principal.jurisdictions)

        return await self.transactions(relocate)

    def _relocated(self, profile: Profile, data: RelocationInput) -> Profile:
        problems: list[FieldProblem] = []
        try:
            if isinstance(profile, Resident):
                if data.residence_community_code is None:
                    problems.append(FieldProblem("residence_community_code", "required",
                                                 "a resident's relocation names the new residence community"))
                    raise ApplicantInputError(problems)
                return replace(profile, residence_community_code=data.residence_community_code,
                               household_registration_code=(data.household_registration_code
                                                            or profile.household_registration_code))
            if data.registered_address_code is None:
                problems.append(FieldProblem("registered_address_code", "required",
                                             "an enterprise's relocation names the new registered address"))
                raise ApplicantInputError(problems)
            return replace(profile, registered_address_code=data.registered_address_code)
        except InvalidApplicant as e:
            raise ApplicantInputError([_profile_problem(e)]) from None

    async def facts(self, applicant_id: str) -> ApplicantFacts | None:
        """The eligibility facts of a registered applicant; None if intake does not know them
        (never registered, or their personal data were erased)."""
        async with self.transactions.unit() as uow:
            stored = await self.directory.find(uow, applicant_id)
        return None if stored is None else facts_of(stored.profile)

    async def identity_of(self, uow: UnitOfWork, applicant_id: str) -> tuple[IdentityKind, str] | None:
        """The applicant's identity number (or credit code) and its kind, decrypted, for a
        disclosure the caller records in the same unit of work; None if intake holds none."""
        stored = await self.directory.find(uow, applicant_id)
        if stored is None:
            return None
        return stored.profile.identity_kind, stored.profile.identity_number

    async def contact_for(self, uow: UnitOfWork, applicant_id: str, channel: str) -> str:
        """The applicant's address on `channel`, decrypted, for a disclosure the caller records in
        the same unit of work: only for a channel the applicant chose (SMS to a mobile when they
        never chose); NoContactForChannel otherwise, saying why without the address."""
        stored = await self.directory.find(uow, applicant_id)
        if stored is None:
            raise NoContactForChannel("intake holds no personal data of this case's applicant")
        chosen = await self.directory.contact_channels(uow, applicant_id) or NOT_CHOSEN
        if channel not in chosen.channels:
            raise NoContactForChannel(f"the applicant did not choose to be told by {channel}", "channel_not_chosen")
        if channel == TellChannel.EMAIL and chosen.email:
            return chosen.email
        if channel == TellChannel.WECHAT and chosen.wechat_openid:
            return chosen.wechat_openid
        phone = getattr(stored.profile, "phone", None)  # an enterprise has none
        if channel == TellChannel.SMS and phone and is_mobile(phone):
            return phone
        if channel == TellChannel.SMS:
            raise NoContactForChannel("the applicant's phone on record is a landline, which takes no SMS" if phone
                                      else "intake holds no phone of this case's applicant")
        raise NoContactForChannel(f"intake holds no {channel} contact of this case's applicant")

    async def contact_channels(self, principal: Principal, applicant_id: str) -> ChosenChannels:
        """How an applicant the caller may see chose to be told (the default if they never did)."""
        async with self.transactions.unit() as uow:
            stored = await self.directory.find(uow, applicant_id)
            await self._visible(uow, principal, stored)
            assert stored is not None
            chosen = await self.directory.contact_channels(uow, applicant_id)
        return ChosenChannels(applicant_id, chosen or NOT_CHOSEN, chosen is not None, stored.profile)

    async def set_contact_channels(self, principal: Principal, applicant_id: str,
                                   data: ContactChannelsInput) -> ChosenChannels:
        """A clerk who may serve the applicant records how they want to be told: the directory's
        row and the `contact channels set` event in one transaction. The addresses not sent are
        removed: the form shows everything on record, and what the resident left empty is gone."""
        try:
            chosen = ContactChannels(email=data.email, wechat_openid=data.wechat_openid,
                                     channels=tuple(data.channels))
        except InvalidContactChannels as e:
            raise ApplicantInputError([FieldProblem(e.field, "contact_channels", e.message)]) from None

        async def choose(uow: UnitOfWork) -> ChosenChannels:
            stored = await self.directory.find(uow, applicant_id)
            if stored is None or not may_serve(principal, stored.profile):
                await self._visible(uow, principal, stored)  # 404 to whoever may not see them
                assert stored is not None
                raise OutsideJurisdiction(_place_fields(stored.profile)[:1], OUTSIDE_MESSAGE)
            phone = getattr(stored.profile, "phone", None)
            try:
                chosen.check_phone(bool(phone) and is_mobile(phone))
            except InvalidContactChannels as e:
                raise ApplicantInputError([FieldProblem(e.field, "contact_channels", e.message)]) from None
            if await self.directory.contact_channels(uow, applicant_id) == chosen:
                return ChosenChannels(applicant_id, chosen, True, stored.profile)  # said again: nothing new
            now = self.clock()
            applicant = await uow.get(Applicant, applicant_id)
            applicant.set_contact_channels(chosen.channels, email_on_record=chosen.email is not None,
                                           wechat_on_record=chosen.wechat_openid is not None,
                                           actor=principal.subject, at=now)
            await self.directory.set_contact_channels(uow, applicant_id, chosen, now)
            return ChosenChannels(applicant_id, chosen, True, stored.profile)

        return await self.transactions(choose)

    async def get(self, principal: Principal, applicant_id: str) -> tuple[StoredApplicant, list[HistoryEntry]]:
        async with self.transactions.unit() as uow:
            stored = await self.directory.find(uow, applicant_id)
            return await self._visible(uow, principal, stored)

    async def look_up(self, principal: Principal, kind: IdentityKind,
                      number: str) -> tuple[StoredApplicant, list[HistoryEntry]]:
        normalised = parse_identity_number(kind, number, self.today())
        async with self.transactions.unit() as uow:
            stored = await self.directory.find_by_number(uow, normalised, kind)
            return await self._visible(uow, principal, stored)

    async def _visible(self, uow: UnitOfWork, principal: Principal,
                       stored: StoredApplicant | None) -> tuple[StoredApplicant, list[HistoryEntry]]:
        if stored is None:
            raise ApplicantNotFound()
        return stored, await self._visible_history(uow, principal, stored)

    async def _visible_history(self, uow: UnitOfWork, principal: Principal,
                               stored: StoredApplicant) -> list[HistoryEntry]:
        """The history the caller may see of an applicant it may see; ApplicantNotFound otherwise."""
        if principal.has_any(*_STAFF):
            history = await self.directory.history(uow, stored.applicant_id, principal.jurisdictions)
            if history or may_serve(principal, stored.profile):
                return history
        if principal.has_any(Role.DEPARTMENT) and principal.department:
            routed = await self.directory.history(uow, stored.applicant_id, principal.jurisdictions,
                                                  routed_to=principal.department)
            if routed:
                return routed
        raise ApplicantNotFound()


def facts_of(profile: Profile) -> ApplicantFacts:
    """What the window knows of an applicant for the catalogue's eligibility rules. Whether a
    resident is registered unemployed or holds a disability certificate is not in the profile:
    the clerk declares it from the document shown (see CasesService.register)."""
    if isinstance(profile, Resident):
        number = ResidentIdNumber(profile.identity_number)
        return ApplicantFacts(kind="resident", birth_date=number.birth_date, sex=number.sex,
                              household_registration_code=profile.household_registration_code,
                              residence_code=profile.residence_community_code)
    return ApplicantFacts(kind="enterprise", registered_address_code=profile.registered_address_code)


def profile_extras(profile: Profile, identity_number_in_full: bool) -> dict[str, Any]:
    """Birth date and sex, which GB 11643 puts inside the number: shown to whoever sees the
    number in full, hidden (None) from everyone else."""
    if not isinstance(profile, Resident) or not identity_number_in_full:
        return {"birth_date": None, "sex": None}
    number = ResidentIdNumber(profile.identity_number)
    return {"birth_date": number.birth_date.isoformat(), "sex": number.sex}
