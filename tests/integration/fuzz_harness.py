"""The harness of test_api_fuzz.py: a service's app on a fresh database of the local stack,
served in-process by schemathesis' ASGI client (one lifespan, one event loop for all requests),
the principals the fuzzer acts as, the checks, and the list of known failures."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import asyncpg
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from civicgrid_common.identity.tokens import mint_local_token
from civicgrid_common.settings import PlatformSettings

DISTRICT, STREET, COMMUNITY = "320104", "320104001", "320104001001"
OTHER_DISTRICT = "320105"  # someone else's jurisdiction

# Who the fuzzer acts as: each generated request is sent with one of these (None: no token).
PRINCIPALS: dict[str, dict[str, str] | None] = {
    "anonymous": None,
    "window_clerk@district": {"role": "window_clerk", "jurisdiction": DISTRICT},
    "community_reviewer@community": {"role": "community_reviewer", "jurisdiction": COMMUNITY},
    "street_reviewer@street": {"role": "street_reviewer", "jurisdiction": STREET},
    "bureau_approver@district": {"role": "bureau_approver", "jurisdiction": DISTRICT},
    "grid_worker@community": {"role": "grid_worker", "jurisdiction": COMMUNITY},
    "department@district": {"role": "department", "jurisdiction": DISTRICT, "department": "320104-zjj"},
    "auditor@district": {"role": "auditor", "jurisdiction": DISTRICT},
    "admin@district": {"role": "admin", "jurisdiction": DISTRICT},
    "admin@other_district": {"role": "admin", "jurisdiction": OTHER_DISTRICT},
    "window_clerk@other_district": {"role": "window_clerk", "jurisdiction": OTHER_DISTRICT},
}


BASE_URL = "http://localhost"


def auth_headers(who: str) -> dict[str, str]:
    spec = PRINCIPALS[who]
    if spec is None:
        return {}
    spec = dict(spec)
    token = mint_local_token(spec.pop("role"), spec.pop("jurisdiction"), **spec)
    return {"Authorization": f"Bearer {token}"}


def fuzz_settings() -> Callable:
    """Bounded: the whole fuzz run stays within about two minutes on a 2-core machine."""
    return settings(
        max_examples=int(os.environ.get("CIVICGRID_FUZZ_EXAMPLES", "10")),
        derandomize=os.environ.get("CIVICGRID_FUZZ_RANDOM") != "1",
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


class FuzzTarget:
    """A service's app, built at import (build_app does no I/O) on the name of a database that
    start() creates; its lifespan starts on start(), in schemathesis' ASGI event loop."""

    def __init__(self, name: str, build: Callable[[str], Any],
                 seed: Callable[[FuzzTarget], dict[str, str]] | None = None, *,
                 live_streams: tuple[str, ...] = ()) -> None:
        self.name = name
        self.seed = seed
        self.real_ids: dict[str, str] = {}  # path parameter -> the id of a record seed() made
        self.database = f"t_fuzz_{name}_{uuid.uuid4().hex[:12]}"
        self.app = build(self.database)
        self.schema = schemathesis.openapi.from_dict(self.app.openapi())
        if live_streams:
            # A live stream (server-sent events) answers a valid request with a response that
            # never ends, by design: the in-process client would wait for its end for good. Its
            # own tests open it and read it; the fuzzer leaves it out.
            self.schema = self.schema.exclude(path=list(live_streams))
        self.schema.config.update(base_url=BASE_URL)
        self.schema.app = self.app  # requests (and schemathesis' probes) go to the app in-process
        self.client: Any = None  # schemathesis' ASGI session on the app, while started
        self.db: psycopg.Connection | None = None

    @contextlib.contextmanager
    def start(self) -> Iterator[FuzzTarget]:
        asyncio.run(_create_database(self.database))
        try:
            dsn = PlatformSettings(service_name="tests").dsn(self.database)
            with asgi.get_client(self.app) as client, psycopg.connect(dsn, autocommit=True) as db:
                self.client, self.db = client, db
                self.real_ids = self.seed(self) if self.seed else {}
                yield self
        finally:
            self.client = self.db = None
            asgi.shutdown_lifespans()
            asyncio.run(_drop_database(self.database))

    def state(self) -> tuple[int, int]:
        """What a rejected request must not change: the event store and the outbox."""
        row = self.db.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM outbox)").fetchone()
        return row[0], row[1]


