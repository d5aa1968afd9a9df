"""Open311 parsing and rendering (pure): attribute datatypes, dates, the JSON/XML mapping."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

from civicgrid_intake.entrypoints.open311 import parsing, render
from civicgrid_intake.entrypoints.open311.model import (
    Attribute, AttributeValue, Datatype, Format, Jurisdiction, Open311Failure, Service,
)

JURISDICTION = Jurisdiction("320104", api_keys=frozenset({"k"}))
LISTS = Service(
    service_code="streetlight", service_name="路灯", description="", attributes=(
        Attribute("poles", Datatype.MULTIVALUELIST, True, "which poles", 1,
                  values=(AttributeValue("p1", "1"), AttributeValue("p2", "2"))),
        Attribute("count", Datatype.NUMBER, False, "how many", 2),
        Attribute("seen", Datatype.DATETIME, False, "when", 3),
        Attribute("note", Datatype.STRING, False, "note", 4),
    ),
)
BASE = [("api_key", "k"), ("service_code", "streetlight"), ("address_id", "A1")]


def test_multivaluelist_and_typed_attributes() -> None:
    parsed = parsing.parse_create(
        BASE + [("attribute[poles][]", "p1"), ("attribute[poles][]", "p2"), ("attribute[count]", "3"),
                ("attribute[seen]", "2026-03-01T20:00:00+08:00")],
        {"streetlight": LISTS}, JURISDICTION)
    assert parsed.attributes == {"poles": ("p1", "p2"), "count": ("3",), "seen": ("2026-03-01T20:00:00+08:00",)}


@pytest.mark.parametrize("extra, fragment", [
    ([], "attribute 'poles' is required"),
    ([("attribute[poles][]", "p9")], "'p9' is not one of p1, p2"),
    ([("attribute[poles][]", "p1"), ("attribute[count]", "three")], "is not a number"),
    ([("attribute[poles][]", "p1"), ("attribute[seen]", "yesterday")], "ISO 8601"),
    ([("attribute[poles][]", "p1"), ("attribute[note]", "a\nb")], "without line breaks"),
    ([("attribute[poles][]", "p1"), ("attribute[count]", "1"), ("attribute[count]", "2")], "takes one value"),
    ([("attribute[poles][]", "p1"), ("attributes", "x")], "not of the form attribute[code]"),
])
def test_attribute_errors(extra, fragment) -> None:
    with pytest.raises(Open311Failure) as e:
        parsing.parse_create(BASE + extra, {"streetlight": LISTS}, JURISDICTION)
    assert e.value.status == 400 and any(fragment in err.description for err in e.value.errors)


@pytest.mark.parametrize("text, expected", [
    ("2010-01-01T00:00:00Z", datetime(2010, 1, 1, tzinfo=timezone.utc)),
    ("2010-01-01T08:00+08:00", datetime(2010, 1, 1, tzinfo=timezone.utc)),
    ("2010-01-01T07:00:00.5-01:00", datetime(2010, 1, 1, 8, 0, 0, 500000, tzinfo=timezone.utc)),
])
def test_w3c_dates_with_a_zone(text, expected) -> None:
    assert parsing.parse_w3c(text, "start_date") == expected


def test_only_start_date_gives_a_90_day_window() -> None:
    now = datetime(2026, 3, 2, tzinfo=timezone.utc)
    q = parsing.parse_requests_query([("start_date", "2025-01-01T00:00:00Z")], now, JURISDICTION)
    assert q.end - q.start == timedelta(days=90)


def test_empty_optional_parameters_count_as_absent() -> None:
    now = datetime(2026, 3, 2, tzinfo=timezone.utc)
    q = parsing.parse_requests_query([("status", ""), ("start_date", ""), ("jurisdiction_id", "")], now, JURISDICTION)
    assert q.statuses == () and q.end == now


def test_rendering_null_bool_and_numbers() -> None:
    body, media_type = render.render_services([LISTS], Format.XML)
    assert media_type == "text/xml; charset=utf-8"
    service = ET.fromstring(body)[0]
    assert service.findtext("metadata") == "true" and service.find("description").text is None
    body, _ = render.render_service_definition(LISTS, Format.JSON)
    assert b'"required": true' in body and b'"order": 1' in body and b'"datatype_description": null' in body
