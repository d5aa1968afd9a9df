"""Probe a running civicgrid stack the way the security review did (issue 9): every finding's
reproduction, sent to the real services over HTTP, with the answer it must get now.

    .venv/bin/python tests/probe/probe.py                      # against `make up`'s stack
    .venv/bin/python tests/probe/probe.py --intake URL --approval URL --statistics URL
    .venv/bin/python tests/probe/probe.py --max-lag-ms 100     # also fail on event-loop lag

Each check prints PASS or FAIL with what it saw; at the end every service's worst event-loop lag
while serving (civicgrid_event_loop_lag_max_seconds on /metrics) and the dead letters on
civicgrid.deadletter, each explained. Exit status 0 only if every check passed. It signs its
tokens with the local stack's key (.local/keys) and creates a few applicants, cases and a
complaint of its own in the demo district, as a clerk at the window would.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import httpx
import jwt

from civicgrid_common.identity.localkeys import private_key_path
from civicgrid_common.identity.tokens import mint_local_token
from civicgrid_common.paths import local_state_dir

STREET, COMMUNITY = "320104001", "320104001001"
OTHER_STREET, OTHER_COMMUNITY = "320104002", "320104002001"
DIBAO = "civil.minimum_living_allowance"
DIBAO_MATERIALS = ["id_card", "household_register", "application_form", "verification_authorisation",
                   "income_statement"]


def bearer(role: str, jurisdiction: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_local_token(role, jurisdiction, **claims)}"}


def resident_number() -> str:
    from civicgrid_intake.domain.identity_numbers import resident_id_check_character

    pick = random.Random()
    body = f"320104{pick.randint(1950, 1989)}{pick.randint(1, 12):02d}{pick.randint(1, 28):02d}{pick.randint(0, 999):03d}"
    return body + resident_id_check_character(body)


@dataclass
class Probe:
    intake: httpx.AsyncClient
    approval: httpx.AsyncClient
    statistics: httpx.AsyncClient
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, saw: str = "") -> bool:
        self.results.append((name, ok, saw))
        print(f"{'PASS' if ok else 'FAIL'}  {name}" + ("" if ok else f"\n      saw: {saw[:400]}"), flush=True)
        return ok


def _problem(r: httpx.Response, status: int, code: str | None = None) -> bool:
    if r.status_code != status or not r.headers.get("content-type", "").startswith("application/problem+json"):
        return False
    body = r.json()
    return body.get("type", "").startswith("/problems/") and (code is None or body.get("code") == code)


def _saw(r: httpx.Response) -> str:
    return f"{r.status_code} {r.text[:300]}"


async def _until(what: str, found: Callable[[], Awaitable[Any]], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await found()
        if value:
            return value
        await asyncio.sleep(0.5)
    raise TimeoutError(f"waited {timeout:g} s for {what}")


# ------------------------------------------------------------------------------ the findings


async def takeover(p: Probe) -> None:
    """1. A clerk of another street registers a known resident with their own street's places."""
    number = resident_number()
    mine = await p.intake.post("/v1/applicants", headers=bearer("window_clerk", STREET), json={
        "kind": "resident", "identity_number": number, "name": "探针居民", "phone": "13912340000",
        "household_registration_code": STREET, "residence_community_code": COMMUNITY})
    applicant = mine.json()["applicant_id"]
    r = await p.intake.post("/v1/applicants", headers=bearer("window_clerk", OTHER_STREET), json={
        "kind": "resident", "identity_number": number, "name": "冒名者",
        "household_registration_code": OTHER_STREET, "residence_community_code": OTHER_COMMUNITY})
    p.check("1 takeover: another street's match is 409 registered_elsewhere, nothing of the person shown",
            _problem(r, 409, "registered_elsewhere") and "13912340000" not in r.text and "探针居民" not in r.text,
            _saw(r))
    own = await p.intake.get(f"/v1/applicants/{applicant}", headers=bearer("window_clerk", STREET))
    p.check("1 takeover: the stored name and places are unchanged for the own street",
            own.status_code == 200 and own.json()["profile"]["name"] == "探针居民"
            and own.json()["profile"]["residence_community_code"] == COMMUNITY, _saw(own))