async def _create_database(name: str) -> None:
    settings_ = PlatformSettings(service_name="tests")
    try:
        admin = await asyncpg.connect(settings_.dsn("postgres"), timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL of the local stack is not reachable ({exc!r}); run `make up`", pytrace=False)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def _drop_database(name: str) -> None:
    admin = await asyncpg.connect(PlatformSettings(service_name="tests").dsn("postgres"), timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


# --- known failures ---------------------------------------------------------------------------

@dataclass(frozen=True)
class KnownFailure:
    """One case that fails today, reproduced exactly; see /work/briefs/findings_fuzz.md."""

    key: str  # the finding's id in findings_fuzz.md
    service: str
    method: str
    path: str  # the operation's templated path, as in the OpenAPI document
    check: str  # the failing check: a schemathesis Failure class name or one of ours below
    who: str
    url: str  # the exact request that reproduces it
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def still_fails(self, response: Any) -> bool:
        if self.check == "ServerError":
            return response.status_code >= 500
        if self.check in ("UndefinedContentType", "ProblemJsonMissing"):
            media_type = response.headers.get("content-type", "").split(";")[0].strip()
            return 400 <= response.status_code < 500 and media_type != "application/problem+json"
        raise AssertionError(f"no replay predicate for {self.check}")


# F1 (findings_fuzz.md, FIXED by documenting it): intake's Open311 endpoints answer errors in Open311's own error format
# (<errors><error>… or [{"code", "description"}], as GeoReport v2 clients expect), while the
# OpenAPI document says every 4XX is application/problem+json. Reproduced with an unsupported
# format extension ("0"), answered 404 text/xml.
_OPEN311_F1 = [
    ("GET", "/open311/v2/discovery.{ext}", "/open311/v2/discovery.0"),
    ("GET", "/open311/v2/services.{ext}", "/open311/v2/services.0"),
    ("GET", "/open311/v2/services/{service_code}.{ext}", "/open311/v2/services/0.0"),
    ("POST", "/open311/v2/requests.{ext}", "/open311/v2/requests.0"),
    ("GET", "/open311/v2/requests.{ext}", "/open311/v2/requests.0"),
    ("GET", "/open311/v2/requests/{service_request_id}.{ext}", "/open311/v2/requests/0.0"),
    ("GET", "/open311/v2/tokens/{token}.{ext}", "/open311/v2/tokens/0.0"),
    ("GET", "/open311/v2/servicerequestupdates.{ext}", "/open311/v2/servicerequestupdates.0"),
    ("POST", "/open311/v2/servicerequestupdates.{ext}", "/open311/v2/servicerequestupdates.0"),
]

# F2 (findings_fuzz.md, FIXED: the platform's problem handlers answer 422): a NUL character
# (U+0000) in a string that reaching PostgreSQL raised
# asyncpg's CharacterNotInRepertoireError (text) or UntranslatableCharacterError (jsonb) out of
# intake's app: a 500. Found by a randomized run (GET /v1/cases?affair_code=%00), then probed.
_NUL_COMPLAINT = json.dumps({
    "category": "environmental_protection", "channel": "phone", "urgency": "general",
    "jurisdiction": COMMUNITY, "location": {"address": "淮海路 30 号", "lat": 32.0312, "long": 118.7895},
    "description": "油烟\u0000直排", "anonymous": True}).encode()
_NUL_F2 = [
    ("GET", "/v1/cases", "/v1/cases?affair_code=%00", None),
    ("GET", "/v1/cases/{case_id}", "/v1/cases/%00", None),
    ("POST", "/v1/complaints", "/v1/complaints", _NUL_COMPLAINT),
    ("GET", "/open311/v2/requests.{ext}", "/open311/v2/requests.json?service_code=%00", None),
    ("GET", "/open311/v2/requests/{service_request_id}.{ext}", "/open311/v2/requests/%00.json", None),
    ("GET", "/open311/v2/tokens/{token}.{ext}", "/open311/v2/tokens/%00.json", None),
]

# F2 in approval (probed by hand after intake's): the same NUL character in a path or query
# parameter that reaches PostgreSQL.
_NUL_F2_APPROVAL = [
    ("GET", "/v1/approvals", "/v1/approvals?affair_code=%00"),
    ("GET", "/v1/approvals/inbox", "/v1/approvals/inbox?affair_code=%00"),
    ("GET", "/v1/approvals/{approval_id}", "/v1/approvals/%00"),
    ("GET", "/v1/approvals/{approval_id}/verify", "/v1/approvals/%00/verify"),
    ("GET", "/v1/approvals/{approval_id}/archive", "/v1/approvals/%00/archive"),
    ("GET", "/v1/workflows/{affair_code}", "/v1/workflows/%00"),
]

# The cases that fail today, each with its exact reproduction; nothing else is tolerated.
KNOWN_FAILURES: list[KnownFailure] = []

# F1, FIXED: the Open311 routes' OpenAPI entries now document GeoReport v2's error format.
OPEN311_F1_REQUESTS: list[KnownFailure] = [
    KnownFailure(key=f"F1-{method}-{url}", service="intake", method=method, path=path, check="ProblemJsonMissing",
                 who="admin@district", url=url)
    for method, path, url in _OPEN311_F1
]

# Fixed findings, replayed as their exact requests so they stay fixed: F2 (U+0000 → 422 now), F3
# (a number taken for a date or an instant → 422 now).
FIXED_FINDINGS: list[KnownFailure] = [
    KnownFailure(key=f"F2-{method}-{url}", service="intake", method=method, path=path,
                 check="ServerError", who="window_clerk@district", url=url, body=body,
                 headers={"Content-Type": "application/json"} if body else {})
    for method, path, url, body in _NUL_F2
] + [
    KnownFailure(key=f"F2-approval-{method}-{url}", service="approval", method=method, path=path,
                 check="ServerError", who="bureau_approver@district", url=url)
    for method, path, url in _NUL_F2_APPROVAL
] + [
    # F3 (a randomized run, 2026-12-03): a number where a date-time is documented was read as a
    # Unix timestamp (pydantic's lax mode) and the request answered 200; refused now (422).
    KnownFailure(key="F3-notifications-GET-/v1/deliveries/dead-letters?before=0.0", service="notifications",
                 method="GET", path="/v1/deliveries/dead-letters", check="AcceptedNegativeData",
                 who="admin@district", url="/v1/deliveries/dead-letters?before=0.0"),
    KnownFailure(key="F3-statistics-GET-/v1/kpis/cases?from=0", service="statistics",
                 method="GET", path="/v1/kpis/cases", check="AcceptedNegativeData",
                 who="admin@district", url="/v1/kpis/cases?from=0"),
]


def known_failure_for(service: str, method: str, path: str, check: str) -> KnownFailure | None:
    for known in KNOWN_FAILURES:
        if (known.service, known.method, known.path, known.check) == (service, method.upper(), path, check):
            return known
    return None


class _Unhandled:
    """What the ASGI client gives back for an exception the app let through: a 500 on the wire."""

    status_code = 500
    headers: dict[str, str] = {}

    def __init__(self, exc: Exception) -> None:
        self.text = repr(exc)


def replay(target: FuzzTarget, known: KnownFailure) -> Any:
    try:
        return _send(target, known)
    except Exception as exc:  # noqa: BLE001 - the app raised: on the wire, a 500
        return _Unhandled(exc)


def _send(target: FuzzTarget, known: KnownFailure) -> Any:
    return target.client.request(known.method, BASE_URL + known.url, data=known.body,
                                 headers={**known.headers, **auth_headers(known.who)})


# --- the checks -------------------------------------------------------------------------------

class ProblemJsonMissing(Failure):
    """A 4xx that is not RFC 9457 problem+json (type, title, status = the HTTP status)."""


class StateChangedOn4xx(Failure):
    """A rejected request changed the event store or the outbox."""


def open311_error_body(content_type: str, content: bytes) -> bool:
    """Whether a body is GeoReport v2's error format: <errors><error><code/><description/>… in
    XML or [{"code", "description"}, …] in JSON (what Open311 clients parse, not problem+json)."""
    media_type = content_type.split(";")[0].strip()
    try:
        if media_type == "text/xml":
            import xml.etree.ElementTree as ET
            root = ET.fromstring(content)
            errors = root.findall("error")
            return root.tag == "errors" and bool(errors) and all(
                e.findtext("code", "").isdigit() and e.findtext("description") for e in errors)
        if media_type == "application/json":
            body = json.loads(content)
            return isinstance(body, list) and bool(body) and all(
                isinstance(e, dict) and isinstance(e.get("code"), int) and isinstance(e.get("description"), str)
                for e in body)
    except (ValueError, SyntaxError):
        return False
    return False


def _problem_failures(case: Any, response: Any, label: str) -> list[Failure]:
    if not 400 <= response.status_code < 500:
        return []
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    # Open311's routes answer in GeoReport v2's error format, as their OpenAPI entries say (F1).
    if case.operation.path.startswith("/open311/") and open311_error_body(content_type, response.content):
        return []
    problem = None
    if content_type.split(";")[0].strip() == "application/problem+json":
        try:
            problem = json.loads(response.content)
        except ValueError:
            problem = None
    if (isinstance(problem, dict) and isinstance(problem.get("title"), str)
            and problem.get("status") == response.status_code and "type" in problem):
        return []
    return [ProblemJsonMissing(operation=label, message=(
        f"{response.status_code} with content-type {content_type!r}: {response.content[:300]!r}"))]


# Negative components that are not a fault when the API answers 2xx: an extra, undocumented
# query parameter (FastAPI ignores it, as most HTTP APIs do), and a missing Authorization header
# (schemathesis drops it, but run_case sends the principal's token in its place). Read from the
# "Invalid component" lines of schemathesis' AcceptedNegativeData message.
def _negative_only_by_what_we_allow(failure: Failure) -> bool:
    if type(failure).__name__ != "AcceptedNegativeData" or "Invalid component:" not in failure.message:
        return False
    described = failure.message.split("Invalid component:", 1)[1]
    lines = [line.strip(" -") for line in described.splitlines() if line.strip(" -")]
    mutations = [line for line in lines if "violates" in line or "missing" in line.lower()]
    return bool(mutations) and all(
        ("additionalProperties" in line and "query" in line) or "Authorization" in line for line in mutations
    ) and not any("body" in line or "path" in line for line in lines)


def run_case(target: FuzzTarget, case: Any, who: str, real: bool = False) -> None:
    """Send one generated request as `who` and run every check; tolerate only the exact known
    failures (same service, operation and check). With `real`, a path parameter that names a
    record (complaint_id, ...) names the one seed() made, so the domain's checks are reached;
    not in a case whose path was made invalid on purpose: a real id in its place would make the
    request valid, and its 200 would read as invalid data accepted."""
    if real and case.path_parameters and not case.meta.is_negative_at(ParameterLocation.PATH):
        for name, value in target.real_ids.items():
            if name in case.path_parameters:
                case.path_parameters[name] = value
    headers = auth_headers(who)
    label = f"{case.operation.method.upper()} {case.operation.path}"
    before = target.state()
    transport = {"session": target.client, "headers": headers}
    response = case.call(**transport)
    after = target.state()
    failures: list[Failure] = []
    try:
        case.validate_response(response, headers=headers, transport_kwargs=transport, excluded_checks=[
            # A request valid per the schema may still be refused by the domain (unknown case, wrong
            # state, someone else's jurisdiction): a 4xx there is right, not a failure.
            positive_data_acceptance,
        ])
    except FailureGroup as group:
        failures.extend(group.exceptions)
    except Failure as failure:
        failures.append(failure)
    failures = [f for f in failures if not _negative_only_by_what_we_allow(f)]
    failures += _problem_failures(case, response, label)
    if 400 <= response.status_code < 500 and after != before:
        failures.append(StateChangedOn4xx(operation=label, message=(
            f"{response.status_code}: (events, outbox) went from {before} to {after}")))
    unknown = [f for f in failures if known_failure_for(
        target.name, case.operation.method, case.operation.path, type(f).__name__) is None]
    if unknown:
        details = "\n".join(f"- {type(f).__name__}: {f.title}: {f.message}" for f in unknown)
        raise AssertionError(
            f"{target.name} {label} as {who} -> {response.status_code}\n{details}\n"
            f"reproduce: {case.as_curl_command(headers=headers)}\n"
            f"response: {response.content[:1000]!r}")
