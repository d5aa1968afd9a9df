"""Unknown fields and references to nothing (OWASP API3 mass assignment, API6), over every
operation of intake's, approval's and statistics' OpenAPI documents.

- Unknown fields: every object of every valid request body, given one member more, is a 422
  naming that member, and nothing changes. Server-owned fields cannot be slipped in.
- References: every body member that names something else (a department, a material of the
  checklist, an affair, an applicant, a community of the district, a task, a branch) is given a
  name that names nothing: a 4xx naming the member, nothing changed. Every member of every body
  is classified below as a reference or not, so a new one cannot slip past.
"""
from __future__ import annotations

import copy
from typing import Any, Iterator

import pytest

from checks import attempt, problem_faults
from openapi_walk import body_properties, operations, pointer
from worlds import actor

pytestmark = pytest.mark.integration

# Members that name something that must exist, and a value naming nothing.
NOWHERE = "ministry_of_magic"
REFERENCES: dict[str, Any] = {
    "department": NOWHERE,  # contracts/departments.yaml
    "lead": NOWHERE,
    "co_departments": [NOWHERE],
    "by": NOWHERE,  # the unit giving feedback: the street or a department routed to
    "communities": ["320105001001"],  # a community of another district
    "materials": ["unicorn_permit"],  # the affair's checklist
    "materials_handed_in": ["unicorn_permit"],
    "affair_code": "civil.no_such_affair",  # the catalogue
    "applicant_id": "ap-" + "0" * 32,  # the applicants intake knows
    "task": "no_such_step.9",  # the approval's current task
    "branch": "no_such_branch",  # a parallel step's branch
    # grid's
    "incidents": ["no-such-incident"],  # incidents filed in the grid (a daily report's)
    "patrol_id": "00000000-0000-4000-8000-000000000000",  # the reporter's patrol in the grid
    "photos": ["0" * 64],  # photos uploaded before
    "component_id": "3201040101999999",  # a component registered in the grid
    "codes": ["320104001001998", "320104001001999"],  # active grids of the community (a merge's)
    "classification": {"kind": "event", "major": "99", "minor": "99"},  # the district's classification table
    "grid": "320104001001999",  # an active grid of the community (a sweep's factor)
    # notifications': the rule book's templates, the event types on topics it consumes, their samples
    "template": "no-such-template",
    "event_type": "civicgrid.intake.no_such.v1",
    "event_types": ["civicgrid.intake.no_such.v1"],
}
# Members that name nothing else (values, codes of the caller's own choosing, enums), and why.
NOT_REFERENCES = {
    "kind", "identity_number", "name", "phone", "household_registration_code", "residence_community_code",
    "registered_address_code", "legal_representative", "credit_code", "birth_date", "sex",  # the applicant's data
    "email", "wechat_openid",  # the applicant's addresses for being told (values, not registry entries)
    "evidence",  # an enum: the kind of document shown
    "jurisdiction",  # a code the caller must hold (403 outside-jurisdiction), not a registry entry
    "channel", "category", "urgency", "rating", "level", "action", "work_kind",  # enums
    "location", "address", "address_id", "lat", "long", "description", "anonymous", "media_url",  # a complaint's
    "reason", "comment", "purpose", "answer", "resolved", "certificate_number", "title", "cost_bearer",  # text
    "declared_facts", "registered_unemployed", "holds_disability_certificate",  # declared by the clerk
    "is_working_day", "expected_version", "finish", "new_due_date", "valid_from", "valid_until",
    "documents", "sha256",  # an access application's documents and their digests
    "source",  # the announcement a confirmed calendar schedule was entered from (text)
    "affair",  # a catalogue entry (its members below)
    # A catalogue entry's (intake's Affair): its own code and texts, enums, numbers, the rule's
    # vocabulary; its departments are references above.
    "code", "name_zh", "name_en", "form", "copies", "required", "time_limit_working_days", "eligibility", "rule",
    "rules", "years", "routing", "fee_fen", "open311", "service_code", "service_name", "type", "keywords", "group",
    "source_note",
    "approval_workflow",  # approval's workflow: intake cannot look it up (services meet only through events)
    # A workflow definition's (approval's DefinitionIn): ids and texts of its own, enums, numbers.
    "steps", "id", "roles", "branches", "actions", "may_finish", "max_extensions", "max_extension_working_days",
    # grid's: geometry, a grid's own details, a phone's client id and instants, texts, enums, flags.
    "polygon", "coordinates", "place", "lon", "unit_type", "households", "residents", "responsible_party",
    "parts", "into", "workers", "client_id", "points", "at", "date", "all_safe", "observed_at", "urgent",
    "source_ref", "note", "result", "passed", "nature", "summary", "parties", "mediator", "outcome", "holding",
    "to", "factors", "major", "minor", "limit", "hours", "working_hours", "working_days",
    "handler",  # {kind, code}: the department's code is checked (unknown_department) by the dispatch
    # notifications': a rule's own parts (enums, flags, paths into an event's data, its variants'
    # texts), a webhook's URL (checked for safety, not looked up) and a grace period.
    "channels", "conditions", "recipients", "field", "op", "value", "role", "subject", "jurisdiction_field",
    "grid_field", "department_field", "digest", "enabled", "variants", "url", "allow_private", "grace_hours",
    "in_app", "delivery", "every_minutes",  # a person's preferences: enums and a period
}
_EXTRA = "unexpected_member"


