"""The classification as data: the national major classes, the district's versioned table of
minor classes with their departments and handling limits, and its seed."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest

from civicgrid_common.calendar import WorkingCalendar

from civicgrid_grid.domain.classification import (
    CLASS_ADDED, CLASS_RETIRED, CLASS_REVISED, MAJOR_CLASSES, ClassKey, Classification, Kind, MinorClass,
    UnknownClass, classes_from_seed, seed_classification,
)
from civicgrid_grid.domain.rules import InvalidInput
from civicgrid_grid.domain.seed import seed_document
from civicgrid_grid.domain.time_limits import HandlingLimit, LimitUnit, add_working_hours

from grid_builders import ADMIN, T0, china, departments, replayed, state, ticks

KNOWN = departments()
MANHOLE = {"kind": "part", "major": "01", "minor": "01", "name_zh": "井盖", "name_en": "manhole cover",
           "department": "urban_management", "limit": {"working_hours": 4}}


def table() -> Classification:
    return Classification(Classification.stream_for("320104"))


def test_the_major_classes_are_the_national_schemes() -> None:
    assert {k: [n for _, n in m.values()] for k, m in MAJOR_CLASSES.items()} == {
        Kind.PART: ["public utilities", "roads and traffic", "city appearance", "greenery", "housing and land",
                    "other facilities"],
        Kind.EVENT: ["city appearance and environment", "advertising", "construction", "emergencies",
                     "street order", "other"],
    }
    assert MAJOR_CLASSES[Kind.PART]["01"][0] == "公用设施" and MAJOR_CLASSES[Kind.EVENT]["04"][0] == "突发事件"


def test_the_seed_has_three_to_five_minor_classes_per_major_each_with_a_known_department() -> None:
    classes = classes_from_seed(seed_document())
    per_major = Counter((c.key.kind, c.key.major) for c in classes)
    assert set(per_major) == {(k, m) for k in Kind for m in MAJOR_CLASSES[k]}
    assert all(3 <= n <= 5 for n in per_major.values()), per_major
    assert {c.department for c in classes} <= KNOWN
    assert all(c.limit.unit in LimitUnit for c in classes)
    # Emergencies run on the clock, day and night.
    assert {c.limit.unit for c in classes if c.key.kind is Kind.EVENT and c.key.major == "04"} == {LimitUnit.HOURS}


def test_seeding_goes_through_the_commands_and_is_idempotent() -> None:
    t, classes = table(), classes_from_seed(seed_document())
    changed = seed_classification(t, classes, known_departments=KNOWN, by=ADMIN, at=T0)
    assert len(changed) == len(classes) == len(t.active()) == t.version
    assert seed_classification(t, classes, known_departments=KNOWN, by=ADMIN, at=T0) == []
    assert t.current(ClassKey(Kind.EVENT, "01", "01")).minor_class.name_en == "exposed rubbish"


def test_a_seed_listing_a_class_twice_is_refused() -> None:
    document = {"classes": [MANHOLE, MANHOLE]}
    with pytest.raises(InvalidInput) as refused:
        classes_from_seed(document)
    assert refused.value.field == "classes/1"


def test_the_table_is_versioned_and_earlier_versions_stay_readable() -> None:
    t, at = table(), ticks()
    t.add_class(MinorClass.from_data(MANHOLE), known_departments=KNOWN, by=ADMIN, at=next(at))
    key = ClassKey(Kind.PART, "01", "01")
    revised = MinorClass.from_data({**MANHOLE, "limit": {"working_hours": 2}})
    t.revise_class(revised, reason="faster since the accident", known_departments=KNOWN, by=ADMIN, at=next(at))
    assert [e.type for e in t.pending_events] == [CLASS_ADDED, CLASS_REVISED]
    assert t.pending_events[-1].data["changed"] == ["limit"]
    assert t.current(key).version == 2 and t.current(key).minor_class.limit == HandlingLimit(LimitUnit.WORKING_HOURS, 2)
    assert t.revision(key, 1).minor_class.limit.amount == 4
    with pytest.raises(InvalidInput, match="same"):
        t.revise_class(revised, reason="again", known_departments=KNOWN, by=ADMIN, at=next(at))
    t.retire_class(key, reason="merged into 0105", by=ADMIN, at=next(at))
    assert t.pending_events[-1].type == CLASS_RETIRED
    with pytest.raises(UnknownClass) as refused:
        t.current(key)
    assert refused.value.code == "class_retired" and refused.value.field == "classification"
    with pytest.raises(InvalidInput, match="never reused"):
        t.add_class(MinorClass.from_data(MANHOLE), known_departments=KNOWN, by=ADMIN, at=next(at))
    assert t.revision(key, 2).version == 2  # a retired class's versions are still readable
    assert state(replayed(t)) == state(t)


def test_a_class_naming_an_unknown_department_or_a_bad_limit_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        table().add_class(MinorClass.from_data({**MANHOLE, "department": "water_company"}), known_departments=KNOWN,
                          by=ADMIN, at=T0)
    assert (refused.value.code, refused.value.field) == ("unknown_department", "department")
    for limit, field in (({"days": 3}, "limit/days"), ({"working_days": 0}, "limit/working_days"),
                         ({"working_days": 1, "hours": 2}, "limit"), ({"working_hours": True}, "limit/working_hours")):
        with pytest.raises(InvalidInput) as refused:
            MinorClass.from_data({**MANHOLE, "limit": limit})
        assert (refused.value.code, refused.value.field) == ("invalid_limit", field)


@pytest.mark.parametrize("kind, major, minor, field", [
    ("thing", "01", "01", "classification/kind"), ("part", "07", "01", "classification/major"),
    ("event", "01", "00", "classification/minor"), ("event", "01", "1", "classification/minor"),
])
def test_a_classification_outside_the_scheme_is_refused(kind: str, major: str, minor: str, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        ClassKey.parse(kind, major, minor)
    assert refused.value.field == field


# ---------------------------------------------------------------------------- handling limits

CALENDAR = WorkingCalendar()


def test_working_hours_run_in_office_hours_of_working_days_only() -> None:
    # Friday 16:00 with 4 working hours: 1.5 h on Friday, 2.5 h from Monday 08:30.
    assert add_working_hours(china(2026, 3, 6, 16, 0), 4, CALENDAR) == china(2026, 3, 9, 11, 0)
    # Before the office opens the clock waits for 08:30; over lunch it waits for 14:00.
    assert add_working_hours(china(2026, 3, 2, 7, 0), 2, CALENDAR) == china(2026, 3, 2, 10, 30)
    assert add_working_hours(china(2026, 3, 2, 11, 0), 2, CALENDAR) == china(2026, 3, 2, 15, 0)
    # Hours that run out exactly at the end of the day end there, not the next morning.
    assert add_working_hours(china(2026, 3, 2, 14, 0), 3, CALENDAR) == china(2026, 3, 2, 17, 0)
    assert add_working_hours(china(2026, 3, 2, 16, 0), 1, CALENDAR) == china(2026, 3, 2, 17, 0)
    # Reported on a Saturday: the clock starts on Monday morning.
    assert add_working_hours(china(2026, 3, 7, 10, 0), 1, CALENDAR) == china(2026, 3, 9, 9, 30)
    # Over National Day 2026 (1-7 October off, Saturday 10 October worked).
    assert add_working_hours(china(2026, 9, 30, 17, 0), 8, CALENDAR) == china(2026, 10, 9, 9, 0)


def test_working_days_are_due_by_the_end_of_the_nth_working_day_after_dispatch() -> None:
    limit = HandlingLimit(LimitUnit.WORKING_DAYS, 3)
    # Dispatched on 30 September 2026: 8, 9 and 10 October (a Saturday worked) are the three days.
    assert limit.due(china(2026, 9, 30, 10, 0), CALENDAR) == china(2026, 10, 11, 0, 0)
    assert HandlingLimit(LimitUnit.HOURS, 2).due(china(2026, 10, 1, 22, 0), CALENDAR) == china(2026, 10, 2, 0, 0)
    assert limit.due(datetime(2026, 9, 30, 2, 0, tzinfo=timezone.utc), CALENDAR).tzinfo == timezone.utc