async def a_dibao_approval(p: Probe) -> tuple[str, str, str]:
    """A 低保 case registered, accepted and routed at intake; the approval approval starts for it."""
    clerk = bearer("window_clerk", STREET)
    applicant = (await p.intake.post("/v1/applicants", headers=clerk, json={
        "kind": "resident", "identity_number": resident_number(), "name": "探针申请人",
        "household_registration_code": STREET, "residence_community_code": COMMUNITY})).json()["applicant_id"]
    case = (await p.intake.post("/v1/cases", headers=clerk, json={
        "applicant_id": applicant, "affair_code": DIBAO, "jurisdiction": COMMUNITY,
        "materials_handed_in": DIBAO_MATERIALS})).json()["id"]
    await p.intake.post(f"/v1/cases/{case}/accept", headers=clerk)
    await p.intake.post(f"/v1/cases/{case}/route", headers=clerk)
    auditor = bearer("auditor", "320104")

    async def started():
        r = await p.approval.get("/v1/approvals", params={"case_id": case}, headers=auditor)
        return r.json()["items"] if r.status_code == 200 and r.json()["items"] else None

    approval = (await _until("the approval of the probe's case", started))[0]["id"]
    return applicant, case, approval


async def extension(p: Probe, approval: str) -> None:
    """2. An extension to 9999-12-31 froze the approval service for a minute."""
    reviewer = bearer("community_reviewer", COMMUNITY, subject="probe-community")
    for day, code in (("9999-12-31", None), ("2150-01-01", "extension-too-long")):
        started = time.monotonic()
        r = await p.approval.post(f"/v1/approvals/{approval}/actions", headers=reviewer,
                                  json={"action": "extend", "comment": "探针", "new_due_date": day})
        took = time.monotonic() - started
        p.check(f"2 extension to {day}: 422 naming new_due_date, answered in {took * 1000:.0f} ms",
                _problem(r, 422, code) and "#/new_due_date" in r.text, _saw(r))
    health = await p.approval.get("/healthz")
    p.check("2 extension: the service still answers", health.status_code == 200, _saw(health))


async def due_dates(p: Probe) -> None:
    """3. A due date from an instant near year 1 or 9999 was a 500 (OverflowError)."""
    for name, client in (("intake", p.intake), ("approval", p.approval)):
        for instant in ("9999-12-30T09:00:00+08:00", "0001-01-01T00:00:00+08:00"):
            r = await client.get("/v1/calendar/due-date", params={"from": instant, "days": 10},
                                 headers=bearer("window_clerk", STREET))
            p.check(f"3 {name} due-date from {instant[:10]}: 422 naming `from`",
                    _problem(r, 422) and any(e.get("field") == "from" for e in r.json()["errors"]), _saw(r))


async def departments_and_grid_workers(p: Probe, applicant: str, approval: str) -> None:
    """4. A department system read residents and approvals not routed to it; so did a grid worker."""
    tax = bearer("department", "320104", department="tax", subject="probe-tax-system")
    r = await p.intake.get(f"/v1/applicants/{applicant}", headers=tax)
    p.check("4 a tax system reads a resident whose case went to civil affairs: 404", _problem(r, 404), _saw(r))
    r = await p.intake.get(f"/v1/applicants/{applicant}", headers=bearer("grid_worker", COMMUNITY))
    p.check("4 a grid worker reads a resident's profile: 403", _problem(r, 403), _saw(r))
    listed = await p.approval.get("/v1/approvals", headers=tax)
    p.check("4 a tax system lists no civil affairs approval",
            listed.status_code == 200 and approval not in [i["id"] for i in listed.json()["items"]], _saw(listed))
    for path in ("", "/verify", "/archive"):
        r = await p.approval.get(f"/v1/approvals/{approval}{path}", headers=tax)
        p.check(f"4 a tax system reads approval{path or ''}: 404", _problem(r, 404), _saw(r))


