"""What every request body and parameter of every service is built from, so that every input a
request controls is bounded and unknown input is refused:

- `RequestBody`: the base of every JSON body model. Unknown members are refused (a misspelt
  field is a mistake the client must hear about, not something silently ignored). Booleans and
  integers are declared `Flag` and `StrictInt`: "yes" is no boolean, "1" no integer
  (FastAPI validates the decoded JSON in Python mode, so a model-wide `strict=True` would refuse
  ISO dates and enum values too; the tests check every boolean and integer of every body).
- `QueryFlag`: a boolean query parameter; only `true` or `false`.
- `Day` and `Instant`: a date or an instant within the calendar's range (`MIN_DATE`..`MAX_DATE`),
  so no request can make a computation overflow or run for years of days; OpenAPI carries the
  range as `formatMinimum` / `formatMaximum`.
"""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Annotated, Any, Callable

from pydantic import (
    AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, StrictBool, StrictInt, WithJsonSchema,
)

from civicgrid_common.calendar.working_days import MAX_DATE, MIN_DATE

__all__ = ["Day", "Flag", "Instant", "MAX_DATE", "MIN_DATE", "QueryFlag", "RequestBody", "StrictInt"]

Flag = StrictBool


def _query_flag(value: Any) -> bool:
    # A query carries text: only the JSON spellings of a boolean, never "yes", "1" or "on".
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ValueError("must be true or false")


QueryFlag = Annotated[bool, BeforeValidator(_query_flag), WithJsonSchema({"type": "boolean"})]

_MIN_INSTANT = datetime.combine(MIN_DATE, time.min, timezone.utc)
_MAX_INSTANT = datetime.combine(MAX_DATE, time.max, timezone.utc)
_RANGE = f"between {MIN_DATE.isoformat()} and {MAX_DATE.isoformat()}"


def _written_out(what: str) -> Callable[[Any], Any]:
    """Dates and instants as the document says, written out (RFC 3339): pydantic would also take
    a number as a Unix timestamp (`?before=0.0` as 1970-01-01T00:00:00Z), a reading no client
    of the documented format means, and one that seconds and milliseconds make ambiguous."""
    def check(value: Any) -> Any:
        if isinstance(value, (date, datetime)):
            return value
        if not isinstance(value, str) or value.strip().lstrip("+-").replace(".", "", 1).isdigit():
            raise ValueError(f"must be {what} written out, not a number")
        return value
    return check


def _day_in_range(value: date) -> date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValueError(f"a date must lie {_RANGE}")
    return value


def _instant_in_range(value: datetime) -> datetime:
    if not _MIN_INSTANT <= value <= _MAX_INSTANT:
        raise ValueError(f"an instant must lie {_RANGE}")
    return value


Day = Annotated[date, BeforeValidator(_written_out("a date (YYYY-MM-DD)")), AfterValidator(_day_in_range), WithJsonSchema({
    "type": "string", "format": "date", "formatMinimum": MIN_DATE.isoformat(), "formatMaximum": MAX_DATE.isoformat()})]
Instant = Annotated[AwareDatetime, BeforeValidator(_written_out("an RFC 3339 date-time with its offset")),
                    AfterValidator(_instant_in_range), WithJsonSchema({
    "type": "string", "format": "date-time", "formatMinimum": _MIN_INSTANT.isoformat(),
    "formatMaximum": _MAX_INSTANT.isoformat()})]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
