"""The shipped seed goes through the catalogue's own commands (so every entry passes the
same validation as an admin's change), covers what a district's windows handle, and replays
to exactly its own JSON."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import date
from typing import Any, Mapping

import pytest
from civicgrid_common.contracts import Contracts
from civicgrid_common.paths import contracts_dir
from pydantic import ValidationError

from civicgrid_intake.domain.affair import affair_to_data
from civicgrid_intake.domain.catalogue import (
    AFFAIR_ADDED,
    AFFAIR_REVISED,
    SEED_REVISION_REASON,
    Catalogue,
    CatalogueRuleViolation,
    affairs_from_seed,
    seed_catalogue,
)
from civicgrid_intake.domain.eligibility import ApplicantFacts, Level, evaluate
from civicgrid_intake.domain.routing import DepartmentHandles, LeadWithCoDepartments, StreetHandles
from civicgrid_intake.domain.seed import seed_document

CONTRACTS = Contracts(contracts_dir())
COMMUNITY = "320104001001"


@pytest.fixture
def seeded() -> Catalogue:
    document = seed_document()
    catalogue = Catalogue(document["catalogue"])
    seed_catalogue(catalogue, affairs_from_seed(document))
    return catalogue


def test_every_seeded_affair_passes_validation_and_its_event_schema(seeded: Catalogue) -> None:
    events = seeded.pending_events
    assert len(events) == len(seed_document()["affairs"]) and all(e.type == AFFAIR_ADDED for e in events)
    for event in events:
        CONTRACTS.validate(event.type, event.data)


def test_the_seed_has_the_required_spread(seeded: Catalogue) -> None:
    affairs = [r.affair for r in seeded.active()]
    assert len(affairs) >= 12
    assert len({a.department for a in affairs}) >= 6
    assert {a.level for a in affairs} == set(Level)
    assert {type(a.routing) for a in affairs} == {StreetHandles, DepartmentHandles, LeadWithCoDepartments}
    groups = {a.open311.group for a in affairs}
    assert {"civil affairs", "labour and social security", "health", "housing", "urban management",
            "disability", "elderly services", "residence"} <= groups
    assert len({a.open311.service_code for a in affairs}) == len(affairs)


def test_every_seeded_entry_says_where_its_figures_come_from(seeded: Catalogue) -> None:
    for revision in seeded.active():
        assert revision.affair.source_note.strip(), f"{revision.code} has no source_note"


def test_the_minimum_living_allowance_runs_community_street_bureau(seeded: Catalogue) -> None:
    dibao = seeded.current("civil.minimum_living_allowance").affair
    assert dibao.routing == DepartmentHandles("civil_affairs")
    assert dibao.approval_workflow == "civil.minimum_living_allowance"
    assert dibao.level is Level.DISTRICT and dibao.fee_fen == 0
    assert {"id_card", "household_register"} <= {m.code for m in dibao.required_materials()}


def test_seeded_rules_judge_real_applicants(seeded: Catalogue) -> None:
    subsidy = seeded.current("labour.flexible_employment_subsidy_4050").affair.eligibility
    woman_of_45 = ApplicantFacts(kind="resident", birth_date=date(1981, 1, 1), sex="female",
                                 household_registration_code=COMMUNITY, residence_code=COMMUNITY)
    man_of_45 = ApplicantFacts(**{**woman_of_45.__dict__, "sex": "male"})
    assert evaluate(subsidy, woman_of_45, place=COMMUNITY, on=date(2026, 3, 2)) == ()
    assert evaluate(subsidy, man_of_45, place=COMMUNITY, on=date(2026, 3, 2))
    sign = seeded.current("urban.shop_sign_approval").affair.eligibility
    assert evaluate(sign, woman_of_45, place=COMMUNITY, on=date(2026, 3, 2))


def test_seeding_again_changes_nothing(seeded: Catalogue) -> None:
    seeded.mark_saved()
    assert seed_catalogue(seeded, affairs_from_seed(seed_document())) == []
    assert seeded.pending_events == ()


def test_a_changed_seed_revises_and_a_retired_entry_stays_retired(seeded: Catalogue) -> None:
    seeded.retire_affair("residence.residence_proof", reason="certificate abolished")
    seeded.mark_saved()
    document = copy.deepcopy(seed_document())
    document["affairs"][0]["time_limit_working_days"] = 25
    assert seed_catalogue(seeded, affairs_from_seed(document)) == [document["affairs"][0]["code"]]
    [event] = seeded.pending_events
    assert event.type == AFFAIR_REVISED and event.data["reason"] == SEED_REVISION_REASON
    assert seeded.is_retired("residence.residence_proof")


def test_a_broken_seed_entry_is_named() -> None:
    document = copy.deepcopy(seed_document())
    document["affairs"][2]["materials"][0]["copies"] = 0
    with pytest.raises(ValidationError) as raised:
        affairs_from_seed(document)
    assert [e["loc"] for e in raised.value.errors()] == [("affairs", 2, "materials", 0, "copies")]
    document = copy.deepcopy(seed_document())
    document["affairs"].append(document["affairs"][0])
    with pytest.raises(CatalogueRuleViolation, match="appears twice") as twice:
        affairs_from_seed(document)
    assert twice.value.field == f"affairs/{len(document['affairs']) - 1}/code"


@dataclass(frozen=True)
class Recorded:
    version: int
    type: str
    data: Mapping[str, Any]


def _as_written(entry: dict[str, Any]) -> dict[str, Any]:
    """A seed entry with the members it may leave out, as the JSON form always carries them."""
    materials = [{**m, "copies": m.get("copies", 1), "required": m.get("required", True)} for m in entry["materials"]]
    return {**entry, "materials": materials, "source_note": entry.get("source_note", "")}


def test_the_replayed_seed_is_the_seed_byte_for_byte(seeded: Catalogue) -> None:
    events = [Recorded(i, e.type, json.loads(json.dumps(e.data))) for i, e in enumerate(seeded.pending_events, 1)]
    replayed = Catalogue.replay(seeded.id, events)
    assert replayed.snapshot_state() == seeded.snapshot_state()
    for entry, event in zip(seed_document()["affairs"], events):
        expected = json.dumps(_as_written(entry), ensure_ascii=False)
        assert json.dumps(event.data["affair"], ensure_ascii=False) == expected
        assert json.dumps(affair_to_data(replayed.current(entry["code"]).affair), ensure_ascii=False) == expected
    assert seed_catalogue(replayed, affairs_from_seed(seed_document())) == []
