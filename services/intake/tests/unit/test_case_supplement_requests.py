"""Supplements after routing (补办): approval asks, the window tells the applicant once and
completely, the clerk hands in what was asked; pure domain, no I/O."""
from __future__ import annotations

from datetime import timedelta

import pytest

from civicgrid_intake.domain import case as c
from civicgrid_intake.domain.case import Case, CaseRuleViolation, CaseStatus

from test_case_lifecycle import CLERK, T0, accepted, completed, registered, routed

APPROVAL = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"


def ask(case: Case, materials=("income_proof", "bank_account"), comment="收入证明需加盖单位公章",
        step="street_review", approval=APPROVAL, days: int = 2) -> Case:
    case.request_supplement(approval_reference=approval, step=step, materials=list(materials), comment=comment,
                            requested_by="reviewer-007", requested_at=T0 + timedelta(days=days),
                            at=T0 + timedelta(days=days, seconds=1))
    return case


def test_a_request_on_a_routed_case_says_everything_that_is_missing_at_once() -> None:
    case = ask(routed())
    assert case.awaiting_supplement
    assert case.missing_materials == ("income_proof", "bank_account")
    assert case.status is CaseStatus.ROUTED
    [event] = [e for e in case.pending_events if e.type == c.SUPPLEMENT_REQUESTED]
    assert event.data["materials_requested"] == ["income_proof", "bank_account"]
    assert event.data["approval_reference"] == APPROVAL and event.data["step"] == "street_review"


def test_the_clerk_hands_in_part_then_the_rest_and_the_request_is_answered() -> None:
    case = ask(routed())
    case.supplement(["bank_account"], actor=CLERK, at=T0 + timedelta(days=3))
    assert case.awaiting_supplement and case.missing_materials == ("income_proof",)
    case.supplement(["income_proof"], actor=CLERK, at=T0 + timedelta(days=4))
    assert not case.awaiting_supplement and case.missing_materials == ()
    supplements = [e.data for e in case.pending_events if e.type == c.SUPPLEMENTED]
    assert [s["materials_missing"] for s in supplements] == [["income_proof"], []]
    assert {s["approval_reference"] for s in supplements} == {APPROVAL}
    assert case.supplement_request is not None and case.supplement_request.answered_at == T0 + timedelta(days=4)
    # answered: another supplement needs another request
    with pytest.raises(CaseRuleViolation) as caught:
        case.supplement(["income_proof"], actor=CLERK, at=T0 + timedelta(days=5))
    assert caught.value.code == "no_supplement_requested"


def test_a_comment_only_request_is_answered_by_any_material_of_the_affair() -> None:
    case = ask(routed(), materials=())
    assert case.awaiting_supplement and case.missing_materials == ()
    with pytest.raises(CaseRuleViolation) as caught:
        case.supplement(["passport"], actor=CLERK, at=T0 + timedelta(days=3))
    assert caught.value.code == "invalid_materials"
    case.supplement(["application_form"], actor=CLERK, at=T0 + timedelta(days=3))
    assert not case.awaiting_supplement


@pytest.mark.parametrize("materials, code", [
    (["passport"], "invalid_materials"),           # not asked for
    (["income_proof", "income_proof"], "invalid_materials"),
    ([], "invalid_materials"),
    (["bad code!"], "invalid_materials"),
])
def test_supplements_the_request_does_not_ask_for_are_refused(materials, code) -> None:
    case = ask(routed())
    before = len(case.pending_events)
    with pytest.raises(CaseRuleViolation) as caught:
        case.supplement(materials, actor=CLERK, at=T0 + timedelta(days=3))
    assert caught.value.code == code and len(case.pending_events) == before


def test_handing_in_the_same_material_twice_for_a_request_is_refused() -> None:
    case = ask(routed())
    case.supplement(["income_proof"], actor=CLERK, at=T0 + timedelta(days=3))
    with pytest.raises(CaseRuleViolation) as caught:
        case.supplement(["income_proof"], actor=CLERK, at=T0 + timedelta(days=3))
    assert caught.value.code == "invalid_materials"


def test_a_newer_request_replaces_an_open_one() -> None:
    case = ask(routed())
    case.supplement(["income_proof"], actor=CLERK, at=T0 + timedelta(days=3))
    ask(case, materials=("household_register",), step="bureau_review", days=5)
    assert case.missing_materials == ("household_register",)
    assert case.supplement_request is not None and case.supplement_request.step == "bureau_review"


@pytest.mark.parametrize("make, code", [
    (registered, "illegal_transition"),      # approval cannot ask before acceptance
    (completed, "illegal_transition"),
])
def test_requests_outside_accepted_or_routed_are_refused(make, code) -> None:
    with pytest.raises(CaseRuleViolation) as caught:
        ask(make())
    assert caught.value.code == code


@pytest.mark.parametrize("change, code", [
    ({"comment": "  "}, "invalid_comment"),
    ({"comment": "x" * 2001}, "invalid_comment"),
    ({"materials": ("a", "a")}, "invalid_materials"),
    ({"step": "Street Review"}, "invalid_step"),
    ({"approval": "no spaces allowed"}, "invalid_approval_reference"),
])
def test_bad_requests_are_refused(change, code) -> None:
    with pytest.raises(CaseRuleViolation) as caught:
        ask(routed(), **change)
    assert caught.value.code == code


def test_completion_while_a_request_is_open_ends_the_wait() -> None:
    case = ask(accepted())
    case.complete(outcome="refused", approval_reference=APPROVAL, decided_at=T0 + timedelta(days=9),
                  at=T0 + timedelta(days=9))
    assert not case.awaiting_supplement and case.missing_materials == ()
    assert case.concluded_by(APPROVAL) and not case.concluded_by("another-approval")


def test_replay_rebuilds_the_request_and_its_answers() -> None:
    case = ask(routed())
    case.supplement(["income_proof"], actor=CLERK, at=T0 + timedelta(days=3))

    class Stored:
        def __init__(self, version, event):
            self.version, self.type, self.data = version, event.type, event.data

    again = Case.replay(case.id, [Stored(i, e) for i, e in enumerate(case.pending_events, start=1)])
    assert again.supplement_request == case.supplement_request
    assert again.missing_materials == ("bank_account",)
