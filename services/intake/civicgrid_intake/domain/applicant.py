"""Applicants (申请人): the residents and enterprises who come to the window.

A resident is identified by the 18-character resident identity number (GB 11643), an
enterprise by the unified social credit code (GB 32100). Checking those numbers is
identity_numbers.py's job; this module takes a number that has already passed it, with its
kind.

Personal data stays out of the event log. An applicant's stream is keyed by a
**pseudonymous applicant id**, a keyed HMAC of the identity number: the same person always
gets the same id (so the window finds their history), but without the key nobody can turn
an id back into a number or test a guessed number against it. Names, numbers and phones
live encrypted in the personal-data store (adapters/personal_data.py), which can be erased
without rewriting history.

Masking (`visibility_for`): who sees what in full, by role. A principal with several roles
sees what the most entitled of them sees.

| role               | identity number | phone  | name   | why |
| ------------------ | --------------- | ------ | ------ | --- |
| window_clerk       | full            | full   | full   | serves the applicant in person: compares the number with the ID card, calls back, prints the receipt |
| community_reviewer | masked          | full   | full   | visits and phones the household (入户调查) but decides nothing on the number itself |
| street_reviewer, bureau_approver, leader | masked | masked | full | decide on the file; the name is on the decision, the contact details are not needed |
| grid_worker        | masked          | masked | full   | knows residents by name; contact goes through the window |
| department         | masked          | masked | full   | by role only masked: a department that needs the number gets it through its own entitled disclosure, not by holding the role |
| auditor, admin     | masked          | masked | masked | check that history is intact and run the system; who the person is does not matter to them |

An enterprise's credit code is public registration data and is shown in full; its legal
representative's name is personal and follows the name column.
"""
from __future__ import annotations

import enum
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Union

from civicgrid_common.aggregate import Aggregate, applies
from civicgrid_common.identity.principal import Role

APPLICANT_REGISTERED = "civicgrid.intake.applicant.registered.v1"
APPLICANT_RELOCATED = "civicgrid.intake.applicant.relocated.v1"
APPLICANT_CONTACT_CHANNELS_SET = "civicgrid.intake.applicant.contact_channels_set.v1"

# Only the shapes: the check characters are verified by identity_numbers.py before here.
_RESIDENT_ID_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")
_CREDIT_CODE_SHAPE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_LANDLINE = re.compile(r"^0[0-9]{2,3}-?[0-9]{7,8}$")
_AREA_CODE = re.compile(r"^[0-9]{6}(?:[0-9]{3}){0,2}$")  # district, street or community
_COMMUNITY_CODE = re.compile(r"^[0-9]{12}$")
_APPLICANT_ID = re.compile(r"^ap-[0-9a-f]{32}$")
MIN_KEY_BYTES = 32
# Domain separation: the same key material used elsewhere never yields the same digest.
_PSEUDONYM_CONTEXT = b"civicgrid.intake.applicant-id.v1"


