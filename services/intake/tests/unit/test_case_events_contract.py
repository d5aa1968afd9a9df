"""Every event the case aggregate emits validates against its schema in the real contracts/.

The scenarios below walk every transition (with each routing rule, optional fields present
and absent), so the schemas and the aggregate cannot drift apart unnoticed.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from civicgrid_common.calendar import WorkingCalendar
from civicgrid_common.contracts import Contracts, SchemaViolation
from civicgrid_common.events import NewEvent
from civicgrid_common.paths import contracts_dir
from civicgrid_intake.domain import case as c
from civicgrid_intake.domain.case import Actor, Affair, AffairLevel, Case
from civicgrid_intake.domain.routing import DepartmentHandles, LeadWithCoDepartments, Routing, StreetHandles

CONTRACTS = Contracts(contracts_dir())
CST = timezone(timedelta(hours=8))
T0 = datetime(2025, 9, 29, 9, 15, 30, 123456, tzinfo=CST)
CALENDAR = WorkingCalendar()
CLERK = Actor.of("clerk-0042", ["window_clerk"])
LEADER = Actor.of("leader-001", ["leader"])
REVIEWER = Actor.of("reviewer-7", ["street_reviewer"])
APPLICANT = "01J9ZQ7X4K8M2N3P5R6S7T8V9W"
MATERIALS = ("application_form", "household_register", "income_proof")


def affair(routing: Routing) -> Affair:
    return Affair("civil_affairs.minimum_living_allowance", 2, 20, MATERIALS, routing, AffairLevel.DISTRICT)


def registered(routing: Routing, materials=MATERIALS, jurisdiction: str = "320104001003") -> Case:
    case = Case("case-c")
    case.register(applicant_id=APPLICANT, affair=affair(routing), jurisdiction=jurisdiction, channel="window",
                  materials_handed_in=materials, actor=CLERK, at=T0)
    return case


def the_whole_life() -> Case:
    case = registered(LeadWithCoDepartments("housing", ("urban_management", "public_security")),
                      materials=("application_form",))
    case.supplement(["household_register", "income_proof"], actor=CLERK, at=T0 + timedelta(days=1))
    case.put_on_green_channel("applicant is 92 and lives alone", actor=LEADER, at=T0 + timedelta(days=1))
    case.accept(daily_sequence=12, calendar=CALENDAR, actor=CLERK, at=T0 + timedelta(days=1, hours=1))
    case.route(actor=CLERK, at=T0 + timedelta(days=1, hours=2))
    case.complete(outcome="approved", approval_reference="approval/01J9ZR", decided_at=T0 + timedelta(days=20),
                  at=T0 + timedelta(days=20, seconds=3))
    case.issue_certificate("QH-DB-2025-000123", actor=CLERK, at=T0 + timedelta(days=21))
    case.archive(actor=CLERK, at=T0 + timedelta(days=22))
    case.rate("very_dissatisfied", applicant_id=APPLICANT, calendar=CALENDAR, at=T0 + timedelta(days=22))
    case.record_call_back(actor=REVIEWER, at=T0 + timedelta(days=23))
    case.close_follow_up(actor=REVIEWER, at=T0 + timedelta(days=30))
    case.rate("satisfied", applicant_id=APPLICANT, calendar=CALENDAR, at=T0 + timedelta(days=31))
    return case


def refused_then_archived() -> Case:
    case = registered(StreetHandles(), jurisdiction="320104001")
    case.refuse("the applicant's household is registered in another street", actor=CLERK, at=T0)
    case.archive(actor=CLERK, at=T0 + timedelta(hours=1))
    return case


def withdrawn(reason: str | None) -> Case:
    case = registered(DepartmentHandles("civil_affairs"))
    case.accept(daily_sequence=1, calendar=CALENDAR, actor=CLERK, at=T0)
    case.put_on_green_channel("flood damage", actor=REVIEWER, at=T0)
    case.withdraw(applicant_id=APPLICANT, at=T0 + timedelta(days=2), reason=reason)
    case.archive(actor=CLERK, at=T0 + timedelta(days=3))
    return case


def refused_by_approval() -> Case:
    case = registered(StreetHandles())
    case.accept(daily_sequence=9999, calendar=CALENDAR, actor=CLERK, at=T0)
    case.complete(outcome="refused", approval_reference="ap-2", decided_at=T0, at=T0 + timedelta(days=5))
    case.rate("basically_satisfied", applicant_id=APPLICANT, calendar=CALENDAR, at=T0 + timedelta(days=6))
    return case


def supplemented_for_approval() -> Case:
    case = registered(DepartmentHandles("civil_affairs"))
    case.accept(daily_sequence=3, calendar=CALENDAR, actor=CLERK, at=T0)
    case.route(actor=CLERK, at=T0 + timedelta(hours=1))
    case.request_supplement(approval_reference="01J9ZR00-approval", step="street_review",
                            materials=["income_proof", "bank_statement"], comment="收入证明需加盖单位公章",
                            requested_by="reviewer-7", requested_at=T0 + timedelta(days=2), at=T0 + timedelta(days=2))
    case.supplement(["income_proof"], actor=CLERK, at=T0 + timedelta(days=3))
    case.supplement(["bank_statement"], actor=CLERK, at=T0 + timedelta(days=4))
    case.request_supplement(approval_reference="01J9ZR00-approval", step="bureau_review", materials=[],
                            comment="请补充说明家庭成员就业情况", requested_by="approver-2",
                            requested_at=T0 + timedelta(days=6), at=T0 + timedelta(days=6))
    case.supplement(["application_form"], actor=CLERK, at=T0 + timedelta(days=7))
    case.disclose_identity(department="civil_affairs", purpose="低保家庭经济状况核对",
                           actor=Actor.of("dept-civil-affairs", ["department"]), at=T0 + timedelta(days=8))
    case.disclose_contact(channel="sms", purpose="notification delivery 0b6f", actor=Actor.of("svc-notifications",
                                                                                             ["notifier"]),
                          at=T0 + timedelta(days=8))
    return case


SCENARIOS = {
    "supplemented for approval after routing": supplemented_for_approval,
    "the whole life": the_whole_life,
    "refused at the window, archived": refused_then_archived,
    "withdrawn with a reason": lambda: withdrawn("moved away"),
    "withdrawn without a reason": lambda: withdrawn(None),
    "refused by approval, rated": refused_by_approval,
}


def emitted(scenario: str) -> list[NewEvent]:
    return list(SCENARIOS[scenario]().pending_events)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_emitted_event_matches_its_schema(scenario: str) -> None:
    for event in emitted(scenario):
        # as the event store stores it: through JSON
        CONTRACTS.validate(event.type, json.loads(json.dumps(event.data)))


def test_the_scenarios_emit_every_case_event_type() -> None:
    seen = {e.type for scenario in SCENARIOS for e in emitted(scenario)}
    assert seen == set(c.EVENT_TYPES)


def test_every_case_event_type_has_a_schema_and_no_schema_is_orphaned() -> None:
    schemas = {t for t in CONTRACTS.event_types() if t.startswith("civicgrid.intake.case.")}
    assert schemas == set(c.EVENT_TYPES)


def test_the_cases_topic_carries_every_case_event_keyed_by_case() -> None:
    [topic] = [t for t in CONTRACTS.topics if t.name == "civicgrid.intake.cases"]
    assert set(topic.event_types) == set(c.EVENT_TYPES)
    assert topic.partitions == 3 and topic.replicas == 1
    assert topic.config["retention.ms"] == "-1" and topic.config["cleanup.policy"] == "delete"


@pytest.mark.parametrize("event_type, change, pointer", [
    (c.ACCEPTED, {"due_date": "in 20 working days"}, "/due_date"),
    (c.ACCEPTED, {"accepted_at": "yesterday"}, "/accepted_at"),
    (c.ACCEPTED, {"case_number": "320104001-2025"}, "/case_number"),
    (c.REGISTERED, {"id_number": "11010519491231002X"}, ""),   # closed objects: no smuggled personal data
    (c.RATED, {"level": "ok"}, "/level"),
    (c.ROUTED, {"routing": {"kind": "lead", "lead": "housing", "co_departments": []}}, "/routing"),
])
def test_schemas_catch_what_the_aggregate_must_never_emit(event_type: str, change: dict, pointer: str) -> None:
    [event] = [e for e in emitted("the whole life") if e.type == event_type][:1]
    with pytest.raises(SchemaViolation) as caught:
        CONTRACTS.validate(event_type, {**event.data, **change})
    assert pointer in [e.pointer for e in caught.value.errors]


def property_names(schema: object) -> set[str]:
    """Every property name declared anywhere in a schema (nested objects, oneOf branches)."""
    if isinstance(schema, dict):
        names = set(schema.get("properties", {})) if isinstance(schema.get("properties"), dict) else set()
        return names.union(*(property_names(v) for v in schema.values()))
    if isinstance(schema, list):
        return set().union(*(property_names(v) for v in schema))
    return set()


def test_no_case_schema_has_a_field_for_personal_data() -> None:
    personal = ("id_number", "identity", "phone", "mobile", "address", "name", "birth")
    for event_type in c.EVENT_TYPES:
        names = property_names(CONTRACTS.schema(event_type))
        assert "applicant_id" in names or event_type != c.REGISTERED
        assert not [n for n in names for p in personal if p in n], event_type
