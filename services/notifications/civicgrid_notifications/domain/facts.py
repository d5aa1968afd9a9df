"""What notifications remembers about a case or an incident (事由档案): the few facts that later
events of it do not repeat. Pure: no I/O.

An incident's grid is in its `reported` event only (grid keeps it there for good); an approval's
jurisdiction is in its `started` event only. A rule about a later event (an incident fed back and
due for verification on site, an approval step's deadline) still has to reach the grid's workers
or the step's reviewers, so notifications keeps these facts from the first event, keyed by the
case or the incident, and shows them to rules and templates as `about`:
`grid_field: "about.grid"`, `jurisdiction_field: "about.jurisdiction"`, `{{ about.case_number }}`.

The events of one case (approval's topic, keyed by the approval) or of one incident (grid's,
keyed by the incident) come in order on their partition, so the first event is remembered before
the later ones arrive.
"""
from __future__ import annotations

from typing import Any, Mapping

ABOUT = "about"  # the member rules and templates see the facts under; no event's data has one
# Every fact that may be remembered, with what it is (for the error a rule naming another gets).
FACTS: Mapping[str, str] = {
    "grid": "the 15-digit grid an incident was filed in",
    "community": "the 12-digit community of an incident's grid",
    "street": "the 9-digit street of an incident's grid",
    "jurisdiction": "the jurisdiction an approval runs in",
    "case_number": "an approval's receipt number",
    "affair_code": "the affair an approval is for",
}

INCIDENT_REPORTED = "civicgrid.grid.incident.reported.v1"
APPROVAL_STARTED = "civicgrid.approval.approval.started.v1"


def key_of(event_type: str, subject: str | None, data: Mapping[str, Any]) -> str | None:
    """What an event is about, as the facts are keyed: a case (approval's events name it in
    `case_id`; intake's case events are the case's own stream, their subject) or an incident
    (grid's incident events: the incident's stream, their subject)."""
    case_id = data.get("case_id")
    if isinstance(case_id, str) and case_id and event_type.startswith("civicgrid.approval."):
        return f"case:{case_id}"
    if subject and event_type.startswith("civicgrid.intake.case."):
        return f"case:{subject}"
    if subject and event_type.startswith("civicgrid.grid.incident."):
        return f"incident:{subject}"
    return None


def remembered(event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The facts an event tells that later events of its case or incident will not."""
    if event_type == INCIDENT_REPORTED:
        grid = data.get("grid")
        if isinstance(grid, str) and len(grid) == 15:
            return {"grid": grid, "community": grid[:12], "street": grid[:9]}
    elif event_type == APPROVAL_STARTED:
        facts = {name: data.get(name) for name in ("jurisdiction", "case_number", "affair_code")}
        return {k: v for k, v in facts.items() if isinstance(v, str) and v}
    return {}


def fact_problem(path: str) -> str | None:
    """Why a rule's path under `about.` names no fact, or None (also None for a data path)."""
    head, _, rest = path.partition(".")
    if head != ABOUT:
        return None
    if rest in FACTS:
        return None
    return "about. names a fact notifications remembers: " + ", ".join(f"about.{n} ({w})" for n, w in FACTS.items())
