""""Never a 500": schemathesis fuzzes every operation of every service's OpenAPI document
(intake, approval, grid, notifications, statistics), in-process over ASGI, on a fresh database of the local stack, with valid tokens of
several roles and jurisdictions (and none at all).

For each generated request (valid and invalid per the schema: wrong types, unknown codes,
malformed bodies, ...) the checks are:
- not a 5xx, and the response conforms to the documented status codes, content type, headers
  and schema (schemathesis' built-in checks; a 2xx to data the schema forbids fails too);
- every 4xx is RFC 9457 problem+json (type, title, status equal to the HTTP status);
- a 4xx changes nothing: the event store's and the outbox's row counts are the same after it.

Cases that fail today are listed, with their reproduction, in KNOWN_FAILURES (fuzz_harness.py beside this file)
and /work/briefs/findings_fuzz.md; test_known_failure_still_fails replays each one so the list
cannot go stale. Runs are deterministic (derandomized) so CI stays reproducible; set
CIVICGRID_FUZZ_RANDOM=1 (and CIVICGRID_FUZZ_EXAMPLES=N) to explore further locally.
"""
from __future__ import annotations

import pytest
from hypothesis import strategies as st

from fuzz_harness import (
    BASE_URL,
    COMMUNITY,
    FIXED_FINDINGS,
    KNOWN_FAILURES,
    OPEN311_F1_REQUESTS,
    open311_error_body,
    PRINCIPALS,
    auth_headers,
    FuzzTarget,
    fuzz_settings,
    known_failure_for,
    replay,
    run_case,
)


def _intake_app(pg_database: str):
    from civicgrid_intake.config import IntakeSettings
    from civicgrid_intake.entrypoints.main import build_app

    # No relay, no consumer: the fuzzer must not publish into, nor join, the stack's topics.
    return build_app(IntakeSettings(pg_database=pg_database, outbox_relay=False, approval_consumer=False))


def _approval_app(pg_database: str):
    from civicgrid_approval.config import ApprovalSettings
    from civicgrid_approval.entrypoints.main import build_app

    return build_app(ApprovalSettings(pg_database=pg_database, outbox_relay=False, consume=False, timers=False))


def _seed_intake(target: FuzzTarget) -> dict[str, str]:
    """A phone complaint filed by a clerk, for the fuzzer's complaint_id to name."""
    r = target.client.post(f"{BASE_URL}/v1/complaints", headers=auth_headers("window_clerk@district"), json={
        "category": "environmental_protection", "channel": "phone", "urgency": "general",
        "jurisdiction": COMMUNITY, "location": {"address": "淮海路 30 号", "lat": 32.0312, "long": 118.7895},
        "description": "餐馆油烟直排", "anonymous": True})
    assert r.status_code == 201, r.text
    return {"complaint_id": r.json()["id"]}


def _grid_app(pg_database: str):
    from civicgrid_grid.config import GridSettings
    from civicgrid_grid.entrypoints.main import build_app

    return build_app(GridSettings(pg_database=pg_database, outbox_relay=False, consume=False, timers=False))


def _notifications_app(pg_database: str):
    from civicgrid_notifications.config import NotificationsSettings
    from civicgrid_notifications.entrypoints.main import build_app

    # No sender: nothing is sent to the local providers while the fuzzer writes.
    return build_app(NotificationsSettings(pg_database=pg_database, outbox_relay=False, consume=False,
                                           timers=False, send=False))


def _statistics_app(pg_database: str):
    from civicgrid_statistics.config import StatisticsSettings
    from civicgrid_statistics.entrypoints.main import build_app

    return build_app(StatisticsSettings(pg_database=pg_database, outbox_relay=False, run_worker=False,
                                        consume_calendar=False))


INTAKE = FuzzTarget("intake", _intake_app, _seed_intake)
APPROVAL = FuzzTarget("approval", _approval_app)
GRID = FuzzTarget("grid", _grid_app)
NOTIFICATIONS = FuzzTarget("notifications", _notifications_app, live_streams=("/v1/inbox/stream",))
STATISTICS = FuzzTarget("statistics", _statistics_app)
intake_schema = INTAKE.schema
approval_schema = APPROVAL.schema
grid_schema = GRID.schema
notifications_schema = NOTIFICATIONS.schema
statistics_schema = STATISTICS.schema


