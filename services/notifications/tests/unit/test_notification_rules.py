"""Notification rules: conditions on event data, recipients, parsing that names every member at
fault, and the district's RuleBook: versions, idempotent sets, references to its templates,
replay."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import pytest

from civicgrid_common.identity.principal import Role
from civicgrid_common.problems import Refusal

from civicgrid_notifications.domain import rules as rules_module
from civicgrid_notifications.domain.rules import (
    RULE_REMOVED,
    RULE_SET,
    TEMPLATE_SET,
    BookFull,
    Condition,
    ConditionOp,
    Recipient,
    RecipientKind,
    Rule,
    RuleBook,
    RuleNotFound,
    RuleRejected,
    parse_rule,
)
from civicgrid_notifications.domain.templates import Channel, TemplateRejected

T0 = datetime(2026, 3, 4, 10, 0, tzinfo=timezone.utc)
BOOK = RuleBook.stream_for("320104")
ADMIN = "admin-320104"

ACCEPTED = {
    "id": "0195f3a2-7c1e-7d3a-9b1a-2f4c5d6e7f80",
    "type": "civicgrid.intake.case.accepted.v1",
    "subject": "case-20260304-0001",
    "time": "2026-03-04T10:00:00Z",
    "data": {"case_number": "320104202603040000001", "due_date": "2026-03-18", "priority": "urgent",
             "green_channel": True, "location": {"street": "320104001", "community": "320104001001"}},
}

TEMPLATE = {
    "name": "case.accepted",
    "variants": {"zh-CN": {
        "in_app": {"title": "事项已受理", "body": "您的事项已受理，受理号 {{ case_number }}，预计 {{ due_date }} 办结。"},
        "sms": {"sign_name": "玄武区政务", "template_code": "SMS_123456789",
                "params": {"case_number": "{{ case_number }}", "due_date": "{{ due_date }}"}},
    }},
}


def a_rule(**changes: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "case.accepted.applicant",
        "event_type": "civicgrid.intake.case.accepted.v1",
        "description": "受理后告知申请人受理号和办结时限",
        "conditions": [{"field": "location.community", "op": "in", "value": ["320104001001", "320104001002"]}],
        "recipients": [{"kind": "applicant"},
                       {"kind": "role", "role": "community_reviewer", "jurisdiction_field": "location.community"}],
        "channels": ["in_app", "sms"],
        "template": "case.accepted",
    }
    rule.update(changes)
    return rule


def errors_of(raw: Any) -> dict[str, str]:
    with pytest.raises(RuleRejected) as caught:
        parse_rule(raw)
    assert caught.value.refusal is Refusal.INVALID
    return {e["pointer"]: e["detail"] for e in caught.value.errors}


@dataclass(frozen=True)
class Stored:
    type: str
    data: Mapping[str, Any]
    version: int


def replayed(book: RuleBook) -> RuleBook:
    """The book rebuilt from its own events after a JSON round trip, as the store gives them back."""
    stored = [Stored(e.type, json.loads(json.dumps(e.data)), i) for i, e in enumerate(book.pending_events, start=1)]
    return RuleBook.replay(book.id, stored)


def book_with_template() -> RuleBook:
    book = RuleBook(BOOK)
    assert book.set_template(TEMPLATE, [ACCEPTED], by=ADMIN, at=T0)
    return book


# ---------------------------------------------------------------------------- conditions


DATA = {"priority": "urgent", "level": 2, "green_channel": True, "note": None,
        "location": {"street": "320104001", "community": "320104001001"}}


@pytest.mark.parametrize(("field", "op", "value", "holds"), [
    ("priority", ConditionOp.EQUALS, "urgent", True),
    ("priority", ConditionOp.EQUALS, "normal", False),
    ("location.community", ConditionOp.EQUALS, "320104001001", True),
    ("location.grid", ConditionOp.EQUALS, "320104001001001", False),  # a missing path equals nothing
    ("priority.level", ConditionOp.EQUALS, "x", False),  # through a scalar: not there
    ("level", ConditionOp.EQUALS, 2.0, True),  # 2 is 2.0 in JSON
    ("green_channel", ConditionOp.EQUALS, 1, False),  # true is not 1
    ("level", ConditionOp.EQUALS, "2", False),  # "2" is not 2
    ("priority", ConditionOp.NOT_EQUALS, "normal", True),
    ("priority", ConditionOp.NOT_EQUALS, "urgent", False),
    ("location.grid", ConditionOp.NOT_EQUALS, "x", True),  # absent: not equal
    ("location.street", ConditionOp.IN, ("320104001", "320104002"), True),
    ("location.street", ConditionOp.IN, ("320104002",), False),
    ("location.grid", ConditionOp.IN, ("320104002",), False),
    ("location.community", ConditionOp.PRESENT, None, True),
    ("location.grid", ConditionOp.PRESENT, None, False),
    ("note", ConditionOp.PRESENT, None, False),  # null is not present
    ("note", ConditionOp.ABSENT, None, True),
    ("location.grid", ConditionOp.ABSENT, None, True),
    ("location", ConditionOp.ABSENT, None, False),
])
def test_conditions_on_dotted_paths(field: str, op: ConditionOp, value: Any, holds: bool) -> None:
    assert Condition(field, op, value).holds(DATA) is holds


def test_a_rule_matches_its_type_when_enabled_and_every_condition_holds() -> None:
    rule = parse_rule(a_rule(conditions=[{"field": "priority", "op": "equals", "value": "urgent"},
                                         {"field": "location.community", "op": "present"}]))
    assert rule.matches("civicgrid.intake.case.accepted.v1", DATA)
    assert not rule.matches("civicgrid.intake.case.refused.v1", DATA)
    assert not rule.matches("civicgrid.intake.case.accepted.v1", {**DATA, "priority": "normal"})
    assert not rule.matches("civicgrid.intake.case.accepted.v1", {"priority": "urgent"})
    assert not parse_rule(a_rule(enabled=False, conditions=[])).matches("civicgrid.intake.case.accepted.v1", DATA)


# ---------------------------------------------------------------------------- parsing


def test_a_rule_is_parsed_with_its_defaults_and_round_trips() -> None:
    rule = parse_rule(a_rule(recipients=[{"kind": "grid_workers"}, {"kind": "user", "subject": "u-42"},
                                         {"kind": "department", "department": "civil_affairs"},
                                         {"kind": "role", "role": "street_reviewer", "jurisdiction": "320104001"}]))
    assert rule.enabled and not rule.urgent and not rule.digest
    assert rule.channels == (Channel.IN_APP, Channel.SMS)
    assert rule.conditions == (Condition("location.community", ConditionOp.IN, ("320104001001", "320104001002")),)
    assert rule.recipients[0] == Recipient(RecipientKind.GRID_WORKERS, grid_field="grid")
    assert rule.recipients[3] == Recipient(RecipientKind.ROLE, role=Role.STREET_REVIEWER, jurisdiction="320104001")
    stored = json.loads(json.dumps(rule.to_dict()))
    assert parse_rule(stored) == rule
    assert Rule.from_dict(stored) == rule
    assert stored["recipients"][0] == {"kind": "grid_workers", "grid_field": "grid"}


def test_recipients_resolve_their_scope_from_the_event() -> None:
    data = {"grid": "320104001001001", "location": {"community": "320104001001"}, "unit": "public_security"}
    assert Recipient(RecipientKind.ROLE, role=Role.COMMUNITY_REVIEWER,
                     jurisdiction_field="location.community").scope(data) == "320104001001"
    assert Recipient(RecipientKind.ROLE, role=Role.LEADER, jurisdiction="320104").scope(data) == "320104"
    assert Recipient(RecipientKind.GRID_WORKERS, grid_field="grid").scope(data) == "320104001001001"
    assert Recipient(RecipientKind.GRID_WORKERS, grid_field="location.grid").scope(data) is None
    assert Recipient(RecipientKind.DEPARTMENT, department_field="unit").scope(data) == "public_security"
    assert Recipient(RecipientKind.APPLICANT).scope(data) is None


@pytest.mark.parametrize(("recipient", "pointer"), [
    ({"kind": "applicant", "role": "leader"}, "#/recipients/0/role"),
    ({"kind": "user", "subject": "u-1", "department": "civil_affairs"}, "#/recipients/0/department"),
    ({"kind": "grid_workers", "jurisdiction": "320104"}, "#/recipients/0/jurisdiction"),
    ({"kind": "department", "department": "civil_affairs", "grid_field": "grid"}, "#/recipients/0/grid_field"),
    ({"kind": "role", "role": "leader", "jurisdiction": "320104", "subject": "u-1"}, "#/recipients/0/subject"),
])
def test_each_recipient_kind_refuses_the_parameters_of_another(recipient: dict[str, Any], pointer: str) -> None:
    errors = errors_of(a_rule(recipients=[recipient]))
    assert list(errors) == [pointer]
    assert "not a member of" in errors[pointer] and recipient["kind"] in errors[pointer]


@pytest.mark.parametrize(("recipient", "pointer", "words"), [
    ({"kind": "role", "role": "mayor", "jurisdiction": "320104"}, "#/recipients/0/role", "community_reviewer"),
    ({"kind": "role", "role": "leader"}, "#/recipients/0/jurisdiction", "required"),
    ({"kind": "role", "role": "leader", "jurisdiction": "3201"}, "#/recipients/0/jurisdiction", "4 digits"),
    ({"kind": "role", "role": "leader", "jurisdiction": "320104", "jurisdiction_field": "street"},
     "#/recipients/0/jurisdiction_field", "not both"),
    ({"kind": "grid_workers", "grid_field": "Grid Code"}, "#/recipients/0/grid_field", "dotted path"),
    ({"kind": "department"}, "#/recipients/0/department", "required"),
    ({"kind": "department", "department": "Civil Affairs"}, "#/recipients/0/department", "department code"),
    ({"kind": "user", "subject": ""}, "#/recipients/0/subject", "token subject"),
    ({"kind": "user", "subject": "u" * 201}, "#/recipients/0/subject", "200"),
    ({"kind": "everyone"}, "#/recipients/0/kind", "applicant"),
])
def test_recipient_parameters_are_checked(recipient: dict[str, Any], pointer: str, words: str) -> None:
    errors = errors_of(a_rule(recipients=[recipient]))
    assert words in errors[pointer]


def test_every_problem_of_a_rule_is_refused_together() -> None:
    errors = errors_of(a_rule(
        id="Case Accepted", event_type="intake.case.accepted", template="",
        conditions=[{"field": "priority", "op": "matches", "value": "x"},
                    {"field": "priority", "op": "in", "value": ["a", {"b": 1}]},
                    {"field": "priority", "op": "present", "value": "x"},
                    {"field": "priority", "op": "equals"}],
        recipients=[{"kind": "applicant"}, {"kind": "role", "role": "boss", "jurisdiction": "320104"},
                    {"kind": "applicant"}],
        channels=["in_app", "fax", "in_app"], urgent=True, digest=True, enabled="yes", colour="red"))
    assert set(errors) == {
        "#/id", "#/event_type", "#/template", "#/conditions/0/op", "#/conditions/1/value/1", "#/conditions/2/value",
        "#/conditions/3/value", "#/recipients/1/role", "#/recipients/2", "#/channels/1", "#/channels/2",
        "#/digest", "#/enabled", "#/colour",
    }
    assert "listed twice" in errors["#/channels/2"] and "named twice" in errors["#/recipients/2"]


def test_bounds_of_a_rule() -> None:
    too_many = [{"field": "priority", "op": "present"}] * 11
    assert "0 to 10" in errors_of(a_rule(conditions=too_many))["#/conditions"]
    assert "1 to 10" in errors_of(a_rule(recipients=[]))["#/recipients"]
    assert "required" in errors_of({k: v for k, v in a_rule().items() if k != "channels"})["#/channels"]
    in_51 = [{"field": "priority", "op": "in", "value": [str(i) for i in range(51)]}]
    assert "1 to 50" in errors_of(a_rule(conditions=in_51))["#/conditions/0/value"]
    assert "500" in errors_of(a_rule(description="说明" * 251))["#/description"]
    assert "dotted path" in errors_of(a_rule(conditions=[{"field": "a" * 101, "op": "present"}]))[
        "#/conditions/0/field"]
    assert errors_of(["not", "a", "rule"]) == {"#": "a rule is an object"}


# ---------------------------------------------------------------------------- the rule book


def test_a_rule_set_changed_and_removed_has_versions() -> None:
    book = book_with_template()
    assert book.set_rule(a_rule(), by=ADMIN, at=T0 + timedelta(minutes=1))
    assert book.rules["case.accepted.applicant"][1] == 1
    assert book.set_rule(a_rule(urgent=True), by=ADMIN, at=T0 + timedelta(minutes=2))
    rule, version = book.rules["case.accepted.applicant"]
    assert version == 2 and rule.urgent
    book.remove_rule("case.accepted.applicant", by=ADMIN, at=T0 + timedelta(minutes=3))
    assert book.rules == {}
    assert book.set_rule(a_rule(), by=ADMIN, at=T0 + timedelta(minutes=4))  # versions go on after a removal
    assert book.rules["case.accepted.applicant"][1] == 4

    events = book.pending_events
    assert [e.type for e in events] == [TEMPLATE_SET, RULE_SET, RULE_SET, RULE_REMOVED, RULE_SET]
    assert [e.data["version"] for e in events] == [1, 1, 2, 3, 4]
    assert events[1].data == {"district": "320104", "rule": parse_rule(a_rule()).to_dict(), "version": 1,
                              "by": ADMIN, "at": "2026-03-04T10:01:00+00:00"}
    assert events[3].data == {"district": "320104", "rule_id": "case.accepted.applicant", "version": 3,
                              "by": ADMIN, "at": "2026-03-04T10:03:00+00:00"}
    assert book.version == 5


def test_setting_the_same_rule_again_emits_nothing() -> None:
    book = book_with_template()
    assert book.set_rule(a_rule(), by=ADMIN, at=T0)
    shuffled = a_rule()
    shuffled = {k: shuffled[k] for k in reversed(list(shuffled))}  # member order does not matter
    assert book.set_rule(copy.deepcopy(shuffled), by="another-admin", at=T0 + timedelta(hours=1)) is False
    assert len(book.pending_events) == 2 and book.rules["case.accepted.applicant"][1] == 1
    # true is not 1: a changed value is a change
    assert book.set_rule(a_rule(conditions=[{"field": "green_channel", "op": "equals", "value": True}]),
                         by=ADMIN, at=T0)
    assert book.set_rule(a_rule(conditions=[{"field": "green_channel", "op": "equals", "value": 1}]),
                         by=ADMIN, at=T0)
    assert book.rules["case.accepted.applicant"][1] == 3


def test_a_rule_needs_its_template_in_the_book_with_its_channels() -> None:
    empty = RuleBook(BOOK)
    with pytest.raises(RuleRejected) as caught:
        empty.set_rule(a_rule(), by=ADMIN, at=T0)
    assert caught.value.code == "unknown_template"
    assert [e["pointer"] for e in caught.value.errors] == ["#/template"]
    book = book_with_template()
    with pytest.raises(RuleRejected) as caught:
        book.set_rule(a_rule(channels=["in_app", "wechat", "webhook", "email"]), by=ADMIN, at=T0)
    assert [e["pointer"] for e in caught.value.errors] == ["#/channels/1", "#/channels/3"]  # webhooks need no text
    assert empty.pending_events == () and len(book.pending_events) == 1


def test_an_unknown_rule_cannot_be_removed() -> None:
    book = book_with_template()
    with pytest.raises(RuleNotFound) as caught:
        book.remove_rule("no.such.rule", by=ADMIN, at=T0)
    assert caught.value.refusal is Refusal.NOT_FOUND and caught.value.problem().status == 404
    assert len(book.pending_events) == 1


def test_templates_have_versions_and_keep_the_channels_rules_use() -> None:
    book = book_with_template()
    assert book.set_template(copy.deepcopy(TEMPLATE), [ACCEPTED], by=ADMIN, at=T0) is False
    changed = copy.deepcopy(TEMPLATE)
    changed["variants"]["zh-CN"]["in_app"]["title"] = "您的事项已受理"
    assert book.set_template(changed, [ACCEPTED], by=ADMIN, at=T0)
    template, version = book.templates["case.accepted"]
    assert version == 2 and template.render("in_app", ACCEPTED).fields["title"] == "您的事项已受理"
    assert book.pending_events[-1].data["template"] == template.to_dict()

    book.set_rule(a_rule(), by=ADMIN, at=T0)
    without_sms = copy.deepcopy(changed)
    del without_sms["variants"]["zh-CN"]["sms"]
    with pytest.raises(TemplateRejected) as caught:
        book.set_template(without_sms, [ACCEPTED], by=ADMIN, at=T0)
    assert caught.value.code == "template_in_use"
    assert [e["pointer"] for e in caught.value.errors] == ["#/variants/zh-CN/sms"]
    # an invalid template is refused before anything else, naming its fields
    broken = copy.deepcopy(changed)
    broken["variants"]["zh-CN"]["sms"]["params"]["case_number"] = "{{ case_no }}"
    with pytest.raises(TemplateRejected) as caught:
        book.set_template(broken, [ACCEPTED], by=ADMIN, at=T0)
    assert "'case_no' is undefined" in caught.value.errors[0]["detail"]
    assert len(book.pending_events) == 3


def test_matching_rules_in_id_order() -> None:
    book = book_with_template()
    book.set_rule(a_rule(id="z.urgent", conditions=[{"field": "priority", "op": "equals", "value": "urgent"}]),
                  by=ADMIN, at=T0)
    book.set_rule(a_rule(id="a.all", conditions=[]), by=ADMIN, at=T0)
    book.set_rule(a_rule(id="m.off", conditions=[], enabled=False), by=ADMIN, at=T0)
    book.set_rule(a_rule(id="b.refused", event_type="civicgrid.intake.case.refused.v1", conditions=[]),
                  by=ADMIN, at=T0)
    data = ACCEPTED["data"]
    assert [r.id for r in book.matching("civicgrid.intake.case.accepted.v1", data)] == ["a.all", "z.urgent"]
    assert [r.id for r in book.matching("civicgrid.intake.case.accepted.v1", {**data, "priority": "normal"})] \
        == ["a.all"]
    assert list(book.rules) == ["a.all", "b.refused", "m.off", "z.urgent"]


def test_replay_gives_the_same_state() -> None:
    book = book_with_template()
    book.set_rule(a_rule(), by=ADMIN, at=T0)
    book.set_rule(a_rule(id="grid.incident", event_type="civicgrid.grid.incident.reported.v1", urgent=True,
                         recipients=[{"kind": "grid_workers"}], conditions=[]), by=ADMIN, at=T0)
    book.set_rule(a_rule(digest=True), by=ADMIN, at=T0)
    book.remove_rule("grid.incident", by=ADMIN, at=T0)
    again = replayed(book)
    assert again.version == book.version == 5
    assert again.district == "320104"
    assert dict(again.rules) == dict(book.rules)
    assert dict(again.templates) == dict(book.templates)
    # and it decides as the original would: the removed rule goes on from its last version
    assert again.set_rule(a_rule(id="grid.incident", conditions=[]), by=ADMIN, at=T0)
    assert again.rules["grid.incident"][1] == 3
    assert again.set_rule(a_rule(digest=True), by=ADMIN, at=T0) is False


def test_a_book_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules_module, "MAX_RULES", 2)
    monkeypatch.setattr(rules_module, "MAX_TEMPLATES", 1)
    book = book_with_template()
    book.set_rule(a_rule(id="r1"), by=ADMIN, at=T0)
    book.set_rule(a_rule(id="r2"), by=ADMIN, at=T0)
    with pytest.raises(BookFull) as caught:
        book.set_rule(a_rule(id="r3"), by=ADMIN, at=T0)
    assert caught.value.field == "id" and caught.value.problem().status == 409
    assert book.set_rule(a_rule(id="r2", urgent=True), by=ADMIN, at=T0)  # changing one is fine
    with pytest.raises(BookFull) as caught:
        book.set_template({**copy.deepcopy(TEMPLATE), "name": "other"}, [ACCEPTED], by=ADMIN, at=T0)
    assert caught.value.field == "name"


def test_stream_ids_and_instants() -> None:
    assert RuleBook.stream_for("320104") == "rule-book:320104"
    with pytest.raises(ValueError):
        RuleBook.stream_for("320104001")  # a street, not a district
    with pytest.raises(ValueError):
        book_with_template().set_rule(a_rule(), by=ADMIN, at=datetime(2026, 3, 4, 10, 0))  # naive
    with pytest.raises(ValueError):
        RuleBook("something-else").set_rule(a_rule(), by=ADMIN, at=T0)


def test_the_book_knows_who_changed_each_rule_and_template_last() -> None:
    book = book_with_template()
    assert book.changed_by("template", "case.accepted") == ADMIN
    assert book.changed_by("rule", "case.accepted.applicant") is None  # never set
    book.set_rule(a_rule(), by="system:notifications-seed", at=T0)
    assert book.changed_by("rule", "case.accepted.applicant") == "system:notifications-seed"
    book.set_rule(a_rule(urgent=True), by=ADMIN, at=T0)
    assert book.changed_by("rule", "case.accepted.applicant") == ADMIN
    book.set_rule(a_rule(urgent=True), by="someone-else", at=T0)  # unchanged: not a change by anyone
    assert book.changed_by("rule", "case.accepted.applicant") == ADMIN
    book.remove_rule("case.accepted.applicant", by="admin-2", at=T0)
    assert book.changed_by("rule", "case.accepted.applicant") == "admin-2"  # a removal is a change too
    assert replayed(book).changed_by("rule", "case.accepted.applicant") == "admin-2"
