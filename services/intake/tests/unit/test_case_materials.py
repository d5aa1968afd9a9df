"""The materials checklist and its once-and-complete answer."""
from __future__ import annotations

import pytest

from civicgrid_intake.domain.materials import InvalidMaterials, MaterialsChecklist

REQUIRED = ("application_form", "household_register", "income_proof", "bank_account")


def test_missing_is_every_item_in_catalogue_order() -> None:
    checklist = MaterialsChecklist.start(REQUIRED, ["bank_account", "application_form"])
    assert checklist.missing == ("household_register", "income_proof")
    assert not checklist.complete
    assert checklist.ordered_handed_in() == ["application_form", "bank_account"]


def test_adding_materials_completes_the_checklist_without_changing_the_old_one() -> None:
    start = MaterialsChecklist.start(REQUIRED, [])
    done = start.with_added(REQUIRED)
    assert done.complete and done.missing == ()
    assert start.missing == REQUIRED


def test_an_affair_without_materials_is_complete_at_once() -> None:
    assert MaterialsChecklist.start((), ()).complete


@pytest.mark.parametrize("required, handed_in, message", [
    (REQUIRED, ["passport"], "not on this affair's checklist: passport"),
    (REQUIRED, ["income_proof", "income_proof"], "listed twice"),
    (("a", "a"), [], "listed twice"),
    (("bad code",), [], "not a material code"),
])
def test_bad_checklists(required, handed_in, message: str) -> None:
    with pytest.raises(InvalidMaterials, match=message):
        MaterialsChecklist.start(required, handed_in)


def test_bad_additions() -> None:
    checklist = MaterialsChecklist.start(REQUIRED, ["income_proof"])
    with pytest.raises(InvalidMaterials, match="at least one"):
        checklist.with_added([])
    with pytest.raises(InvalidMaterials, match="already handed in: income_proof"):
        checklist.with_added(["income_proof", "bank_account"])
