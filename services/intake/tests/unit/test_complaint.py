"""The complaint aggregate (pure): deadlines, transitions, facts for the KPIs, and every
emitted event against its schema in the real contracts/ folder."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from civicgrid_common.calendar import CHINA_TZ, WorkingCalendar
from civicgrid_common.contracts import Contracts
from civicgrid_common.paths import contracts_dir

from civicgrid_intake.domain import complaint as c
from civicgrid_intake.domain.complaint import (
    Category,
    Channel,
    Complaint,
    ComplaintError,
    GeoPoint,
    Location,
    Rating,
    State,
    Urgency,
)
from civicgrid_intake.domain.routing import DepartmentHandles, LeadWithCoDepartments, StreetHandles

CAL = WorkingCalendar()
CONTRACTS = Contracts(contracts_dir())
# Tuesday 2025-09-30, the last working day before the National Day / Mid-Autumn holiday
# (2025-10-01..08 off; Saturday 2025-10-11 is a swapped working day).
BEFORE_GOLDEN_WEEK = datetime(2025, 9, 30, 10, 0, tzinfo=CHINA_TZ)
HUAIHAI = GeoPoint(32.03, 118.79)


def emitted(complaint: Complaint) -> list:
    """Every pending event, checked against its schema on the way (the contract test)."""
    events = list(complaint.pending_events)
    for event in events:
        CONTRACTS.validate(event.type, event.data)
    return events


def receive(**overrides) -> Complaint:
    args = dict(
        category=Category.ENVIRONMENTAL_PROTECTION,
        channel=Channel.PHONE,
        urgency=Urgency.GENERAL,
        jurisdiction="320104001",
        location=Location(address="秦淮区淮海路 1 号", point=HUAIHAI),
        description="夜间工地施工噪声扰民",
        at=BEFORE_GOLDEN_WEEK,
        calendar=CAL,
        anonymous=True,
    )
    args.update(overrides)
    return Complaint.receive("cmp-0001", **args)


def handled(at: datetime = BEFORE_GOLDEN_WEEK) -> Complaint:
    """A complaint taken through routing, first feedback, answer and closure."""
    complaint = receive(at=at)
    complaint.route(DepartmentHandles("environmental_protection"), at=at + timedelta(minutes=5))
    complaint.respond(at=at + timedelta(hours=1), by="environmental_protection")
    complaint.give_answer("已责令工地夜间停工", resolved=True, at=at + timedelta(days=1))
    complaint.close(at=at + timedelta(days=1, hours=1))
    return complaint


# ------------------------------------------------------------------ deadlines


@pytest.mark.parametrize(
    "urgency, expected",
    [
        (Urgency.LIFE_OR_PROPERTY, datetime(2025, 9, 30, 12, 0, tzinfo=CHINA_TZ)),
        (Urgency.UTILITIES, datetime(2025, 10, 1, 10, 0, tzinfo=CHINA_TZ)),
        # 7 working days after 30 Sep skip 1-8 Oct and count Saturday 11 Oct (swapped):
        # 9, 10, 11, 13, 14, 15, 16 October.
        (Urgency.GENERAL, datetime(2025, 10, 16, 23, 59, 59, tzinfo=CHINA_TZ)),
        (Urgency.COMPLEX, datetime(2025, 10, 28, 23, 59, 59, tzinfo=CHINA_TZ)),
    ],
)
def test_feedback_deadline_by_urgency(urgency: Urgency, expected: datetime) -> None:
    assert c.feedback_due(urgency, BEFORE_GOLDEN_WEEK, CAL) == expected


def test_hour_deadlines_are_clock_hours_across_a_holiday() -> None:
    eve = datetime(2025, 9, 30, 23, 0, tzinfo=CHINA_TZ)
    assert c.feedback_due(Urgency.LIFE_OR_PROPERTY, eve, CAL) == datetime(2025, 10, 1, 1, 0, tzinfo=CHINA_TZ)


def test_day_deadlines_honour_local_overrides() -> None:
    closed_friday = WorkingCalendar({date(2025, 10, 10): False})
    assert c.feedback_due(Urgency.GENERAL, BEFORE_GOLDEN_WEEK, closed_friday).date() == date(2025, 10, 17)


def test_deadline_counts_in_china_time_whatever_the_offset() -> None:
    # 29 Sep 17:00 UTC is already 30 Sep 01:00 in Nanjing: the count starts from 30 Sep.
    late_utc = datetime(2025, 9, 29, 17, 0, tzinfo=timezone.utc)
    assert c.feedback_due(Urgency.GENERAL, late_utc, CAL) == datetime(2025, 10, 16, 23, 59, 59, tzinfo=CHINA_TZ)


# ------------------------------------------------------------------ receiving


def test_an_anonymous_complaint_is_received_without_applicant() -> None:
    complaint = receive()
    [event] = emitted(complaint)
    assert event.type == "civicgrid.intake.complaint.received.v1"
    assert event.data["anonymous"] is True and "applicant_id" not in event.data
    assert event.data["received_at"] == "2025-09-30T10:00:00+08:00"
    assert event.data["feedback_due_at"] == "2025-10-16T23:59:59+08:00"
    assert event.data["location"] == {"address": "秦淮区淮海路 1 号", "lat": 32.03, "lon": 118.79}
    assert complaint.state is State.RECEIVED and complaint.open311_status == "open"


def test_a_named_complaint_carries_only_a_pseudonymous_applicant_id() -> None:
    complaint = receive(anonymous=False, applicant_id="app-7f3a9c", channel=Channel.OPEN311,
                        open311_service_code="environmental_protection", media_url="https://img.example/1.jpg")
    [event] = emitted(complaint)
    assert event.data["applicant_id"] == "app-7f3a9c" and event.data["channel"] == "open311"


@pytest.mark.parametrize(
    "overrides, code",
    [
        ({"anonymous": True, "applicant_id": "app-1"}, "complaint.anonymous_with_applicant"),
        ({"anonymous": False}, "complaint.applicant_required"),
        ({"anonymous": False, "applicant_id": "110101199003074514 "}, "complaint.applicant_required"),
        ({"jurisdiction": "3201"}, "complaint.invalid_jurisdiction"),
        ({"category": "traffic"}, "complaint.unknown_category"),
        ({"channel": "fax"}, "complaint.unknown_channel"),
        ({"urgency": "soon"}, "complaint.unknown_urgency"),
        ({"description": "x" * 4001}, "complaint.description_too_long"),
        ({"at": datetime(2025, 9, 30, 10, 0)}, "complaint.naive_time"),
        ({"media_url": "javascript:alert(1)"}, "complaint.invalid_media_url"),
    ],
)
def test_bad_complaints_are_refused_with_a_code(overrides: dict, code: str) -> None:
    with pytest.raises(ComplaintError) as e:
        receive(**overrides)
    assert e.value.code == code


@pytest.mark.parametrize(
    "build, code",
    [
        (lambda: GeoPoint(95.0, 118.0), "complaint.invalid_location"),
        (lambda: GeoPoint(32.0, 181.0), "complaint.invalid_location"),
        (lambda: GeoPoint(float("nan"), 118.0), "complaint.invalid_location"),
        (lambda: GeoPoint(-32.03, 118.79), "complaint.location_outside_china"),  # sign lost
        (lambda: GeoPoint(48.85, 2.35), "complaint.location_outside_china"),  # Paris
        (lambda: Location(), "complaint.location_required"),
        (lambda: Location(address="  "), "complaint.invalid_location"),
    ],
)
def test_locations_are_checked(build, code: str) -> None:
    with pytest.raises(ComplaintError) as e:
        build()
    assert e.value.code == code


def test_a_location_may_be_an_address_id_alone() -> None:
    assert Location(address_id="QH-000123").to_data() == {"address_id": "QH-000123"}


# ------------------------------------------------------------------ the life of a complaint


@pytest.mark.parametrize(
    "routing", [StreetHandles(), DepartmentHandles("housing"), LeadWithCoDepartments("urban_management", ("housing",))]
)
def test_routing_by_the_three_rules(routing) -> None:
    complaint = receive()
    complaint.route(routing, at=BEFORE_GOLDEN_WEEK + timedelta(minutes=1))
    event = emitted(complaint)[-1]
    assert event.type == c.ROUTED and complaint.routing == routing and complaint.state is State.ROUTED


def test_response_answer_and_closure_are_recorded_as_facts() -> None:
    complaint = handled()
    events = emitted(complaint)
    assert [e.type for e in events] == [c.RECEIVED, c.ROUTED, c.RESPONDED, c.ANSWERED, c.CLOSED]
    responded, answered, closed = events[2].data, events[3].data, events[4].data
    assert responded == {
        "responded_at": "2025-09-30T11:00:00+08:00",
        "by": "environmental_protection",
        "response_seconds": 3600,
        "feedback_due_at": "2025-10-16T23:59:59+08:00",
        "on_time": True,
    }
    assert answered["resolved"] is True and answered["round"] == 1 and answered["handling_seconds"] == 86400
    assert closed == {"closed_at": "2025-10-01T11:00:00+08:00", "round": 1, "resolved": True}
    assert complaint.open311_status == "closed"


def test_a_late_first_feedback_is_recorded_as_not_on_time() -> None:
    complaint = receive(urgency=Urgency.LIFE_OR_PROPERTY)
    complaint.route(StreetHandles(), at=BEFORE_GOLDEN_WEEK)
    complaint.respond(at=BEFORE_GOLDEN_WEEK + timedelta(hours=2, seconds=1), by="street")
    assert emitted(complaint)[-1].data["on_time"] is False


@pytest.mark.parametrize("rating", [Rating.VERY_SATISFIED, Rating.SATISFIED, Rating.BASICALLY_SATISFIED])
def test_a_good_rating_is_final(rating: Rating) -> None:
    complaint = handled()
    complaint.rate(rating, at=BEFORE_GOLDEN_WEEK + timedelta(days=2), calendar=CAL)
    event = emitted(complaint)[-1]
    assert event.type == c.RATED and event.data["satisfied"] is True and event.data["final"] is True
    assert complaint.state is State.RATED and complaint.final_rating is rating


def test_a_bad_review_reopens_handling_once_then_the_second_rating_is_final() -> None:
    complaint = handled()
    rated_at = datetime(2025, 10, 9, 9, 0, tzinfo=CHINA_TZ)
    complaint.rate(Rating.DISSATISFIED, at=rated_at, calendar=CAL)
    rated, reopened = emitted(complaint)[-2:]
    assert rated.data["final"] is False and rated.data["satisfied"] is False
    assert reopened.type == c.REOPENED
    assert reopened.data == {
        "reopened_at": "2025-10-09T09:00:00+08:00",
        "reason": "bad_review",
        "round": 2,
        "feedback_due_at": "2025-10-17T23:59:59+08:00",  # 7 working days, Saturday 11 Oct counted
    }
    assert complaint.state is State.REOPENED and complaint.open311_status == "open"

    complaint.give_answer("复查后已加装隔音屏障", resolved=True, at=rated_at + timedelta(days=1))
    complaint.close(at=rated_at + timedelta(days=1, hours=1))
    complaint.rate(Rating.VERY_DISSATISFIED, at=rated_at + timedelta(days=2), calendar=CAL)
    events = emitted(complaint)
    assert [e.type for e in events[-3:]] == [c.ANSWERED, c.CLOSED, c.RATED]
    assert events[-3].data["round"] == 2 and events[-3].data["handling_seconds"] == 86400
    assert events[-1].data == {
        "rated_at": "2025-10-11T09:00:00+08:00", "rating": "very_dissatisfied",
        "satisfied": False, "round": 2, "final": True,
    }
    assert complaint.state is State.RATED and complaint.final_rating is Rating.VERY_DISSATISFIED


ILLEGAL = [
    ("respond before routing", lambda x: x.respond(at=BEFORE_GOLDEN_WEEK, by="street")),
    ("answer before feedback", lambda x: x.give_answer("好", resolved=True, at=BEFORE_GOLDEN_WEEK)),
    ("close before answer", lambda x: x.close(at=BEFORE_GOLDEN_WEEK)),
    ("rate before closure", lambda x: x.rate(Rating.SATISFIED, at=BEFORE_GOLDEN_WEEK, calendar=CAL)),
]


@pytest.mark.parametrize("name, command", ILLEGAL, ids=[n for n, _ in ILLEGAL])
def test_illegal_transitions_raise_and_emit_nothing(name: str, command) -> None:
    complaint = receive()
    before = (complaint.version, complaint.state)
    with pytest.raises(ComplaintError) as e:
        command(complaint)
    assert e.value.code == "complaint.illegal_transition"
    assert (complaint.version, complaint.state) == before and len(complaint.pending_events) == 1


def test_routing_twice_and_rating_a_rated_complaint_are_illegal() -> None:
    complaint = handled()
    complaint.rate(Rating.SATISFIED, at=BEFORE_GOLDEN_WEEK + timedelta(days=2), calendar=CAL)
    for command in (
        lambda: complaint.route(StreetHandles(), at=BEFORE_GOLDEN_WEEK + timedelta(days=3)),
        lambda: complaint.rate(Rating.SATISFIED, at=BEFORE_GOLDEN_WEEK + timedelta(days=3), calendar=CAL),
    ):
        with pytest.raises(ComplaintError) as e:
            command()
        assert e.value.code == "complaint.illegal_transition"
    assert len(complaint.pending_events) == 6


def test_time_may_not_go_backwards() -> None:
    complaint = receive()
    with pytest.raises(ComplaintError) as e:
        complaint.route(StreetHandles(), at=BEFORE_GOLDEN_WEEK - timedelta(seconds=1))
    assert e.value.code == "complaint.time_goes_backwards" and complaint.version == 1


@pytest.mark.parametrize(
    "command, code",
    [
        (lambda x: x.respond(at=BEFORE_GOLDEN_WEEK, by="Street Office"), "complaint.invalid_unit"),
        (lambda x: x.give_answer("  ", resolved=True, at=BEFORE_GOLDEN_WEEK), "complaint.answer_required"),
        (lambda x: x.give_answer("ok", resolved="yes", at=BEFORE_GOLDEN_WEEK), "complaint.invalid_answer"),
    ],
)
def test_bad_feedback_and_answers_are_refused(command, code: str) -> None:
    complaint = receive()
    complaint.route(StreetHandles(), at=BEFORE_GOLDEN_WEEK)
    if code != "complaint.invalid_unit":
        complaint.respond(at=BEFORE_GOLDEN_WEEK, by="street")
    version = complaint.version
    with pytest.raises(ComplaintError) as e:
        command(complaint)
    assert e.value.code == code and complaint.version == version


def test_an_unknown_rating_is_refused() -> None:
    complaint = handled()
    with pytest.raises(ComplaintError) as e:
        complaint.rate("meh", at=BEFORE_GOLDEN_WEEK + timedelta(days=3), calendar=CAL)  # type: ignore[arg-type]
    assert e.value.code == "complaint.unknown_rating"


# ------------------------------------------------------------------ replay


class _Stored:
    def __init__(self, event, version: int) -> None:
        self.type, self.data, self.version = event.type, event.data, version


def test_replaying_the_events_rebuilds_the_same_complaint() -> None:
    live = handled()
    live.rate(Rating.DISSATISFIED, at=BEFORE_GOLDEN_WEEK + timedelta(days=2), calendar=CAL)
    stored = [_Stored(e, i) for i, e in enumerate(emitted(live), start=1)]
    replayed = Complaint.replay(live.id, stored)
    fields = ("state", "category", "channel", "urgency", "jurisdiction", "location", "routing", "round",
              "feedback_due_at", "updated_at", "ratings", "resolved", "anonymous", "applicant_id", "version")
    assert {f: getattr(replayed, f) for f in fields} == {f: getattr(live, f) for f in fields}
