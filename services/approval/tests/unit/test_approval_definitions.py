"""Workflow definitions: the seeds cover the catalogue, bad ones are refused field by field,
versions are events."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from civicgrid_approval.domain.definition import (
    DefinitionIn, InvalidDefinition, Workflow, expand_defaults, parse_definition,
)
from civicgrid_approval.domain.seed import seed_definitions

from approval_builders import MATRIX_DEFINITION, definition

CATALOGUE = Path(__file__).resolve().parents[3] / "intake/civicgrid_intake/domain/seed/affairs.json"


def test_every_seeded_affair_of_the_catalogue_has_a_workflow_and_so_has_access():
    codes = {a["code"] for a in json.loads(CATALOGUE.read_text(encoding="utf-8"))["affairs"]}
    seeded = {d.affair_code for d in seed_definitions()}
    assert codes <= seeded
    assert "access.application" in seeded


def test_the_minimum_living_allowance_runs_community_street_civil_affairs_system_bureau():
    d = next(d for d in seed_definitions() if d.affair_code == "civil.minimum_living_allowance")
    assert [(s.level.value, s.kind.value) for s in d.steps] == [
        ("community", "review"), ("street", "review"), ("department", "department_system"), ("bureau", "review")]


@pytest.mark.parametrize("mutate,pointer", [
    (lambda d: d["steps"][0].update(level="province"), "#/steps/0/level"),
    (lambda d: d["steps"][0].update(time_limit_working_days=0), "#/steps/0/time_limit_working_days"),
    (lambda d: d["steps"][0].update(actions=["approve", "dance"]), "#/steps/0/actions/1"),
    (lambda d: d["steps"][-1].update(may_finish=False), "#"),
    (lambda d: d["steps"][1].update(department="tax"), "#/steps/1"),
    (lambda d: d["steps"][1].update(actions=["approve", "extend"]), "#/steps/1"),
    (lambda d: d["steps"][2].update(branches=[]), "#/steps/2"),
    (lambda d: d.update(unknown=1), "#/unknown"),
])
def test_a_bad_definition_is_refused_field_by_field(mutate, pointer):
    data = json.loads(json.dumps(MATRIX_DEFINITION))
    mutate(data)
    with pytest.raises(InvalidDefinition) as err:
        parse_definition(expand_defaults(data))
    assert pointer in [e["pointer"] for e in err.value.errors], err.value.errors


def test_a_change_is_a_new_version_and_the_same_definition_is_not():
    w = Workflow(Workflow.stream_for("test.matrix"))
    assert w.define(definition(), by="leader", at="2026-03-02T09:00:00+08:00")
    assert not w.define(definition(), by="leader", at="2026-03-02T09:00:00+08:00")
    changed = json.loads(json.dumps(MATRIX_DEFINITION))
    changed["steps"][0]["time_limit_working_days"] = 3
    assert w.define(definition(changed), by="leader", at="2026-03-03T09:00:00+08:00")
    assert w.current_version == 2 and [e.data["version"] for e in w.pending_events] == [1, 2]
    assert w.versions[0].steps[0].time_limit_working_days == 5


def test_a_put_body_takes_its_affair_from_the_path_and_its_roles_from_the_level():
    data = json.loads(json.dumps(MATRIX_DEFINITION))
    data.pop("affair_code", None)
    body = DefinitionIn.model_validate(data)  # what PUT /v1/workflows/{affair_code} gets, typed
    assert body.for_affair("test.matrix") == parse_definition(expand_defaults({**data, "affair_code": "test.matrix"}))
    with pytest.raises(InvalidDefinition) as err:
        DefinitionIn.model_validate({**data, "affair_code": "test.other"}).for_affair("test.matrix")
    assert [e["pointer"] for e in err.value.errors] == ["#/affair_code"]