def _objects(body: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every JSON object in a body."""
    if isinstance(body, dict):
        yield path
        for k, v in body.items():
            yield from _objects(v, (*path, k))
    elif isinstance(body, list):
        for i, v in enumerate(body):
            yield from _objects(v, (*path, i))


def _at(body: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        body = body[key]
    return body


def _who(op) -> dict[str, str]:
    return actor(op.roles)


def test_every_body_member_is_classified(world):
    members = {path[-1] for op in operations(world.schema) if op.json_body(world.schema) is not None
               for path, _ in body_properties(op.json_body(world.schema))}
    unclassified = sorted(members - set(REFERENCES) - NOT_REFERENCES)
    assert not unclassified, f"classify these body members in {__file__}: {unclassified}"


async def test_an_unknown_member_anywhere_in_a_body_is_a_422_naming_it(world):
    failures, tried = [], 0
    for op in operations(world.schema):
        valid = world.bodies.get((op.method, op.path))
        if valid is None:
            continue
        for where in _objects(valid):
            body = copy.deepcopy(valid)
            _at(body, where)[_EXTRA] = True
            r, changed = await attempt(world, op, _who(op), body=body)
            tried += 1
            pointers = [e.get("pointer") for e in (r.json().get("errors") or [])] if r.status_code == 422 else []
            expected = pointer((*where, _EXTRA))
            if r.status_code != 422 or not any(p == expected or p.endswith(f"/{_EXTRA}") for p in pointers):
                failures.append(f"{op.label} {expected}: {r.status_code} {r.text[:300]}")
            if changed:
                failures.append(f"{op.label} {expected}: changed the stores")
    assert tried or world.service == "statistics", "no unknown-member case was generated"
    failures += [f for r in world.recorded.responses for f in problem_faults(r)]
    assert not failures, "\n".join(failures)


async def test_a_reference_to_nothing_is_refused_naming_it(world):
    failures, tried = [], 0
    for op in operations(world.schema):
        valid = world.bodies.get((op.method, op.path))
        if not isinstance(valid, dict):
            continue
        for member, nothing in REFERENCES.items():
            if member not in valid:
                continue
            r, changed = await attempt(world, op, _who(op), body={**valid, member: nothing})
            tried += 1
            errors = r.json().get("errors") or [] if r.status_code >= 400 else []
            named = any((e.get("pointer") or "").startswith(f"#/{member}") for e in errors)
            if not (400 <= r.status_code < 500 and named):
                failures.append(f"{op.label} #/{member}={nothing!r}: {r.status_code} {r.text[:300]}")
            if changed:
                failures.append(f"{op.label} #/{member}: a reference to nothing changed the stores")
    assert tried or world.service == "statistics", "no reference case was generated"
    failures += [f for r in world.recorded.responses for f in problem_faults(r)]
    assert not failures, "\n".join(failures)
