"""What notifications remembers about a case or an incident (事由档案): the few facts that later
events of it do not repeat. Pure: no I/O.

An incident's grid is in its `reported` event only (grid keeps it there for good); an approval's
jurisdiction is in its `started` event only. A rule about a later event (an incident fed back and
due for verification on site, an approval step's deadline) still has to reach the grid's workers
or the step's reviewers, so notifications keeps these facts from the first event, keyed by the
case or the incident, and shows them to rules and templates as `about`:
`grid_field: "about.grid"`, `jurisdiction_field: "about.jurisdiction"`, `{{ about.case_number }}`.

An approval's steps are remembered too (from the workflow definition its `started` event carries,
as it was for this case): a later event names a step by its id only, and ids differ from one
workflow to the next (`bureau_decision`, `district_approval`, `street_decision`, ...). Rules must
reach a step's reviewers by its level, so each event is shown the level and the name of the step
it names (`about.step_level`, `about.step_name`) and of the step an action moved the case to
(`about.next_step_level`, `about.next_step_name`).

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
    "affair_name": "the name of the affair's workflow (e.g. 最低生活保障申请)",
    "steps": "an approval's steps: id -> {level, name}",
    "step_level": "the level (community, street, bureau, department) of the step the event names",
    "step_name": "the name of the step the event names (its level's when the workflow gives none)",
    "next_step_level": "the level of the step an action moved the case to (`to_step`)",
    "next_step_name": "the name of the step an action moved the case to",
}
# A step's name when its workflow gives none: what its level's reviewers do.
LEVEL_NAMES = {"community": "社区审核", "street": "街道审核", "bureau": "区级部门审批", "department": "部门系统核对"}
# Facts shown with each event, worked out from the remembered ones (never stored).
DERIVED = ("step_level", "step_name", "next_step_level", "next_step_name")

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
        facts: dict[str, Any] = {name: data.get(name) for name in ("jurisdiction", "case_number", "affair_code")}
        definition = data.get("definition")
        if isinstance(definition, Mapping):
            facts["affair_name"] = definition.get("name_zh")
            if steps := _steps(definition):
                facts["steps"] = steps
        return {k: v for k, v in facts.items() if (isinstance(v, str) and v) or (isinstance(v, dict) and v)}
    return {}


def _steps(definition: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    steps = definition.get("steps")
    for step in steps if isinstance(steps, list) else ():
        if isinstance(step, Mapping) and isinstance(step.get("id"), str) and isinstance(step.get("level"), str):
            name = step.get("name_zh")
            if not isinstance(name, str) or not name:
                name = LEVEL_NAMES.get(step["level"], step["id"])
            out[step["id"]] = {"level": step["level"], "name": name}
    return out


def shown(data: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any]:
    """The facts an event is shown: the remembered ones, and the level and name of the step it
    names (`step`) and of the one it moved the case to (`to_step`), where the steps are known."""
    out = {k: v for k, v in facts.items() if k not in DERIVED}
    steps = facts.get("steps")
    if not isinstance(steps, Mapping):
        return out
    for prefix, member in (("", "step"), ("next_", "to_step")):
        if member == "to_step" and data.get("to_step") == data.get("step"):
            continue  # not moved (a co-department's opinion, an extension): no step is reached
        step = steps.get(data.get(member)) if isinstance(data.get(member), str) else None
        if isinstance(step, Mapping):
            out[f"{prefix}step_level"] = step.get("level")
            out[f"{prefix}step_name"] = step.get("name")
    return out


def fact_problem(path: str) -> str | None:
    """Why a rule's path under `about.` names no fact, or None (also None for a data path)."""
    head, _, rest = path.partition(".")
    if head != ABOUT:
        return None
    if rest in FACTS:
        return None
    return "about. names a fact notifications remembers: " + ", ".join(f"about.{n} ({w})" for n, w in FACTS.items())
