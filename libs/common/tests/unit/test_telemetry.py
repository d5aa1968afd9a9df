"""Telemetry: personal data never reaches a log line; traceparent crosses Kafka hops."""
from __future__ import annotations

import io
import json
import logging
from typing import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from civicgrid_common.settings import PlatformSettings
from civicgrid_common.telemetry import (
    MOBILE_MASK,
    RESIDENT_ID_MASK,
    context_from_headers,
    inject_traceparent,
    json_log_handler,
    redact,
)

RESIDENT_ID = "11010519491231002X"  # the format's textbook example, X check character
MOBILE = "13812345678"
tracer = TracerProvider().get_tracer("civicgrid.tests")  # local provider: no global state


@pytest.mark.parametrize("text, expected", [
    (f"applicant {RESIDENT_ID} registered", f"applicant {RESIDENT_ID_MASK} registered"),
    ("id=11010519491231002x;", f"id={RESIDENT_ID_MASK};"),
    ("id 320104199001011234", f"id {RESIDENT_ID_MASK}"),
    (f"call {MOBILE} now", f"call {MOBILE_MASK} now"),
    ("call +8613812345678", f"call {MOBILE_MASK}"),
    ("call 86 138 1234 5678.", f"call {MOBILE_MASK}."),
    ("call 138-1234-5678", f"call {MOBILE_MASK}"),
    ("tel:19912345678,15012345678", f"tel:{MOBILE_MASK},{MOBILE_MASK}"),
])
def test_resident_ids_and_mobiles_are_replaced(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "grid 320104001001001",                       # 15-digit grid code
    "component 3201040101000123",                 # 16-digit component id
    "offset 1234567890123456789",                 # 19 digits: not an ID number
    "event 0192f6a4-7c1e-7a3b-9d2e-4f5a6b7c8d9e",  # UUIDv7
    "landline 02584561234",                        # 11 digits, not a mobile prefix
    "took 12345678901234 ns",                      # 14 digits
    "credit code 91320104MA1XXXXX7B",              # unified social credit code
])
def test_codes_and_ids_that_are_not_personal_data_stay(text: str) -> None:
    assert redact(text) == text


@given(prefix=st.text(alphabet=" :=,;([{\"'中文", max_size=5),
       body=st.from_regex(r"\A[1-9][0-9]{16}[0-9X]\Z"),
       suffix=st.text(alphabet=" :=,;)]}\"'中文.", max_size=5))
def test_any_resident_id_standing_alone_is_redacted(prefix: str, body: str, suffix: str) -> None:
    out = redact(prefix + body + suffix)
    assert body not in out and RESIDENT_ID_MASK in out


@given(number=st.from_regex(r"\A1[3-9][0-9]{9}\Z"), text=st.text(alphabet="ab 电话:", max_size=6))
def test_any_mobile_standing_alone_is_redacted(number: str, text: str) -> None:
    out = redact(text + number + text)
    assert number not in out and MOBILE_MASK in out


class Carrier(Exception):
    pass


@pytest.fixture
def log_stream() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = json_log_handler(PlatformSettings(service_name="intake"), stream)
    logger = logging.getLogger("civicgrid.tests.telemetry")
    parent = logging.getLogger("civicgrid.tests")
    parent.addHandler(handler)  # on the parent: child records propagate through its handler
    level = parent.level
    parent.setLevel(logging.DEBUG)
    yield logger, stream
    parent.removeHandler(handler)
    parent.setLevel(level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_log_lines_carry_no_personal_data_in_message_args_extras_or_traceback(log_stream) -> None:
    logger, stream = log_stream
    logger.info("applicant %s phone %d", RESIDENT_ID, int(MOBILE))
    logger.warning("profile %(profile)s", {"profile": {"id": RESIDENT_ID}})
    logger.info("filed", extra={"applicant": RESIDENT_ID, "contacts": [MOBILE], "case": "C-1"})
    try:
        raise Carrier(f"no household for {RESIDENT_ID}")
    except Carrier:
        logger.exception("lookup failed for %s", MOBILE)
    output = stream.getvalue()
    assert RESIDENT_ID not in output and MOBILE not in output
    first, second, third, fourth = lines(stream)
    assert first["message"] == f"applicant {RESIDENT_ID_MASK} phone {MOBILE_MASK}"
    assert second["message"] == f"profile {{'id': '{RESIDENT_ID_MASK}'}}"
    assert third["applicant"] == RESIDENT_ID_MASK and third["contacts"] == [MOBILE_MASK] and third["case"] == "C-1"
    assert "Carrier: no household for " + RESIDENT_ID_MASK in fourth["exc_info"]
    assert first["service"] == "intake" and first["level"] == "INFO" and first["logger"] == "civicgrid.tests.telemetry"


def test_log_lines_carry_the_current_trace_and_span_ids(log_stream) -> None:
    logger, stream = log_stream
    logger.info("outside")
    with tracer.start_as_current_span("accept case") as span:
        logger.info("inside")
    outside, inside = lines(stream)
    assert outside["trace_id"] is None
    ctx = span.get_span_context()
    assert inside["trace_id"] == format(ctx.trace_id, "032x")
    assert inside["span_id"] == format(ctx.span_id, "016x")


def test_traceparent_is_none_outside_a_span() -> None:
    assert inject_traceparent() is None


def test_a_consumer_continues_the_producers_trace() -> None:
    with tracer.start_as_current_span("publish") as producer_span:
        traceparent = inject_traceparent()
    produced = producer_span.get_span_context()
    assert traceparent == f"00-{produced.trace_id:032x}-{produced.span_id:016x}-{produced.trace_flags:02x}"
    # As aiokafka hands them over: a list of (str, bytes), other headers in between.
    headers = [("ce_id", b"0192f6a4"), ("traceparent", traceparent.encode()), ("ce_type", b"x")]
    with tracer.start_as_current_span("handle", context=context_from_headers(headers)) as consumer_span:
        consumed = consumer_span.get_span_context()
    assert consumed.trace_id == produced.trace_id
    assert consumer_span.parent is not None and consumer_span.parent.span_id == produced.span_id


def test_records_without_or_with_a_broken_traceparent_start_a_new_trace() -> None:
    for headers in ([], [("traceparent", b"garbage")], None):
        ctx = context_from_headers(headers)  # type: ignore[arg-type]
        assert not trace.get_current_span(ctx).get_span_context().is_valid