def _started(target: FuzzTarget):
    """A module-scoped fixture: the target's app on its fresh database, for all its cases."""
    @pytest.fixture(scope="module")
    def started():
        with target.start() as running:
            yield running
    return started


# Named <service>_target: the replays below find a finding's service's by that name.
intake_target = _started(INTAKE)
approval_target = _started(APPROVAL)
grid_target = _started(GRID)
notifications_target = _started(NOTIFICATIONS)
statistics_target = _started(STATISTICS)


@intake_schema.parametrize()
@intake_schema.given(who=st.sampled_from(sorted(PRINCIPALS)), real=st.booleans())
@fuzz_settings()
def test_intake_never_500(case, who, real, intake_target):
    run_case(intake_target, case, who, real)


@approval_schema.parametrize()
@approval_schema.given(who=st.sampled_from(sorted(PRINCIPALS)))
@fuzz_settings()
def test_approval_never_500(case, who, approval_target):
    run_case(approval_target, case, who)


@grid_schema.parametrize()
@grid_schema.given(who=st.sampled_from(sorted(PRINCIPALS)))
@fuzz_settings()
def test_grid_never_500(case, who, grid_target):
    run_case(grid_target, case, who)


@notifications_schema.parametrize()
@notifications_schema.given(who=st.sampled_from(sorted(PRINCIPALS)))
@fuzz_settings()
def test_notifications_never_500(case, who, notifications_target):
    run_case(notifications_target, case, who)


@statistics_schema.parametrize()
@statistics_schema.given(who=st.sampled_from(sorted(PRINCIPALS)))
@fuzz_settings()
def test_statistics_never_500(case, who, statistics_target):
    run_case(statistics_target, case, who)


@pytest.mark.parametrize("fixed", FIXED_FINDINGS, ids=lambda k: k.key)
def test_a_fixed_finding_stays_fixed(fixed, request):
    """The exact request of a fixed finding now gets a 4xx problem+json (and changes nothing:
    the statement failed, so its transaction rolled back)."""
    target = request.getfixturevalue(f"{fixed.service}_target")
    response = replay(target, fixed)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == response.status_code


@pytest.mark.parametrize("f1", OPEN311_F1_REQUESTS, ids=lambda k: k.key)
def test_open311_errors_are_in_open311s_format_and_documented_so(f1, request):
    target = request.getfixturevalue("intake_target")
    response = replay(target, f1)
    assert 400 <= response.status_code < 500
    assert open311_error_body(response.headers["content-type"], response.content), response.text[:300]
    documented = target.app.openapi()["paths"][f1.path][f1.method.lower()]["responses"]["4XX"]["content"]
    assert response.headers["content-type"].split(";")[0] in documented


def test_every_known_failure_still_fails(request):
    """Each known failure (none today: F1 and F2 are fixed) is replayed as its exact request: the
    day it is fixed this fails, and its entry must move to the fixed findings, so the list cannot
    hide a fixed bug or grow stale. One test over the list, so an empty list is not a skip."""
    for known in KNOWN_FAILURES:
        target = request.getfixturevalue(f"{known.service}_target")
        response = replay(target, known)
        assert known.still_fails(response), (
            f"{known.key} no longer fails ({response.status_code} {response.text[:300]!r}): "
            "move it from KNOWN_FAILURES to the fixed findings in tests/integration/fuzz_harness.py"
        )
        assert known_failure_for(known.service, known.method, known.path, known.check) is known


def test_every_figure_answers_csv_as_its_document_says(statistics_target):
    """Found by a randomized run: GET /v1/kpis/complaints?format=csv answered text/csv, which its
    OpenAPI entry did not name (only /v1/kpis/grid did). Each figure's CSV, asked for, is now a
    documented answer."""
    paths = [p for p in statistics_target.app.openapi()["paths"] if p.startswith("/v1/kpis/")]
    assert len(paths) >= 6
    for path in paths:
        documented = statistics_target.app.openapi()["paths"][path]["get"]["responses"]["200"]["content"]
        response = statistics_target.client.get(f"{BASE_URL}{path}?format=csv", headers=auth_headers("admin@district"))
        assert response.status_code == 200, (path, response.text[:300])
        assert response.headers["content-type"].split(";")[0] == "text/csv" and "text/csv" in documented, path
        assert response.text.splitlines()[-1].startswith("total"), path
