"""Applicants (pure): shape checks, the keyed pseudonymous id, masking by role, and the
registered event, which carries no personal data and validates against its contract."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import pytest
from civicgrid_common.contracts import Contracts
from civicgrid_common.identity.principal import Role
from civicgrid_common.paths import contracts_dir

from civicgrid_intake.domain.applicant import (
    APPLICANT_REGISTERED,
    Applicant,
    ApplicantAlreadyRegistered,
    ApplicantKind,
    Enterprise,
    IdentityKind,
    InvalidApplicant,
    Resident,
    applicant_id_of,
    mask_identity_number,
    mask_name,
    mask_phone,
    present,
    pseudonymous_applicant_id,
    register_applicant,
    visibility_for,
)

CONTRACTS = Contracts(contracts_dir())
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NUMBER = "11010519491231002X"  # GB 11643's worked example
CREDIT_CODE = "91320104MA1MXXXX5K"


def a_resident(**overrides: Any) -> Resident:
    fields: dict[str, Any] = dict(identity_number=NUMBER, name="张小梅", phone="13851234567",
                                  household_registration_code="320104001001",
                                  residence_community_code="320104001002")
    fields.update(overrides)
    return Resident(**fields)


def an_enterprise(**overrides: Any) -> Enterprise:
    fields: dict[str, Any] = dict(credit_code=CREDIT_CODE, name="南京淮海路小吃店",
                                  legal_representative="李建国", registered_address_code="320104001")
    fields.update(overrides)
    return Enterprise(**fields)


# ---------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("overrides, field", [
    ({"identity_number": "11010519491231002x"}, "identity_number"),  # lower-case x: normalise first
    ({"identity_number": "1101051949123100"}, "identity_number"),
    ({"name": ""}, "name"),
    ({"name": " 张小梅"}, "name"),
    ({"phone": "12851234567"}, "phone"),
    ({"phone": "138 5123 4567"}, "phone"),
    ({"household_registration_code": "32010"}, "household_registration_code"),
    ({"residence_community_code": "320104001"}, "residence_community_code"),
])
def test_a_resident_with_bad_data_is_refused_naming_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(InvalidApplicant) as raised:
        a_resident(**overrides)
    assert raised.value.field == field


@pytest.mark.parametrize("overrides, field", [
    ({"credit_code": "91320104MA1MXXXX5I"}, "credit_code"),  # I is not in GB 32100's alphabet
    ({"legal_representative": ""}, "legal_representative"),
    ({"registered_address_code": "3201040010"}, "registered_address_code"),
])
def test_an_enterprise_with_bad_data_is_refused_naming_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(InvalidApplicant) as raised:
        an_enterprise(**overrides)
    assert raised.value.field == field


def test_phones_may_be_mobile_landline_or_absent() -> None:
    assert a_resident(phone="025-84561234").phone == "025-84561234"
    assert a_resident(phone=None).phone is None


# ---------------------------------------------------------------------------- pseudonymous id


def test_the_same_number_always_gets_the_same_id() -> None:
    first = pseudonymous_applicant_id(NUMBER, IdentityKind.RESIDENT_ID, KEY)
    assert first == applicant_id_of(a_resident(name="张三", phone=None), KEY)
    assert first.startswith("ap-") and len(first) == 35


def test_the_id_depends_on_the_key_number_and_kind_and_hides_the_number() -> None:
    ids = {
        pseudonymous_applicant_id(NUMBER, IdentityKind.RESIDENT_ID, KEY),
        pseudonymous_applicant_id(NUMBER, IdentityKind.RESIDENT_ID, OTHER_KEY),
        pseudonymous_applicant_id("110105194912310010", IdentityKind.RESIDENT_ID, KEY),
        pseudonymous_applicant_id(NUMBER, IdentityKind.CREDIT_CODE, KEY),
    }
    assert len(ids) == 4
    assert all(NUMBER not in i and NUMBER[6:14] not in i for i in ids)


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        pseudonymous_applicant_id(NUMBER, IdentityKind.RESIDENT_ID, b"secret")


# ---------------------------------------------------------------------------- masking


def test_masks() -> None:
    assert mask_identity_number(NUMBER) == "110105********002X"
    assert mask_phone("13851234567") == "138****4567"
    assert mask_phone("025-84561234") == "025-******34"
    assert mask_phone("051284561234") == "0512******34"
    assert mask_phone("01084561234") == "010******34"
    assert mask_name("张小梅") == "张**"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("张") == "张*"


@pytest.mark.parametrize("roles, identity_number, phone, name", [
    ({Role.WINDOW_CLERK}, NUMBER, "13851234567", "张小梅"),
    ({Role.COMMUNITY_REVIEWER}, "110105********002X", "13851234567", "张小梅"),
    ({Role.STREET_REVIEWER}, "110105********002X", "138****4567", "张小梅"),
    ({Role.LEADER}, "110105********002X", "138****4567", "张小梅"),
    ({Role.DEPARTMENT}, "110105********002X", "138****4567", "张小梅"),
    ({Role.AUDITOR}, "110105********002X", "138****4567", "张**"),
    ({Role.ADMIN}, "110105********002X", "138****4567", "张**"),
    (set(), "110105********002X", "138****4567", "张**"),
    ({Role.AUDITOR, Role.WINDOW_CLERK}, NUMBER, "13851234567", "张小梅"),  # the most entitled role counts
])
def test_what_each_role_sees_of_a_resident(roles: set, identity_number: str, phone: str, name: str) -> None:
    shown = present(a_resident(), roles)
    assert (shown["identity_number"], shown["phone"], shown["name"]) == (identity_number, phone, name)


def test_every_role_has_a_decided_visibility() -> None:
    # A role added later must be placed in the table on purpose; until then it sees masks.
    assert visibility_for([Role.WINDOW_CLERK]).identity_number
    assert not any(visibility_for([r]).identity_number for r in Role if r is not Role.WINDOW_CLERK)


def test_an_enterprise_shows_its_credit_code_but_masks_its_representative_to_auditors() -> None:
    shown = present(an_enterprise(), {Role.AUDITOR})
    assert shown["credit_code"] == CREDIT_CODE and shown["legal_representative"] == "李**"
    assert present(an_enterprise(), {Role.STREET_REVIEWER})["legal_representative"] == "李建国"


# ---------------------------------------------------------------------------- the aggregate


@dataclass(frozen=True)
class Recorded:
    version: int
    type: str
    data: Mapping[str, Any]


def test_registering_emits_only_the_pseudonymous_id_kind_and_jurisdiction() -> None:
    resident = a_resident()
    applicant = register_applicant(resident, KEY)
    [event] = applicant.pending_events
    CONTRACTS.validate(event.type, event.data)
    assert event.type == APPLICANT_REGISTERED
    assert event.data == {"applicant_id": applicant_id_of(resident, KEY), "kind": "resident",
                          "jurisdiction": "320104001002"}
    text = json.dumps(event.data, ensure_ascii=False) + json.dumps(dict(event.metadata))
    for secret in (resident.identity_number, resident.name, resident.phone):
        assert secret not in text


def test_an_enterprise_registers_in_its_registered_address() -> None:
    applicant = register_applicant(an_enterprise(), KEY)
    [event] = applicant.pending_events
    CONTRACTS.validate(event.type, event.data)
    assert event.data["kind"] == "enterprise" and event.data["jurisdiction"] == "320104001"
    assert CREDIT_CODE not in json.dumps(event.data)


def test_registered_once_and_replayed() -> None:
    applicant = register_applicant(a_resident(), KEY)
    with pytest.raises(ApplicantAlreadyRegistered):
        applicant.register(ApplicantKind.RESIDENT, "320104001002")
    replayed = Applicant.replay(applicant.id, [Recorded(1, e.type, e.data) for e in applicant.pending_events])
    assert (replayed.kind, replayed.jurisdiction, replayed.version) == (ApplicantKind.RESIDENT, "320104001002", 1)


@pytest.mark.parametrize("applicant_id, jurisdiction, field", [
    (NUMBER, "320104001002", "applicant_id"),  # a raw number must never become a stream id
    ("ap-" + "0" * 32, "3201", "jurisdiction"),
])
def test_bad_registrations_are_refused(applicant_id: str, jurisdiction: str, field: str) -> None:
    applicant = Applicant(applicant_id)
    with pytest.raises(InvalidApplicant) as raised:
        applicant.register(ApplicantKind.RESIDENT, jurisdiction)
    assert raised.value.field == field and applicant.pending_events == ()