async def references(p: Probe, approval: str) -> None:
    """5. References that point nowhere were accepted; so was a calendar override's extra field."""
    reviewer = bearer("community_reviewer", COMMUNITY, subject="probe-community")
    r = await p.approval.post(f"/v1/approvals/{approval}/actions", headers=reviewer, json={
        "action": "request_supplement", "comment": "探针", "materials": ["unicorn_permit"]})
    p.check("5 a supplement request for a material not in the checklist: 422", _problem(r, 422, "unknown-material"),
            _saw(r))
    clerk = bearer("window_clerk", STREET)
    complaint = (await p.intake.post("/v1/complaints", headers=clerk, json={
        "category": "public_order", "channel": "phone", "jurisdiction": COMMUNITY, "anonymous": True,
        "location": {"address": "淮海路探针"}})).json()["id"]
    r = await p.intake.post(f"/v1/complaints/{complaint}/route", headers=clerk,
                            json={"kind": "department", "department": "ministry_of_magic"})
    p.check("5 a complaint routed to a department that does not exist: 422",
            _problem(r, 422, "complaint.unknown_department"), _saw(r))
    r = await p.approval.post("/v1/access-applications", headers=bearer("department", "320104",
                                                                        department="market_regulation"), json={
        "department": "market_regulation", "title": "探针", "purpose": "探针", "work_kind": "survey",
        "documents": [{"name": "函", "sha256": "b" * 64}], "communities": ["320105001001"],
        "cost_bearer": "区市场监管局", "valid_from": "2026-05-01", "valid_until": "2026-06-30"})
    p.check("5 an access application for a community outside the district: 422", _problem(r, 422), _saw(r))
    r = await p.intake.put("/v1/calendar/overrides/2099-12-24", headers=bearer("admin", "320104"),
                           json={"is_working_day": False, "reason": "探针", "extra": True})
    p.check("5 intake calendar override with an extra field: 422 naming it",
            _problem(r, 422) and "#/extra" in r.text, _saw(r))
    # The district's calendar is changed at intake alone; approval follows its events and takes
    # no change of its own (there is no second copy to drift).
    r = await p.approval.put("/v1/calendar/overrides/2099-12-24", headers=bearer("admin", "320104"),
                             json={"is_working_day": False, "reason": "探针"})
    p.check("5 approval takes no calendar change of its own: 404 or 405",
            r.status_code in (404, 405) and _problem(r, r.status_code), _saw(r))


async def oracle(p: Probe, case: str) -> None:
    """6. An id outside the caller's jurisdiction was 403 naming its community; unknown was 404."""
    other = bearer("window_clerk", OTHER_STREET)
    seen = await p.intake.get(f"/v1/cases/{case}", headers=other)
    unknown = await p.intake.get(f"/v1/cases/{uuid.uuid4()}", headers=other)
    p.check("6 another street's case is answered as an unknown one (404, nothing of where)",
            _problem(seen, 404) and _problem(unknown, 404) and COMMUNITY not in seen.text
            and seen.json()["type"] == unknown.json()["type"], _saw(seen))


async def problem_shapes(p: Probe) -> None:
    """7. Unreadable bodies, a NUL, jurisdiction refusals: one catalogue of problem types."""
    clerk = {**bearer("window_clerk", STREET), "Content-Type": "application/json"}
    for what, body in (("invalid UTF-8", b'{"kind": "\xff"}'), ("nested 5000 deep", b"[" * 5000 + b"]" * 5000),
                       ("truncated", b'{"kind": ')):
        r = await p.intake.post("/v1/applicants", content=body, headers=clerk)
        p.check(f"7 a body {what}: 400 malformed-body",
                _problem(r, 400) and r.json()["type"] == "/problems/malformed-body", _saw(r))
    r = await p.intake.post("/v1/complaints", headers=clerk, content=json.dumps({
        "category": "public_order", "channel": "phone", "jurisdiction": COMMUNITY, "anonymous": True,
        "location": {"address": "淮海路"}, "description": "夜间\u0000施工"}).encode())
    p.check("7 a NUL in a complaint: 422 naming #/description",
            _problem(r, 422) and [e.get("pointer") for e in r.json()["errors"]] == ["#/description"], _saw(r))
    for r in (await p.intake.get("/v1/complaints/cp-nothing", headers=clerk),
              await p.approval.get(f"/v1/approvals/{uuid.uuid4()}", headers=clerk)):
        page = await p.intake.get(r.json().get("type", "/none"))
        p.check(f"7 {r.request.url.path}: its problem type resolves to a page", page.status_code == 200, _saw(page))


