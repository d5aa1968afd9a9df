"""The district calendar's events, as the owner (intake) publishes them and every service applies
them: their types and the stream type of the owner's aggregate. Pure: domain code imports it."""
from __future__ import annotations

CALENDAR_STREAM_TYPE = "calendar"  # the owner's DistrictCalendar aggregate, stream `calendar:<district>`
OVERRIDE_SET = "civicgrid.intake.calendar.override_set.v1"
SCHEDULE_CONFIRMED = "civicgrid.intake.calendar.schedule_confirmed.v1"
CALENDAR_EVENTS = (OVERRIDE_SET, SCHEDULE_CONFIRMED)