class InvalidApplicant(ValueError):
    """An applicant's data breaks a rule; `field` names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ApplicantAlreadyRegistered(ValueError):
    pass


class ApplicantKind(str, enum.Enum):
    RESIDENT = "resident"
    ENTERPRISE = "enterprise"


class IdentityKind(str, enum.Enum):
    RESIDENT_ID = "resident_id"  # 居民身份证号码, GB 11643
    CREDIT_CODE = "credit_code"  # 统一社会信用代码, GB 32100


class Evidence(str, enum.Enum):
    """The document a clerk saw that shows where the applicant is registered now."""

    HOUSEHOLD_REGISTER = "household_register"  # 户口簿, the new 户籍
    RESIDENCE_PERMIT = "residence_permit"  # 居住证
    RESIDENCE_REGISTRATION = "residence_registration"  # 居住登记 at the police station
    PROPERTY_CERTIFICATE = "property_certificate"  # 不动产权证书 of the new home
    TENANCY_REGISTRATION = "tenancy_registration"  # 房屋租赁登记备案
    BUSINESS_LICENCE = "business_licence"  # 营业执照 with the new registered address (enterprises)


@dataclass(frozen=True)
class Resident:
    identity_number: str  # already validated (identity_numbers.py)
    name: str
    phone: str | None  # mobile 1xxxxxxxxxx or landline 0xx(x)-xxxxxxx(x); some elderly have none
    household_registration_code: str  # 户籍: district, street or community code (may be elsewhere in China)
    residence_community_code: str  # where they actually live, 12 digits

    kind = ApplicantKind.RESIDENT
    identity_kind = IdentityKind.RESIDENT_ID

    def __post_init__(self) -> None:
        _shape(_RESIDENT_ID_SHAPE, self.identity_number, "identity_number",
               "17 digits and a digit or X (a validated resident identity number)")
        _name(self.name, "name")
        if self.phone is not None and not (_MOBILE.match(self.phone) or _LANDLINE.match(self.phone)):
            raise InvalidApplicant("phone", "must be a mobile number (11 digits from 13..19) or a landline 0xx-xxxxxxxx")
        _shape(_AREA_CODE, self.household_registration_code, "household_registration_code",
               "a district, street or community code (6, 9 or 12 digits)")
        _shape(_COMMUNITY_CODE, self.residence_community_code, "residence_community_code", "a 12-digit community code")

    @property
    def jurisdiction(self) -> str:
        return self.residence_community_code


@dataclass(frozen=True)
class Enterprise:
    credit_code: str  # already validated (identity_numbers.py)
    name: str
    legal_representative: str
    registered_address_code: str  # district, street or community code of the registered address

    kind = ApplicantKind.ENTERPRISE
    identity_kind = IdentityKind.CREDIT_CODE

    def __post_init__(self) -> None:
        _shape(_CREDIT_CODE_SHAPE, self.credit_code, "credit_code",
               "18 characters of GB 32100's alphabet (a validated unified social credit code)")
        _name(self.name, "name", max_length=200)
        _name(self.legal_representative, "legal_representative")
        _shape(_AREA_CODE, self.registered_address_code, "registered_address_code",
               "a district, street or community code (6, 9 or 12 digits)")

    @property
    def identity_number(self) -> str:
        return self.credit_code

    @property
    def jurisdiction(self) -> str:
        return self.registered_address_code


Profile = Union[Resident, Enterprise]


def _shape(pattern: re.Pattern[str], value: Any, field: str, expected: str) -> None:
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidApplicant(field, f"must be {expected}")


def _name(value: Any, field: str, *, max_length: int = 60) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidApplicant(field, "must not be empty")
    if value != value.strip() or len(value) > max_length or any(ord(c) < 32 for c in value):
        raise InvalidApplicant(field, f"must be at most {max_length} characters, without surrounding spaces or control characters")


# ---------------------------------------------------------------------------- pseudonymous id


def pseudonymous_applicant_id(identity_number: str, identity_kind: IdentityKind, key: bytes) -> str:
    """The applicant's id in events: HMAC-SHA256 under `key`, 128 bits, e.g. ap-3f9c...

    Deterministic (the same number always gives the same id), keyed (without the key a
    guessed number cannot be checked against an id: the numbers' space is small enough to
    enumerate, so a plain hash would not do), and the kind is part of the input so a resident
    number and a credit code can never collide.
    """
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the pseudonym key must be at least {MIN_KEY_BYTES} bytes")
    message = b"\x00".join([_PSEUDONYM_CONTEXT, identity_kind.value.encode(), identity_number.upper().encode()])
    return "ap-" + hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def applicant_id_of(profile: Profile, key: bytes) -> str:
    return pseudonymous_applicant_id(profile.identity_number, profile.identity_kind, key)


# ---------------------------------------------------------------------------- masking


@dataclass(frozen=True)
class Visibility:
    """Which personal fields a caller sees in full (True) or masked (False)."""

    identity_number: bool
    phone: bool
    name: bool

    def __or__(self, other: "Visibility") -> "Visibility":
        return Visibility(self.identity_number or other.identity_number, self.phone or other.phone,
                          self.name or other.name)


NOTHING_IN_FULL = Visibility(identity_number=False, phone=False, name=False)
_NAME_ONLY = Visibility(identity_number=False, phone=False, name=True)
# The table in the module's docstring; a role missing here sees everything masked.
ROLE_VISIBILITY: Mapping[Role, Visibility] = {
    Role.WINDOW_CLERK: Visibility(identity_number=True, phone=True, name=True),
    Role.COMMUNITY_REVIEWER: Visibility(identity_number=False, phone=True, name=True),
    Role.STREET_REVIEWER: _NAME_ONLY,
    Role.BUREAU_APPROVER: _NAME_ONLY,
    Role.LEADER: _NAME_ONLY,
    Role.GRID_WORKER: _NAME_ONLY,
    Role.DEPARTMENT: _NAME_ONLY,
    Role.AUDITOR: NOTHING_IN_FULL,
    Role.ADMIN: NOTHING_IN_FULL,
}


def visibility_for(roles: Iterable[Role]) -> Visibility:
    seen = NOTHING_IN_FULL
    for role in roles:
        seen = seen | ROLE_VISIBILITY.get(role, NOTHING_IN_FULL)
    return seen


def mask_identity_number(number: str) -> str:
    """Keep the issuing area (first 6) and the last 4; hide the birth date: 320104********123X."""
    if len(number) <= 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def is_mobile(phone: str) -> bool:
    """A mobile number (an SMS reaches it), not a landline."""
    return bool(_MOBILE.match(phone))


def mask_phone(phone: str) -> str:
    """138****5678 for a mobile; a landline keeps its area code and last two digits."""
    if _MOBILE.match(phone):
        return phone[:3] + "****" + phone[-4:]
    area, sep, local = phone.partition("-")
    if not sep:
        # Area codes 010 and 02x have three digits, all others four (e.g. 025 Nanjing, 0512).
        cut = 3 if phone[1] in "12" else 4
        area, local = phone[:cut], phone[cut:]
    return area + sep + "*" * (len(local) - 2) + local[-2:]


def mask_name(name: str) -> str:
    """Keep the first character (the surname, usually): 张三 → 张*, 欧阳娜娜 → 欧***."""
    return name[:1] + "*" * max(len(name) - 1, 1)


def present(profile: Profile, roles: Iterable[Role]) -> dict[str, Any]:
    """The profile as a caller with `roles` may see it (for API responses and the window)."""
    seen = visibility_for(roles)
    if isinstance(profile, Resident):
        return {
            "kind": profile.kind.value,
            "identity_number": profile.identity_number if seen.identity_number else mask_identity_number(profile.identity_number),
            "name": profile.name if seen.name else mask_name(profile.name),
            "phone": None if profile.phone is None else (profile.phone if seen.phone else mask_phone(profile.phone)),
            "household_registration_code": profile.household_registration_code,
            "residence_community_code": profile.residence_community_code,
        }
    return {
        "kind": profile.kind.value,
        "credit_code": profile.credit_code,  # public registration data
        "name": profile.name,  # an enterprise's name is public too
        "legal_representative": profile.legal_representative if seen.name else mask_name(profile.legal_representative),
        "registered_address_code": profile.registered_address_code,
    }


# ---------------------------------------------------------------------------- the aggregate


class Applicant(Aggregate):
    """An applicant's stream: pseudonymous id, kind and jurisdiction, no personal data."""

    stream_type = "applicant"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.kind: ApplicantKind | None = None
        self.jurisdiction: str | None = None

    @property
    def registered(self) -> bool:
        return self.kind is not None

    def register(self, kind: ApplicantKind, jurisdiction: str) -> None:
        if not _APPLICANT_ID.match(self.id):
            raise InvalidApplicant("applicant_id", "must be a pseudonymous applicant id (ap- and 32 hex digits)")
        if self.registered:
            raise ApplicantAlreadyRegistered(f"applicant {self.id} is already registered")
        _shape(_AREA_CODE, jurisdiction, "jurisdiction", "a district, street or community code (6, 9 or 12 digits)")
        self._emit(APPLICANT_REGISTERED, {"applicant_id": self.id, "kind": ApplicantKind(kind).value,
                                          "jurisdiction": jurisdiction})

    def relocate(self, jurisdiction: str, *, evidence: Evidence, actor: str, at: datetime) -> None:
        """The applicant now lives (or is registered) at `jurisdiction`, as `evidence` shows; an
        audited fact of its own, never a side effect of a registration."""
        if not self.registered:
            raise InvalidApplicant("applicant_id", "only a registered applicant is relocated")
        _shape(_AREA_CODE, jurisdiction, "jurisdiction", "a district, street or community code (6, 9 or 12 digits)")
        if at.tzinfo is None:
            raise InvalidApplicant("relocated_at", "must be a timezone-aware instant")
        self._emit(APPLICANT_RELOCATED, {"applicant_id": self.id, "jurisdiction": jurisdiction,
                                         "previous_jurisdiction": self.jurisdiction,
                                         "evidence": Evidence(evidence).value, "relocated_at": at.isoformat(),
                                         "actor": actor})

    def set_contact_channels(self, channels: Iterable[str], *, email_on_record: bool, wechat_on_record: bool,
                             actor: str, at: datetime) -> None:
        """The applicant chose how to be told about their cases (contact_channels.py). The event
        says which channels, and whether an email and an openid are on record; never them."""
        if not self.registered:
            raise InvalidApplicant("applicant_id", "only a registered applicant chooses how to be told")
        if at.tzinfo is None:
            raise InvalidApplicant("set_at", "must be a timezone-aware instant")
        self._emit(APPLICANT_CONTACT_CHANNELS_SET, {
            "applicant_id": self.id, "channels": [str(c) for c in channels],
            "email_on_record": email_on_record, "wechat_on_record": wechat_on_record,
            "set_at": at.isoformat(), "actor": actor})

    @applies(APPLICANT_REGISTERED)
    def _applicant_registered(self, d: Mapping[str, Any]) -> None:
        self.kind = ApplicantKind(d["kind"])
        self.jurisdiction = d["jurisdiction"]

    @applies(APPLICANT_RELOCATED)
    def _applicant_relocated(self, d: Mapping[str, Any]) -> None:
        self.jurisdiction = d["jurisdiction"]

    @applies(APPLICANT_CONTACT_CHANNELS_SET)
    def _contact_channels_set(self, d: Mapping[str, Any]) -> None:
        pass  # the choice is the directory's; the stream keeps when and by whom it was made

def register_applicant(profile: Profile, pseudonym_key: bytes) -> Applicant:
    """A new applicant's stream for a validated profile (the profile itself goes to the
    encrypted personal-data store, not into the event)."""
    applicant = Applicant(applicant_id_of(profile, pseudonym_key))
    applicant.register(profile.kind, profile.jurisdiction)
    return applicant