async def tokens(p: Probe) -> None:
    """8. Tokens that authorise nothing, two Authorization headers, the undocumented leeway."""
    key = private_key_path(local_state_dir() / "keys").read_bytes()
    claims = jwt.decode(mint_local_token("window_clerk", STREET), options={"verify_signature": False})
    for what, changed in (("roles: []", {"roles": []}), ("jurisdictions: []", {"jurisdictions": []})):
        forged = jwt.encode({**claims, **changed}, key, algorithm="RS256", headers={"kid": "civicgrid-local-1"})
        r = await p.intake.get("/v1/cases", headers={"Authorization": f"Bearer {forged}"})
        p.check(f"8 a signed token with {what}: 401", _problem(r, 401), _saw(r))
    token = mint_local_token("window_clerk", STREET)
    r = await p.intake.get("/v1/cases", headers=[("Authorization", f"Bearer {token}"),
                                                 ("Authorization", f"Bearer {token}")])
    p.check("8 two Authorization headers: 400", _problem(r, 400), _saw(r))
    schemes = (await p.intake.get("/openapi.json")).json()["components"]["securitySchemes"]
    p.check("8 the clock leeway is documented", any("30 s of leeway" in s.get("description", "")
                                                     for s in schemes.values()), json.dumps(schemes)[:300])


async def dead_letters(settings_bootstrap: str, p: Probe) -> None:
    """9. The test suite left records in the stack's shared dead-letter topic; every one the
    topic holds is shown with its reason, and none may come from a test's event types."""
    from civicgrid_common.consumer import DEAD_LETTER_TOPIC, read_dead_letters

    letters = await read_dead_letters(settings_bootstrap, DEAD_LETTER_TOPIC)
    for d in letters:
        print(f"      dead letter: {d.event_type} from {d.source}, off {d.original_topic} (group "
              f"{d.consumer_group}): {d.error_message[:200]}")
    p.check(f"9 civicgrid.deadletter holds no test's records ({len(letters)} dead letters in all, shown above)",
            not any(d.event_type.startswith("civicgrid.test.") for d in letters),
            ", ".join(d.event_type for d in letters))


async def lag(p: Probe, limit_ms: float | None) -> None:
    for name, client in (("intake", p.intake), ("approval", p.approval), ("statistics", p.statistics)):
        text = (await client.get("/metrics")).text
        worst = next((float(line.split()[-1]) for line in text.splitlines()
                      if line.startswith("civicgrid_event_loop_lag_max_seconds ")), None)
        shown = "not exported" if worst is None else f"{worst * 1000:.0f} ms"
        print(f"      {name}: worst event-loop lag while serving: {shown}")
        if worst is None:
            p.check(f"lag: {name} exports civicgrid_event_loop_lag_max_seconds", False, text[:200])
        elif limit_ms is not None:
            p.check(f"lag: {name} held its loop at most {limit_ms:g} ms", worst * 1000 <= limit_ms, shown)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intake", default="http://127.0.0.1:8001")
    parser.add_argument("--approval", default="http://127.0.0.1:8002")
    parser.add_argument("--statistics", default="http://127.0.0.1:8005")
    parser.add_argument("--kafka", default="127.0.0.1:9092")
    parser.add_argument("--max-lag-ms", type=float, default=None, help="fail if a service's loop lag exceeded it")
    args = parser.parse_args(argv)
    async with httpx.AsyncClient(base_url=args.intake, timeout=60) as intake, \
            httpx.AsyncClient(base_url=args.approval, timeout=60) as approval, \
            httpx.AsyncClient(base_url=args.statistics, timeout=60) as statistics:
        p = Probe(intake, approval, statistics)
        await takeover(p)
        applicant, case, approval_id = await a_dibao_approval(p)
        await extension(p, approval_id)
        await due_dates(p)
        await departments_and_grid_workers(p, applicant, approval_id)
        await references(p, approval_id)
        await oracle(p, case)
        await problem_shapes(p)
        await tokens(p)
        await dead_letters(args.kafka, p)
        await lag(p, args.max_lag_ms)
    failed = [name for name, ok, _ in p.results if not ok]
    print(f"\n{len(p.results) - len(failed)} of {len(p.results)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
