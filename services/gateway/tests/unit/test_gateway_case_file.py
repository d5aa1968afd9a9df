"""The joined view of a case: its approvals as approval gave them, and what could not be had
said part by part, the case shown all the same."""
from __future__ import annotations

from civicgrid_gateway.domain.case_file import MAX_APPROVALS, Answer, approval_ids, case_file

CASE = {"id": "c-1", "status": "in_approval"}


def _listing(*rows: dict) -> Answer:
    return Answer(200, {"items": list(rows), "total": len(rows)})


def test_the_approvals_of_the_case_are_joined_with_their_verification() -> None:
    listing = _listing({"id": "a-2", "case_id": "c-1"}, {"id": "a-1", "case_id": "c-1"})
    assert approval_ids(listing, "c-1") == ["a-2", "a-1"]
    approval = Answer(200, {"id": "a-2", "moves": [{"seal": {"signature": "s"}}]})
    verified = Answer(200, {"approval_id": "a-2", "valid": True, "checks": []})
    view = case_file("c-1", CASE, listing, [("a-2", approval, verified)])
    assert view == {"case_id": "c-1", "case": CASE, "missing": [],
                    "approvals": [{"approval": approval.body, "verification": verified.body}]}


def test_a_row_of_another_case_or_beyond_the_bound_is_not_asked_for() -> None:
    rows = [{"id": f"a-{i}", "case_id": "c-1"} for i in range(MAX_APPROVALS + 5)]
    assert len(approval_ids(_listing(*rows), "c-1")) == MAX_APPROVALS
    assert approval_ids(_listing({"id": "a-9", "case_id": "c-2"}, {"case_id": "c-1"}), "c-1") == []
    assert approval_ids(Answer(503, {"title": "down"}), "c-1") == []


def test_approval_down_shows_the_case_and_says_why_the_approvals_are_missing() -> None:
    view = case_file("c-1", CASE, Answer(None, reason="its circuit is open after repeated failures"), [])
    assert view["case"] == CASE and view["approvals"] is None
    assert view["missing"] == [{"part": "approvals", "service": "approval", "status": None,
                                "detail": "the approval service is not answering "
                                          "(its circuit is open after repeated failures)"}]


def test_a_caller_approval_refuses_sees_the_case_without_its_approvals() -> None:
    view = case_file("c-1", CASE, Answer(403, {"title": "Forbidden"}), [])
    assert view["approvals"] is None
    assert view["missing"][0]["status"] == 403 and "does not show it to this caller" in view["missing"][0]["detail"]


def test_an_approval_or_a_verification_that_failed_is_named_and_the_rest_shown() -> None:
    listing = _listing({"id": "a-2", "case_id": "c-1"}, {"id": "a-1", "case_id": "c-1"})
    view = case_file("c-1", CASE, listing, [
        ("a-2", Answer(200, {"id": "a-2"}), Answer(500, {"title": "Internal Server Error"})),
        ("a-1", Answer(None, reason="it did not answer in time"), Answer(None)),
    ])
    assert view["approvals"] == [{"approval": {"id": "a-2"}, "verification": None}]
    assert [(m["part"], m["status"]) for m in view["missing"]] == [("approvals/a-2/verification", 500),
                                                                  ("approvals/a-1", None)]
    assert view["missing"][0]["detail"] == "the approval service answered 500 (Internal Server Error)"
