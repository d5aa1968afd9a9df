"""The demo district's seeded rule book, built as the seeding builds it (pure): every step of a
workflow is told to its level's people whatever the workflow calls it, when the case reaches it
(started there, passed on or sent back), when its deadline nears and when it is overdue."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from civicgrid_common.identity.principal import Role

from civicgrid_notifications.domain.facts import remembered, shown
from civicgrid_notifications.domain.rules import RuleBook
from civicgrid_notifications.domain.seed import sample_events, seed_document

T0 = datetime(2026, 3, 4, 10, 0, tzinfo=timezone.utc)
STARTED = "civicgrid.approval.approval.started.v1"
ACTED = "civicgrid.approval.approval.acted.v1"
WARNED = "civicgrid.approval.approval.deadline_warned.v1"
OVERDUE = "civicgrid.approval.approval.overdue.v1"
LEVEL_ROLE = {"community": Role.COMMUNITY_REVIEWER, "street": Role.STREET_REVIEWER, "bureau": Role.BUREAU_APPROVER}
# A workflow whose step ids are none of the usual ones (labour.guaranteed_loan_first_review starts
# at the street; others end in district_approval, street_decision, ...).
DEFINITION = {"affair_code": "civil.test", "name_zh": "测试事项", "steps": [
    {"id": "office_review", "name_zh": "街道办初审", "level": "street"},
    {"id": "residents_check", "level": "community"},
    {"id": "district_approval", "name_zh": "区级审批", "level": "bureau"}]}


@pytest.fixture(scope="module")
def book() -> RuleBook:
    document, samples = seed_document(), sample_events()
    book = RuleBook(RuleBook.stream_for("320104"))
    for t in document["templates"]:
        raw = {k: v for k, v in t.items() if k not in ("name", "event_types")}
        book.set_template({**raw, "name": t["name"]}, [s for e in t["event_types"] for s in samples[e]],
                          by="system:notifications-seed", at=T0)
    for r in document["rules"]:
        book.set_rule(r, by="system:notifications-seed", at=T0)
    return book


def told(book: RuleBook, event_type: str, data: dict) -> dict[Role, str]:
    """Who the rules tell of an approval event of the case above, with the templates they use."""
    facts = remembered(STARTED, {"jurisdiction": "320104001001", "case_number": "QH-1", "definition": DEFINITION})
    scoped = {**data, "about": shown(data, facts)}
    return {Role(rec.role): rule.template for rule in book.matching(event_type, scoped) for rec in rule.recipients
            if rec.kind == "role"}


@pytest.mark.parametrize("step,level", [("office_review", "street"), ("residents_check", "community"),
                                        ("district_approval", "bureau")])
def test_each_steps_deadline_and_overdue_reach_its_levels_people(book, step, level):
    assert told(book, WARNED, {"case_id": "c", "step": step, "due_date": "2026-03-09"}) == {
        LEVEL_ROLE[level]: "reviewer-deadline"}
    assert told(book, OVERDUE, {"case_id": "c", "step": step, "due_date": "2026-03-09"}) == {
        LEVEL_ROLE[level]: "reviewer-deadline"}


def test_a_case_that_starts_at_the_street_tells_the_streets_reviewers(book):
    assert told(book, STARTED, {"case_id": "c", "step": "office_review", "jurisdiction": "320104001001",
                                "green_channel": False}) == {Role.STREET_REVIEWER: "reviewer-new-item"}


@pytest.mark.parametrize("outcome,to_step,role", [("approved", "residents_check", Role.COMMUNITY_REVIEWER),
                                                  ("approved", "district_approval", Role.BUREAU_APPROVER),
                                                  ("sent_back", "office_review", Role.STREET_REVIEWER)])
def test_a_case_passed_on_or_sent_back_tells_the_people_of_the_step_it_reaches(book, outcome, to_step, role):
    assert told(book, ACTED, {"case_id": "c", "step": "x", "to_step": to_step, "outcome": outcome}) == {
        role: "reviewer-step-reached"}


def test_an_action_that_moves_nothing_tells_no_one(book):
    assert told(book, ACTED, {"case_id": "c", "step": "office_review", "to_step": "office_review",
                              "outcome": "extended"}) == {}
    assert told(book, ACTED, {"case_id": "c", "step": "district_approval", "to_step": None,
                              "outcome": "approved"}) == {}  # concluded: the applicant is told by intake's event


def test_the_reviewers_messages_name_the_affair_and_the_step_not_their_codes(book):
    template, _ = book.templates["reviewer-step-reached"]
    [sample] = [s for s in sample_events()[ACTED] if s["data"]["outcome"] == "approved"]
    body = template.render("in_app", sample).fields["body"]
    assert body == "最低生活保障申请 已转入“街道审核”环节，请于 2026-03-13 前办理。"
    new_item, _ = book.templates["reviewer-new-item"]
    [first, *_] = sample_events()[STARTED]
    assert new_item.render("in_app", first).fields["body"] == "最低生活保障申请 进入“社区初审”环节，请于 2026-03-09 前办理。"
    [back] = [s for s in sample_events()[ACTED] if s["data"]["outcome"] == "sent_back"]
    assert template.render("in_app", back).fields["body"] == \
        "事项 已退回“社区初审”环节。退回意见：请补充入户调查记录"  # no affair remembered: the word for it


def test_a_step_escalated_tells_the_leaders_who_alone_may_act_on_it_now(book):
    escalated = {"case_id": "c", "step": "office_review", "to_step": "office_review", "outcome": "escalated",
                 "comment": "收入认定有争议"}
    assert told(book, ACTED, escalated) == {Role.LEADER: "leader-escalated"}
    template, _ = book.templates["leader-escalated"]
    [sample] = [s for s in sample_events()[ACTED] if s["data"]["outcome"] == "escalated"]
    assert template.render("in_app", sample).fields["body"] == \
        "最低生活保障申请 “街道审核”环节已报领导，请审批。报请意见：家庭收入认定有争议，请领导定夺"
