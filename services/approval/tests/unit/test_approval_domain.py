"""The Approval aggregate: every action at every kind of step, who may act, seals, archive."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from civicgrid_common.contracts import Contracts
from civicgrid_common.identity.principal import Role

from civicgrid_approval.domain.approval import (
    ACTED, CONCLUDED, STARTED, SUPPLEMENT_REQUESTED, Approval, ApprovalRuleViolation, RuleKind, Status,
    archive_digest, department_task_type,
)
from civicgrid_approval.domain.seals import canonical_decision, signature_valid

from approval_builders import (
    CAL, COMMUNITY, FINANCE, HOUSING, LEADER_COMMUNITY, STREET, T0,
    BUREAU, CIVIL_SYSTEM, KEYS, act, advance_to, started, who,
)

CONTRACTS = Contracts(Path(__file__).resolve().parents[4] / "contracts")
STEPS = ["community_review", "income_check", "co_opinions", "bureau_decision"]


def types(a: Approval) -> list[str]:
    return [e.type for e in a.pending_events]


def valid_events(a: Approval) -> None:
    for e in a.pending_events:
        CONTRACTS.validate(e.type, e.data)


# ------------------------------------------------------------------ the matrix

# What each action does at each step of the matrix definition: "next" moves on, "same" stays
# on the task, "concluded:<outcome>", "suspended", or a refusal code.
EXPECTED = {
    ("community_review", "approve"): "next",
    ("community_review", "escalate"): "same",
    ("community_review", "request_supplement"): "suspended",
    ("community_review", "extend"): "same",
    ("community_review", "refuse"): "concluded:refused",
    ("community_review", "send_back"): "first-step",
    ("income_check", "approve"): "next",
    ("income_check", "escalate"): "action-not-allowed",
    ("income_check", "request_supplement"): "action-not-allowed",
    ("income_check", "extend"): "action-not-allowed",
    ("income_check", "refuse"): "concluded:refused",
    ("income_check", "send_back"): "action-not-allowed",
    ("co_opinions", "approve"): "same",  # one branch of two has given its opinion
    ("co_opinions", "escalate"): "same",
    ("co_opinions", "request_supplement"): "suspended",
    ("co_opinions", "extend"): "same",
    ("co_opinions", "refuse"): "same",  # a co-department's disagreement is an opinion, not the end
    ("co_opinions", "send_back"): "previous",
    ("bureau_decision", "approve"): "concluded:approved",
    ("bureau_decision", "escalate"): "same",
    ("bureau_decision", "request_supplement"): "suspended",
    ("bureau_decision", "extend"): "same",
    ("bureau_decision", "refuse"): "concluded:refused",
    ("bureau_decision", "send_back"): "previous",
}


@pytest.mark.parametrize("step,action", sorted(EXPECTED))
def test_every_action_at_every_kind_of_step(step, action):
    a = started()
    advance_to(a, step)
    a.mark_saved()
    index, entry = a.index, a.entry
    expected = EXPECTED[(step, action)]
    kw = {}
    if action == "extend":
        # Three days on: within every step's extension limit (the shortest step's 3 working days).
        kw["new_due_date"] = date.fromisoformat(a.due_date) + timedelta(days=3)
    if action in ("escalate", "request_supplement", "extend", "send_back") and step == "co_opinions":
        kw["branch"] = None
    if ":" not in expected and expected not in ("next", "same", "suspended", "previous"):
        with pytest.raises(ApprovalRuleViolation) as err:
            act(a, action=action, **kw)
        assert err.value.code == expected
        assert a.pending_events == ()
        return
    act(a, action=action, **kw)
    valid_events(a)
    move = next(e for e in a.pending_events if e.type == ACTED)
    assert move.data["action"] == action and move.data["from_step"] == step
    assert move.data["actor"] and move.data["comment"] and move.data["acted_at"]
    if expected == "next":
        assert a.index == index + 1 and a.entry == entry + 1 and move.data["to_step"] == STEPS[index + 1]
    elif expected == "previous":
        assert a.index == index - 1 and move.data["to_step"] == STEPS[index - 1]
    elif expected == "same":
        assert a.index == index and a.entry == entry and move.data["to_step"] == step
    elif expected == "suspended":
        assert a.status is Status.SUSPENDED
        assert SUPPLEMENT_REQUESTED in types(a)
    else:
        outcome = expected.split(":")[1]
        assert a.status is Status(outcome)
        concluded = a.pending_events[-1]
        assert concluded.type == CONCLUDED and concluded.data["outcome"] == outcome
        assert concluded.data["final_seal"]["signature"] == move.data["seal"]["signature"]
        assert concluded.data["archive_digest"] == archive_digest(a.archive_record())


# ------------------------------------------------------------------ the whole path


def test_the_whole_path_with_every_kind_of_step_concludes_approved_with_a_sealed_archive():
    a = started()
    assert a.pending_events[0].type == STARTED and a.path == STEPS
    advance_to(a, "bureau_decision")
    act(a)
    assert a.status is Status.APPROVED
    valid_events(a)
    assert department_task_type("civil_affairs") in types(a)
    archive = a.archive_record()
    assert [m["step"] for m in archive["moves"]] == ["community_review", "income_check", "co_opinions",
                                                      "co_opinions", "bureau_decision"]
    assert archive["outcome"] == "approved"


def test_a_street_case_skips_community_steps():
    a = started(jurisdiction=STREET)
    assert a.path == STEPS[1:]
    assert a.step.id == "income_check"


def test_a_parallel_step_completes_when_every_branch_gave_its_opinion():
    a = started()
    advance_to(a, "co_opinions")
    act(a, (FINANCE, "finance"))
    assert a.step.id == "co_opinions" and a.pending_branches() == ["housing"]
    with pytest.raises(ApprovalRuleViolation) as err:
        act(a, (FINANCE, "finance"))
    assert err.value.code == "opinion-given"
    act(a, (HOUSING, "housing"), action="refuse")
    assert a.step.id == "bureau_decision"


def test_a_branch_opinion_by_another_department_is_forbidden():
    a = started()
    advance_to(a, "co_opinions")
    with pytest.raises(ApprovalRuleViolation) as err:
        act(a, (HOUSING, "finance"))
    assert err.value.kind is RuleKind.FORBIDDEN


def test_approve_with_finish_concludes_only_where_the_step_may_finish():
    a = started()
    with pytest.raises(ApprovalRuleViolation) as err:
        act(a, finish=True)
    assert err.value.code == "may-not-finish"


# ------------------------------------------------------------------ who may act


@pytest.mark.parametrize("principal,code", [
    (who(Role.COMMUNITY_REVIEWER, "320104001002"), "outside-jurisdiction"),
    (who(Role.STREET_REVIEWER, STREET), "not-entitled"),
    (who(Role.WINDOW_CLERK, COMMUNITY), "not-entitled"),
    (who(Role.DEPARTMENT, "320104", department="public_security"), "not-entitled"),
])
def test_wrong_role_or_jurisdiction_at_a_community_step(principal, code):
    a = started()
    with pytest.raises(ApprovalRuleViolation) as err:
        act(a, (principal, None))
    assert err.value.kind is RuleKind.FORBIDDEN and err.value.code == code
    assert a.version == 1


def test_a_bureau_step_needs_that_department():
    a = started()
    advance_to(a, "bureau_decision")
    with pytest.raises(ApprovalRuleViolation) as err:
        act(a, (who(Role.BUREAU_APPROVER, "320104", department="housing"), None))
    assert err.value.code == "other-department"


def test_a_department_step_is_answered_by_that_department_system_only():
    a = started()
    advance_to(a, "income_check")
    with pytest.raises(ApprovalRuleViolation):
        act(a, (BUREAU, None))
    act(a, (CIVIL_SYSTEM, None))
    assert a.step.id == "co_opinions"


def test_escalated_tasks_are_for_a_leader_of_the_same_scope():
    a = started()
    act(a, action="escalate")
    with pytest.raises(ApprovalRuleViolation) as err:
        act(a)
    assert err.value.code == "not-entitled"
    with pytest.raises(ApprovalRuleViolation) as err:
        act(a, (who(Role.LEADER, "320104001002"), None))
    assert err.value.code == "outside-jurisdiction"
    with pytest.raises(ApprovalRuleViolation) as err:
        act(a, (LEADER_COMMUNITY, None), action="escalate")
    assert err.value.code == "already-escalated"
    act(a, (LEADER_COMMUNITY, None))
    assert a.step.id == "income_check"
    assert not a.escalated


# ------------------------------------------------------------------ rules of the actions


def test_a_stale_task_is_refused():
    a = started()
    act(a, task="community_review.1")
    with pytest.raises(ApprovalRuleViolation) as err:
        act(a, task="community_review.1")
    assert err.value.kind is RuleKind.CONFLICT and err.value.code == "task-not-current"


def test_extend_needs_a_later_date_and_is_limited_per_step():
    a = started()
    due = date.fromisoformat(a.due_date)
    for bad in (None, due):
        with pytest.raises(ApprovalRuleViolation) as err:
            act(a, action="extend", new_due_date=bad)
        assert err.value.kind is RuleKind.INVALID
    act(a, action="extend", new_due_date=due + timedelta(days=5))
    assert a.due_date == (due + timedelta(days=5)).isoformat()
    with pytest.raises(ApprovalRuleViolation) as err:
        act(a, action="extend", new_due_date=due + timedelta(days=9))
    assert err.value.code == "extensions-used"


def test_a_supplement_stops_the_clock_until_resumed_with_the_days_that_were_left():
    a = started()
    act(a, action="request_supplement", materials=["household_register"], now=T0 + timedelta(days=1))
    request = next(e for e in a.pending_events if e.type == SUPPLEMENT_REQUESTED)
    assert request.data["materials"] == ["household_register"]
    with pytest.raises(ApprovalRuleViolation) as err:
        act(a)
    assert err.value.code == "waiting-for-supplement"
    resumed_at = T0 + timedelta(days=14)
    assert a.resume(now=resumed_at, calendar=CAL, actor="intake")
    assert a.status is Status.RUNNING
    assert a.due_date == CAL.add_working_days(resumed_at, 4).isoformat()
    assert not a.resume(now=resumed_at, calendar=CAL, actor="intake")


def test_a_comment_is_required():
    a = started()
    with pytest.raises(ApprovalRuleViolation) as err:
        act(a, comment=" ")
    assert err.value.code == "comment-required"


def test_nothing_happens_after_the_conclusion():
    a = started()
    act(a, action="refuse")
    for action in ("approve", "refuse", "extend"):
        with pytest.raises(ApprovalRuleViolation) as err:
            act(a, action=action)
        assert err.value.code == "concluded"
    assert not a.cancel("withdrawn", now=T0, actor="intake")


def test_warnings_and_overdue_fire_once_for_the_current_task_only():
    a = started()
    assert not a.warn("community_review.2", now=T0)
    assert a.warn("community_review.1", now=T0)
    assert not a.warn("community_review.1", now=T0)
    assert a.mark_overdue("community_review.1", now=T0)
    act(a)
    assert not a.mark_overdue("community_review.1", now=T0)
    valid_events(a)


def test_withdrawal_cancels_a_running_approval():
    a = started()
    assert a.cancel("applicant withdrew", now=T0, actor="intake")
    assert a.status is Status.CANCELLED


def test_green_channel_once():
    a = started()
    assert a.prioritise("急难", now=T0, actor="street")
    assert not a.prioritise("again", now=T0, actor="street")


# ------------------------------------------------------------------ seals


def test_seals_chain_and_verify():
    a = started()
    advance_to(a, "bureau_decision")
    act(a)
    previous = None
    for m in a.moves:
        s = m["seal"]
        assert s["decision"]["previous"] == previous
        assert s["decision"]["approval_id"] == a.id and s["decision"]["step"] == m["step"]
        assert signature_valid(KEYS[m["actor"]].public_key(), s["decision"], s["signature"])
        previous = s["signature"]
    forged = dict(a.moves[0]["seal"]["decision"], outcome="refused")
    assert not signature_valid(KEYS[a.moves[0]["actor"]].public_key(), forged, a.moves[0]["seal"]["signature"])


def test_a_decision_has_exactly_its_fields():
    with pytest.raises(ValueError):
        canonical_decision({"approval_id": "x"})


def test_replay_rebuilds_the_same_state():
    from civicgrid_common.events import StoredEvent
    from datetime import datetime, timezone
    from uuid import uuid4

    a = started()
    advance_to(a, "bureau_decision")
    stored = [StoredEvent(id=uuid4(), stream_id=a.id, stream_type="approval", version=i + 1, position=i + 1,
                          type=e.type, data=e.data, metadata={}, recorded_at=datetime.now(timezone.utc),
                          hash="", prev_hash=None) for i, e in enumerate(a.pending_events)]
    b = Approval.replay(a.id, stored)
    assert (b.task, b.status, b.due_date, b.last_signature) == (a.task, a.status, a.due_date, a.last_signature)
    assert b.archive_record() == a.archive_record()


def test_an_access_application_runs_on_the_same_engine_and_publishes_its_decision():
    from civicgrid_approval.domain.approval import ACCESS_DECIDED
    from civicgrid_approval.domain.seed import seed_definitions

    d = next(d for d in seed_definitions() if d.affair_code == "access.application")
    application = {"department": "market_regulation", "title": "食品安全宣传牌", "purpose": "每个社区设置宣传牌",
                   "work_kind": "signboard", "documents": [{"name": "通知.pdf", "sha256": "a" * 64}],
                   "communities": [COMMUNITY], "cost_bearer": "区市场监管局", "valid_from": "2026-03-01",
                   "valid_until": "2026-12-31"}
    from civicgrid_approval.domain.approval import Subject, approval_id_for
    a = Approval(approval_id_for("access-1"))
    a.start(Subject("0190f6a2-1b2c-7d3e-8f40-5a6b7c8d9e10", None, "access.application", "320104", {"kind": "access"},
                    application=application), d, 1, now=T0, calendar=CAL, actor="market_regulation")
    office = who(Role.BUREAU_APPROVER, "320104", department="community_office")
    act(a, (office, None))
    with pytest.raises(ApprovalRuleViolation):
        act(a, (who(Role.BUREAU_APPROVER, "320104", department="district_office"), None))
    act(a, (who(Role.LEADER, "320104", department="district_office"), None))
    decided = a.pending_events[-1]
    assert decided.type == ACCESS_DECIDED and decided.data["outcome"] == "approved"
    assert decided.data["application"]["communities"] == [COMMUNITY]
    assert CONCLUDED not in types(a)
    valid_events(a)
