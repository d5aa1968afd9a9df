"""Rating on the five levels of the good/bad review scheme; a bad review's follow-up."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from civicgrid_common.calendar import WorkingCalendar
from civicgrid_intake.domain import case as c
from civicgrid_intake.domain.case import Actor, Affair, AffairLevel, Case, CaseRuleViolation
from civicgrid_intake.domain.rating import DEFAULT_FIX_WORKING_DAYS, FollowUpPolicy, RatingLevel
from civicgrid_intake.domain.routing import StreetHandles

CST = timezone(timedelta(hours=8))
CALENDAR = WorkingCalendar()
CLERK = Actor.of("clerk-1", ["window_clerk"])
REVIEWER = Actor.of("reviewer-1", ["street_reviewer"])
APPLICANT = "app-77"
T0 = datetime(2025, 9, 1, 9, 0, tzinfo=CST)
RATED_AT = datetime(2025, 9, 30, 17, 0, tzinfo=CST)  # the eve of National Day 2025


def case_in(state: str) -> Case:
    case = Case("case-r")
    affair = Affair("elderly.care_file", 2, 10, (), StreetHandles(), AffairLevel.STREET)
    case.register(applicant_id=APPLICANT, affair=affair, jurisdiction="320104001002", channel="web",
                  materials_handed_in=(), actor=CLERK, at=T0)
    if state == "registered":
        return case
    case.accept(daily_sequence=1, calendar=CALENDAR, actor=CLERK, at=T0)
    if state == "accepted":
        return case
    case.complete(outcome="approved", approval_reference="ap-1", decided_at=T0, at=T0 + timedelta(days=3))
    if state == "archived":
        case.archive(actor=CLERK, at=T0 + timedelta(days=4))
    return case


def rate(case: Case, level: str, at: datetime = RATED_AT, **kwargs) -> None:
    case.rate(level, applicant_id=APPLICANT, calendar=CALENDAR, at=at, **kwargs)


def refused_code(case: Case, command) -> str:
    version = case.version
    with pytest.raises(CaseRuleViolation) as caught:
        command(case)
    assert case.version == version  # nothing emitted
    return caught.value.code


def test_the_five_levels_and_which_are_bad() -> None:
    assert [r.value for r in RatingLevel] == [
        "very_satisfied", "satisfied", "basically_satisfied", "dissatisfied", "very_dissatisfied"]
    assert [r.is_bad_review for r in RatingLevel] == [False, False, False, True, True]


@pytest.mark.parametrize("level", ["very_satisfied", "satisfied", "basically_satisfied"])
def test_a_good_review_is_recorded_and_opens_nothing(level: str) -> None:
    case = case_in("completed")
    rate(case, level)
    assert [e.type for e in case.pending_events][-1] == c.RATED
    assert case.pending_events[-1].data == {"level": level, "round": 1, "bad_review": False,
                                            "rated_at": RATED_AT.isoformat()}
    assert case.follow_up is None
    assert refused_code(case, lambda case: rate(case, "satisfied")) == "already_rated"


@pytest.mark.parametrize("level", ["dissatisfied", "very_dissatisfied"])
def test_a_bad_review_opens_a_follow_up_across_the_holiday(level: str) -> None:
    case = case_in("completed")
    rate(case, level)
    assert [e.type for e in case.pending_events][-2:] == [c.RATED, c.FOLLOW_UP_OPENED]
    opened = case.pending_events[-1].data
    # call back within 1 working day: the holiday runs to 8 October
    assert opened["call_back_due"] == "2025-10-09"
    # 15 working days, Saturday 11 October (swapped) included
    assert opened["fix_due"] == "2025-10-28" and opened["fix_working_days"] == DEFAULT_FIX_WORKING_DAYS == 15


def test_the_fix_deadline_is_configurable() -> None:
    case = case_in("completed")
    rate(case, "dissatisfied", policy=FollowUpPolicy(fix_working_days=7))
    assert case.follow_up is not None and case.follow_up.fix_due == date(2025, 10, 16)  # 9, 10, 11 (Sat), 13-16 October


@pytest.mark.parametrize("days", [0, 61])
def test_an_unreasonable_fix_deadline_is_refused(days: int) -> None:
    with pytest.raises(ValueError):
        FollowUpPolicy(fix_working_days=days)


def test_call_back_close_and_rate_again() -> None:
    case = case_in("completed")
    rate(case, "very_dissatisfied")
    # the second rating waits for the follow-up
    assert refused_code(case, lambda case: rate(case, "satisfied")) == "follow_up_open"
    assert refused_code(case, lambda case: case.close_follow_up(actor=REVIEWER, at=RATED_AT)) == "not_called_back"
    case.record_call_back(actor=REVIEWER, at=datetime(2025, 10, 9, 11, 0, tzinfo=CST))
    assert case.pending_events[-1].data["on_time"] is True
    assert refused_code(case, lambda case: case.record_call_back(actor=REVIEWER, at=RATED_AT)) == "already_called_back"
    case.close_follow_up(actor=REVIEWER, at=datetime(2025, 10, 29, 10, 0, tzinfo=CST))
    assert case.pending_events[-1].data["fixed_on_time"] is False  # due 28 October
    rate(case, "basically_satisfied", at=datetime(2025, 10, 30, 10, 0, tzinfo=CST))
    assert case.pending_events[-1].data["round"] == 2
    assert case.ratings == [RatingLevel.VERY_DISSATISFIED, RatingLevel.BASICALLY_SATISFIED]
    assert refused_code(case, lambda case: rate(case, "satisfied")) == "already_rated"
    assert refused_code(case, lambda case: case.record_call_back(actor=REVIEWER, at=RATED_AT)) == "follow_up_closed"


def test_a_late_call_back_is_recorded_as_late() -> None:
    case = case_in("completed")
    rate(case, "dissatisfied")
    case.record_call_back(actor=REVIEWER, at=datetime(2025, 10, 10, 9, 0, tzinfo=CST))
    assert case.pending_events[-1].data["on_time"] is False


def test_a_second_bad_rating_opens_no_second_follow_up() -> None:
    case = case_in("completed")
    rate(case, "dissatisfied")
    case.record_call_back(actor=REVIEWER, at=RATED_AT)
    case.close_follow_up(actor=REVIEWER, at=RATED_AT + timedelta(days=1))
    rate(case, "very_dissatisfied", at=RATED_AT + timedelta(days=2))
    assert case.pending_events[-1].type == c.RATED and case.pending_events[-1].data["bad_review"] is True


def test_rating_an_archived_case_is_allowed() -> None:
    case = case_in("archived")
    rate(case, "satisfied")
    assert case.ratings == [RatingLevel.SATISFIED]


@pytest.mark.parametrize("state", ["registered", "accepted"])
def test_rating_only_after_completion(state: str) -> None:
    assert refused_code(case_in(state), lambda case: rate(case, "satisfied")) == "not_completed"


def test_rating_by_someone_else_or_with_an_unknown_level_is_refused() -> None:
    case = case_in("completed")
    assert refused_code(case, lambda case: case.rate("satisfied", applicant_id="app-other", calendar=CALENDAR,
                                                     at=RATED_AT)) == "not_the_applicant"
    assert refused_code(case, lambda case: rate(case, "meh")) == "invalid_rating"
    assert refused_code(case, lambda case: rate(case, "satisfied", at=datetime(2025, 9, 30))) == "invalid_time"


def test_follow_up_commands_without_a_bad_review_are_refused() -> None:
    case = case_in("completed")
    rate(case, "satisfied")
    assert refused_code(case, lambda case: case.record_call_back(actor=REVIEWER, at=RATED_AT)) == "no_follow_up"
    assert refused_code(case, lambda case: case.close_follow_up(actor=REVIEWER, at=RATED_AT)) == "no_follow_up"
