"""The case aggregate: every transition, and every refusal (which raises and emits nothing)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Mapping

import pytest

from civicgrid_common.calendar import WorkingCalendar
from civicgrid_common.identity.principal import Role
from civicgrid_intake.domain import case as c
from civicgrid_intake.domain.case import (
    Actor,
    Affair,
    AffairLevel,
    ApprovalOutcome,
    Case,
    CaseRuleViolation,
    CaseStatus,
    GREEN_CHANNEL_ROLES,
)
from civicgrid_intake.domain.case_number import CaseNumber
from civicgrid_intake.domain.routing import DepartmentHandles, LeadWithCoDepartments, StreetHandles

CST = timezone(timedelta(hours=8))
T0 = datetime(2025, 11, 3, 9, 30, tzinfo=CST)  # a Monday
CALENDAR = WorkingCalendar()
CLERK = Actor.of("clerk-0042", [Role.WINDOW_CLERK])
REVIEWER = Actor.of("reviewer-007", [Role.STREET_REVIEWER])
LEADER = Actor.of("leader-001", ["leader"])
APPLICANT = "app-5f2c"
STREET = "320104001"
COMMUNITY = "320104001003"
DIBAO = Affair(
    code="civil_affairs.minimum_living_allowance",
    version=3,
    time_limit_working_days=20,
    materials_required=("application_form", "household_register", "income_proof", "bank_account"),
    routing=DepartmentHandles("civil_affairs"),
    level=AffairLevel.DISTRICT,
)


def registered(materials=DIBAO.materials_required, affair: Affair = DIBAO, jurisdiction: str = COMMUNITY) -> Case:
    case = Case("case-1")
    case.register(applicant_id=APPLICANT, affair=affair, jurisdiction=jurisdiction, channel="window",
                  materials_handed_in=materials, actor=CLERK, at=T0)
    return case


def accepted(**kwargs: Any) -> Case:
    case = registered(**kwargs)
    case.accept(daily_sequence=7, calendar=CALENDAR, actor=CLERK, at=T0 + timedelta(minutes=10))
    return case


def routed() -> Case:
    case = accepted()
    case.route(actor=CLERK, at=T0 + timedelta(minutes=20))
    return case


def completed(outcome: str = "approved") -> Case:
    case = routed()
    case.complete(outcome=outcome, approval_reference="approval-01J9Z", decided_at=T0 + timedelta(days=9),
                  at=T0 + timedelta(days=9, minutes=1))
    return case


def types(case: Case) -> list[str]:
    return [e.type for e in case.pending_events]


def assert_refused(case: Case, command: Callable[[Case], Any], code: str) -> CaseRuleViolation:
    """The command raises CaseRuleViolation(code) and changes nothing at all."""
    before_events, before_version = list(case.pending_events), case.version
    before_state = {k: v for k, v in vars(case).items() if k != "_pending"}
    with pytest.raises(CaseRuleViolation) as caught:
        command(case)
    assert caught.value.code == code, str(caught.value)
    assert list(case.pending_events) == before_events and case.version == before_version
    assert {k: v for k, v in vars(case).items() if k != "_pending"} == before_state
    return caught.value


# ---------------------------------------------------------------------- register


def test_register_records_the_affair_as_the_catalogue_gave_it() -> None:
    case = registered(materials=("income_proof", "application_form"))
    assert case.status is CaseStatus.REGISTERED
    assert types(case) == [c.REGISTERED]
    data = case.pending_events[0].data
    assert data["affair_code"] == DIBAO.code and data["affair_version"] == 3
    assert data["materials_handed_in"] == ["application_form", "income_proof"]  # catalogue order
    assert data["materials_missing"] == ["household_register", "bank_account"]
    assert data["routing"] == {"kind": "department", "department": "civil_affairs"}
    assert data["jurisdiction"] == COMMUNITY and case.street_code == STREET
    assert data["actor"] == "clerk-0042"


def test_registering_twice_is_refused() -> None:
    assert_refused(registered(), lambda case: case.register(
        applicant_id=APPLICANT, affair=DIBAO, jurisdiction=COMMUNITY, channel="window",
        materials_handed_in=(), actor=CLERK, at=T0), "already_registered")


@pytest.mark.parametrize("change, code", [
    ({"jurisdiction": "320104"}, "invalid_jurisdiction"),        # a district is no case's home
    ({"jurisdiction": "32010400100a"}, "invalid_jurisdiction"),
    ({"applicant_id": ""}, "invalid_applicant_id"),
    ({"applicant_id": "王小明"}, "invalid_applicant_id"),        # names are no pseudonymous ids
    ({"channel": "carrier_pigeon"}, "invalid_registration"),
    ({"materials_handed_in": ("passport",)}, "invalid_registration"),  # not on the checklist
    ({"materials_handed_in": ("income_proof", "income_proof")}, "invalid_registration"),
    ({"at": datetime(2025, 11, 3, 9, 30)}, "invalid_time"),    # naive: whose 09:30?
    ({"affair": Affair("x", 0, 20, (), StreetHandles(), AffairLevel.STREET)}, "invalid_affair"),
    ({"affair": Affair("x", 1, 0, (), StreetHandles(), AffairLevel.STREET)}, "invalid_affair"),
    ({"affair": Affair("x y", 1, 5, (), StreetHandles(), AffairLevel.STREET)}, "invalid_affair_code"),
])
def test_bad_registrations_are_refused(change: Mapping[str, Any], code: str) -> None:
    args = dict(applicant_id=APPLICANT, affair=DIBAO, jurisdiction=COMMUNITY, channel="window",
                materials_handed_in=(), actor=CLERK, at=T0) | dict(change)
    assert_refused(Case("case-1"), lambda case: case.register(**args), code)


def test_a_street_level_case_has_no_community() -> None:
    case = registered(jurisdiction=STREET)
    assert case.street_code == STREET


# ---------------------------------------------------------------------- materials and accept


def test_missing_materials_are_told_once_and_completely() -> None:
    case = registered(materials=("bank_account",))
    assert case.missing_materials == ("application_form", "household_register", "income_proof")
    error = assert_refused(case, lambda case: case.accept(daily_sequence=1, calendar=CALENDAR, actor=CLERK, at=T0),
                           "materials_incomplete")
    # one answer names every missing item, not only the first
    for item in ("application_form", "household_register", "income_proof"):
        assert item in str(error)


def test_supplement_completes_the_materials_then_accept_works() -> None:
    case = registered(materials=("application_form",))
    case.supplement(["income_proof"], actor=CLERK, at=T0 + timedelta(days=1))
    assert case.missing_materials == ("household_register", "bank_account")
    case.supplement(["bank_account", "household_register"], actor=CLERK, at=T0 + timedelta(days=2))
    assert case.missing_materials == ()
    last = case.pending_events[-1].data
    assert last["materials_added"] == ["household_register", "bank_account"] and last["materials_missing"] == []
    receipt = case.accept(daily_sequence=3, calendar=CALENDAR, actor=CLERK, at=T0 + timedelta(days=2, hours=1))
    assert case.status is CaseStatus.ACCEPTED and receipt.case_number == "320104001202511050003"


@pytest.mark.parametrize("materials, code", [
    ([], "invalid_materials"),
    (["application_form"], "invalid_materials"),   # already handed in
    (["passport"], "invalid_materials"),           # not on the checklist
])
def test_bad_supplements_are_refused(materials: list[str], code: str) -> None:
    case = registered(materials=("application_form",))
    error = assert_refused(case, lambda case: case.supplement(materials, actor=CLERK, at=T0), code)
    assert str(error)


def test_supplement_after_acceptance_without_a_request_of_approval_is_refused() -> None:
    assert_refused(accepted(), lambda case: case.supplement(["x"], actor=CLERK, at=T0), "no_supplement_requested")
    assert_refused(completed(), lambda case: case.supplement(["x"], actor=CLERK, at=T0), "illegal_transition")


def test_accept_gives_a_case_number_and_a_receipt() -> None:
    case = registered()
    receipt = case.accept(daily_sequence=42, calendar=CALENDAR, actor=CLERK, at=T0)
    assert receipt.case_number == "320104001202511030042"
    assert CaseNumber.parse(receipt.case_number) == CaseNumber(STREET, date(2025, 11, 3), 42)
    assert receipt.affair_code == DIBAO.code and receipt.time_limit_working_days == 20
    assert receipt.due_date == date(2025, 12, 1)  # 20 working days after Monday 3 November
    assert case.receipt == receipt
    assert types(case) == [c.REGISTERED, c.ACCEPTED]


def test_case_number_date_is_the_china_date_of_acceptance() -> None:
    case = registered()
    # 23:30 UTC on 2 November is 07:30 on 3 November in Nanjing
    receipt = case.accept(daily_sequence=1, calendar=CALENDAR, actor=CLERK,
                          at=datetime(2025, 11, 2, 23, 30, tzinfo=timezone.utc))
    assert receipt.case_number[9:17] == "20251103"


@pytest.mark.parametrize("sequence", [0, -1, 10_000])
def test_accept_with_a_bad_sequence_is_refused(sequence: int) -> None:
    assert_refused(registered(), lambda case: case.accept(daily_sequence=sequence, calendar=CALENDAR,
                                                          actor=CLERK, at=T0), "invalid_case_number")


def test_accept_twice_is_refused() -> None:
    assert_refused(accepted(), lambda case: case.accept(daily_sequence=8, calendar=CALENDAR, actor=CLERK, at=T0),
                   "illegal_transition")


def test_nothing_is_possible_before_registration() -> None:
    for command in (
        lambda case: case.accept(daily_sequence=1, calendar=CALENDAR, actor=CLERK, at=T0),
        lambda case: case.refuse("no", actor=CLERK, at=T0),
        lambda case: case.route(actor=CLERK, at=T0),
        lambda case: case.supplement(["a"], actor=CLERK, at=T0),
        lambda case: case.put_on_green_channel("urgent", actor=LEADER, at=T0),
        lambda case: case.complete(outcome="approved", approval_reference="a", decided_at=T0, at=T0),
        lambda case: case.archive(actor=CLERK, at=T0),
        lambda case: case.withdraw(applicant_id=APPLICANT, at=T0),
    ):
        assert_refused(Case("case-new"), command, "not_registered")


# ---------------------------------------------------------------------- refuse at the window


def test_refuse_at_the_window_with_a_reason() -> None:
    case = registered(materials=())
    case.refuse("  applicant is registered in another street  ", actor=CLERK, at=T0)
    assert case.status is CaseStatus.REFUSED
    assert case.refusal_reason == "applicant is registered in another street"


@pytest.mark.parametrize("reason, code", [("", "reason_required"), ("   ", "reason_required"),
                                          ("x" * 501, "reason_too_long")])
def test_refusal_needs_a_reason(reason: str, code: str) -> None:
    assert_refused(registered(), lambda case: case.refuse(reason, actor=CLERK, at=T0), code)


def test_an_accepted_case_cannot_be_refused_at_the_window() -> None:
    assert_refused(accepted(), lambda case: case.refuse("changed my mind", actor=CLERK, at=T0), "illegal_transition")


def test_a_refused_case_cannot_be_accepted() -> None:
    case = registered()
    case.refuse("not eligible", actor=CLERK, at=T0)
    assert_refused(case, lambda case: case.accept(daily_sequence=1, calendar=CALENDAR, actor=CLERK, at=T0),
                   "illegal_transition")


# ---------------------------------------------------------------------- route


@pytest.mark.parametrize("routing, data", [
    (StreetHandles(), {"kind": "street"}),
    (DepartmentHandles("civil_affairs"), {"kind": "department", "department": "civil_affairs"}),
    (LeadWithCoDepartments("housing", ("urban_management", "public_security")),
     {"kind": "lead", "lead": "housing", "co_departments": ["urban_management", "public_security"]}),
])
def test_route_follows_the_affairs_routing_rule(routing, data) -> None:
    affair = Affair("housing.dangerous_repair", 1, 15, ("form",), routing, AffairLevel.DISTRICT)
    case = accepted(affair=affair, materials=("form",))
    assert case.route(actor=CLERK, at=T0) == routing
    assert case.status is CaseStatus.ROUTED
    assert case.pending_events[-1].data["routing"] == data


def test_route_before_acceptance_or_twice_is_refused() -> None:
    assert_refused(registered(), lambda case: case.route(actor=CLERK, at=T0), "illegal_transition")
    assert_refused(routed(), lambda case: case.route(actor=CLERK, at=T0), "illegal_transition")


# ---------------------------------------------------------------------- green channel


@pytest.mark.parametrize("make", [registered, accepted, routed])
@pytest.mark.parametrize("actor", [REVIEWER, LEADER, Actor.of("both", ["window_clerk", "leader"])])
def test_entitled_roles_put_an_open_case_on_the_green_channel(make, actor: Actor) -> None:
    case = make()
    case.put_on_green_channel("elderly applicant living alone, heating cut off", actor=actor, at=T0)
    assert case.green_channel
    data = case.pending_events[-1].data
    assert data["actor_role"] in GREEN_CHANNEL_ROLES and data["actor"] == actor.subject


@pytest.mark.parametrize("roles", [["window_clerk"], ["admin"], ["community_reviewer"], ["department"], []])
def test_other_roles_may_not_use_the_green_channel(roles: list[str]) -> None:
    actor = Actor.of("someone", roles)
    assert_refused(registered(), lambda case: case.put_on_green_channel("urgent", actor=actor, at=T0),
                   "not_entitled")


def test_green_channel_needs_a_reason_and_happens_once_and_not_after_completion() -> None:
    assert_refused(registered(), lambda case: case.put_on_green_channel(" ", actor=LEADER, at=T0), "reason_required")
    case = registered()
    case.put_on_green_channel("urgent", actor=LEADER, at=T0)
    assert_refused(case, lambda case: case.put_on_green_channel("again", actor=LEADER, at=T0),
                   "already_green_channel")
    assert_refused(completed(), lambda case: case.put_on_green_channel("late", actor=LEADER, at=T0),
                   "illegal_transition")


# ---------------------------------------------------------------------- withdraw


@pytest.mark.parametrize("make", [registered, accepted, routed])
def test_the_applicant_withdraws_an_open_case(make) -> None:
    case = make()
    case.withdraw(applicant_id=APPLICANT, at=T0, reason="moved to another city")
    assert case.status is CaseStatus.WITHDRAWN
    assert case.pending_events[-1].data == {"withdrawn_at": T0.isoformat(), "reason": "moved to another city"}


def test_withdraw_without_a_reason() -> None:
    case = registered()
    case.withdraw(applicant_id=APPLICANT, at=T0)
    assert "reason" not in case.pending_events[-1].data


def test_only_the_applicant_withdraws_and_not_after_completion() -> None:
    assert_refused(registered(), lambda case: case.withdraw(applicant_id="app-other", at=T0), "not_the_applicant")
    assert_refused(completed(), lambda case: case.withdraw(applicant_id=APPLICANT, at=T0), "illegal_transition")
    case = registered()
    case.refuse("not eligible", actor=CLERK, at=T0)
    assert_refused(case, lambda case: case.withdraw(applicant_id=APPLICANT, at=T0), "illegal_transition")


# ---------------------------------------------------------------------- complete, certificate, archive


@pytest.mark.parametrize("outcome", ["approved", "refused"])
def test_completion_records_the_approval_result(outcome: str) -> None:
    case = completed(outcome)
    assert case.status is CaseStatus.COMPLETED and case.outcome is ApprovalOutcome(outcome)
    assert case.approval_reference == "approval-01J9Z"


def test_completion_straight_after_acceptance() -> None:
    case = accepted()
    case.complete(outcome=ApprovalOutcome.APPROVED, approval_reference="a-1", decided_at=T0, at=T0)
    assert case.completed


def test_bad_completions_are_refused() -> None:
    assert_refused(registered(), lambda case: case.complete(
        outcome="approved", approval_reference="a-1", decided_at=T0, at=T0), "illegal_transition")
    assert_refused(completed(), lambda case: case.complete(
        outcome="approved", approval_reference="a-2", decided_at=T0, at=T0), "illegal_transition")
    assert_refused(routed(), lambda case: case.complete(
        outcome="maybe", approval_reference="a-1", decided_at=T0, at=T0), "invalid_outcome")
    assert_refused(routed(), lambda case: case.complete(
        outcome="approved", approval_reference="", decided_at=T0, at=T0), "invalid_approval_reference")


def test_certificate_only_for_an_approved_completed_case_and_once() -> None:
    case = completed()
    case.issue_certificate("CERT-2025-000123", actor=CLERK, at=T0)
    assert case.certificate_number == "CERT-2025-000123"
    assert_refused(case, lambda case: case.issue_certificate("CERT-2", actor=CLERK, at=T0),
                   "certificate_already_issued")
    assert_refused(completed("refused"), lambda case: case.issue_certificate("CERT-3", actor=CLERK, at=T0),
                   "not_approved")
    assert_refused(routed(), lambda case: case.issue_certificate("CERT-4", actor=CLERK, at=T0), "illegal_transition")


@pytest.mark.parametrize("close, final", [
    (lambda: completed(), "completed"),
    (lambda: _refused_case(), "refused"),
    (lambda: _withdrawn_case(), "withdrawn"),
])
def test_archive_a_closed_case(close, final: str) -> None:
    case = close()
    case.archive(actor=CLERK, at=T0)
    assert case.status is CaseStatus.ARCHIVED
    assert case.pending_events[-1].data["final_status"] == final
    assert_refused(case, lambda case: case.archive(actor=CLERK, at=T0), "illegal_transition")


def _refused_case() -> Case:
    case = registered()
    case.refuse("not eligible", actor=CLERK, at=T0)
    return case


def _withdrawn_case() -> Case:
    case = registered()
    case.withdraw(applicant_id=APPLICANT, at=T0)
    return case


def test_an_open_case_cannot_be_archived() -> None:
    for make in (registered, accepted, routed):
        assert_refused(make(), lambda case: case.archive(actor=CLERK, at=T0), "illegal_transition")


# ---------------------------------------------------------------------- replay


@dataclass(frozen=True)
class Stored:
    type: str
    data: Mapping[str, Any]
    version: int


def test_replaying_the_events_rebuilds_the_same_case() -> None:
    case = registered(materials=("application_form",))
    case.supplement(["household_register", "income_proof", "bank_account"], actor=CLERK, at=T0)
    case.put_on_green_channel("urgent", actor=LEADER, at=T0)
    case.accept(daily_sequence=9, calendar=CALENDAR, actor=CLERK, at=T0)
    case.route(actor=CLERK, at=T0)
    case.complete(outcome="approved", approval_reference="approval-9", decided_at=T0, at=T0)
    case.issue_certificate("CERT-1", actor=CLERK, at=T0)
    case.archive(actor=CLERK, at=T0)
    case.rate("dissatisfied", applicant_id=APPLICANT, calendar=CALENDAR, at=T0 + timedelta(days=10))
    case.record_call_back(actor=REVIEWER, at=T0 + timedelta(days=10, hours=3))
    case.close_follow_up(actor=REVIEWER, at=T0 + timedelta(days=12))
    case.rate("satisfied", applicant_id=APPLICANT, calendar=CALENDAR, at=T0 + timedelta(days=13))
    stored = [Stored(e.type, e.data, i + 1) for i, e in enumerate(case.pending_events)]
    again = Case.replay("case-1", stored)
    state = {k: v for k, v in vars(case).items() if k != "_pending"}
    assert {k: v for k, v in vars(again).items() if k != "_pending"} == state
    assert again.version == len(stored) == 13


def test_apply_refuses_an_unknown_event_type() -> None:
    with pytest.raises(ValueError, match="cannot apply"):
        Case("case-1").apply(Stored("civicgrid.intake.case.teleported.v1", {}, 1))
