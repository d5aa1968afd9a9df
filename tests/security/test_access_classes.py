"""Object-level and function-level access (OWASP API1 and API5), over every operation of intake's,
approval's and statistics' OpenAPI documents.

- Object level: every operation whose path names an object of a jurisdiction (an applicant, a
  case, a complaint, an approval) is tried, for every role it admits, by that role in another
  jurisdiction (and, for department systems, by a department the object is not routed to). Each
  gets 404, exactly as for an id that does not exist, names nothing of where the object is, and
  changes nothing.
- Function level: every operation that needs a token is tried by every role it does not admit,
  inside the object's jurisdiction: 403, nothing changed; and without a token: 401.

Every path parameter of every operation must be classified below, so that a new route cannot
slip past either test.
"""
from __future__ import annotations

import pytest

from checks import attempt, leaks_place, problem_faults, send
from openapi_walk import operations
from worlds import ROLES, insider, outsiders

pytestmark = pytest.mark.integration

# Path parameters that name an object of a jurisdiction: only those inside may know it exists.
OBJECTS = {"applicant_id", "case_id", "complaint_id", "approval_id", "incident_id", "dispute_id", "patrol_id",
           "sha256", "item_id"}
# Path parameters that name nothing of a jurisdiction, and why anyone admitted may name them.
NOT_OBJECTS = {
    "code": "an entry of the district's affairs catalogue, which everyone signed in reads",
    "affair_code": "a workflow definition, which every reader of approvals reads",
    "day": "a day of the working-day calendar",
    "year": "a year of the working-day calendar (its announced schedule)",
    "slug": "a type of the public problem catalogue",
    "ext": "Open311's format extension (json, xml)",
    "service_code": "an Open311 service, public by the standard",
    "service_request_id": "an Open311 request: public by the standard, showing only what residents published",
    "token": "an Open311 token, public by the standard",
    "community": "a community's code: the route checks it against the caller's jurisdictions (403)",
    "grid": "a grid's code: the route checks it against the caller's jurisdictions (403)",
    "jurisdiction": "a unit's code: the route checks it against the caller's jurisdictions (403)",
    "month": "a month of the stability sweeps",
    "kind": "a class of the district's classification table, which everyone signed in reads",
    "major": "a class of the district's classification table, which everyone signed in reads",
    "minor": "a class of the district's classification table, which everyone signed in reads",
    "rule_id": "a rule of the district's notification rule book, which only its admin reads and sets",
    "name": "a template of the district's notification rule book, which only its admin reads and sets",
    "department": "a department of contracts/departments.yaml; its webhook only the district's admin sets",
    "delivery_id": "a delivery of the district's ledger, which only its admin reads",
}


def test_every_path_parameter_is_classified(world):
    unclassified = sorted({f"{op.label}: {p}" for op in operations(world.schema) for p in op.path_parameters
                           if p not in OBJECTS and p not in NOT_OBJECTS})
    assert not unclassified, f"classify these path parameters in {__file__}: {unclassified}"
    missing = sorted(p for op in operations(world.schema) for p in op.path_parameters if p not in world.ids)
    assert not missing, f"worlds.py seeds no value for: {missing}"


def test_every_operation_with_a_body_has_a_valid_one_in_the_world(world):
    missing = [op.label for op in operations(world.schema) if op.json_body(world.schema) is not None
               and (op.method, op.path) not in world.bodies]
    assert not missing, f"add a valid body for these operations to tests/security/worlds.py: {missing}"


async def test_an_object_outside_the_callers_reach_is_not_found(world):
    failures, tried = [], 0
    for op in operations(world.schema):
        if op.roles is None or not any(p in OBJECTS for p in op.path_parameters):
            continue
        for role in op.roles or ROLES:
            for who, headers in outsiders(role).items():
                r, changed = await attempt(world, op, headers)
                tried += 1
                if r.status_code != 404:
                    failures.append(f"{op.label} as {who}: {r.status_code} {r.text[:200]}")
                elif r.json()["type"] != "/problems/not-found" or leaks_place(r):
                    failures.append(f"{op.label} as {who}: the 404 differs from an unknown id's: {r.text[:200]}")
                if changed:
                    failures.append(f"{op.label} as {who}: changed the stores")
    assert tried or world.service == "statistics", "no object-level case was generated"
    failures += [f for r in world.recorded.responses for f in problem_faults(r)]
    assert not failures, "\n".join(failures)


async def test_a_role_the_operation_does_not_admit_is_forbidden_and_no_token_is_unauthenticated(world):
    failures, tried = [], 0
    for op in operations(world.schema):
        if op.roles is None:
            continue
        before = await world.state()
        r = await send(world, op, {})
        if r.status_code != 401 or r.json()["type"] != "/problems/unauthenticated":
            failures.append(f"{op.label} without a token: {r.status_code} {r.text[:200]}")
        for role in ROLES:
            if not op.roles or role in op.roles:
                continue
            r = await send(world, op, insider(role))
            tried += 1
            if r.status_code != 403 or r.json()["type"] != "/problems/forbidden":
                failures.append(f"{op.label} as {role}: {r.status_code} {r.text[:200]}")
        if await world.state() != before:
            failures.append(f"{op.label}: a refused request changed the stores")
    assert tried, "no function-level case was generated"
    failures += [f for r in world.recorded.responses for f in problem_faults(r)]
    assert not failures, "\n".join(failures)
