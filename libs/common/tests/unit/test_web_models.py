"""The shared field types of request models: dates and instants as the OpenAPI document says,
written out; a number is refused rather than read as a Unix timestamp (the fuzzer found
`?before=0.0` accepted as 1970-01-01T00:00:00Z)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter, ValidationError

from civicgrid_common.web.models import Day, Instant

INSTANT, DAY = TypeAdapter(Instant), TypeAdapter(Day)


def test_written_out_dates_and_instants_are_read() -> None:
    assert INSTANT.validate_python("2026-03-01T09:30:00+08:00") == \
        datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=8)))
    assert DAY.validate_python("2026-03-01") == date(2026, 3, 1)
    # values made in code pass as they are
    assert DAY.validate_python(date(2026, 3, 1)) == date(2026, 3, 1)


@pytest.mark.parametrize("value", [0, 0.0, "0.0", "1700000000", "-1", " 42 ", True])
def test_a_number_is_not_an_instant(value) -> None:
    with pytest.raises(ValidationError, match="not a number"):
        INSTANT.validate_python(value)


@pytest.mark.parametrize("value", [5, "20260301", "1.5"])
def test_a_number_is_not_a_day(value) -> None:
    with pytest.raises(ValidationError, match="not a number"):
        DAY.validate_python(value)


def test_an_instant_without_its_offset_or_out_of_range_is_still_refused() -> None:
    for value in ("2026-03-01T09:30:00", "1800-01-01T00:00:00Z"):
        with pytest.raises(ValidationError):
            INSTANT.validate_python(value)
