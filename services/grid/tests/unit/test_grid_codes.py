"""The codes of the grid world: each level extends the one above it, and a bad code is refused
naming the field it was written in."""
from __future__ import annotations

import pytest

from civicgrid_common.problems import Refusal

from civicgrid_grid.domain.codes import (
    BuildingCode, BuildingId, CommunityCode, ComponentId, DistrictCode, GridCode, InvalidCode, StreetCode,
)


def test_a_grid_code_is_district_street_community_and_sequence() -> None:
    code = GridCode.parse("320104001001007")
    assert code.community == CommunityCode("320104001001")
    assert code.street == StreetCode("320104001")
    assert code.community.district == DistrictCode("320104")
    assert code.sequence == 7
    assert str(code) == "320104001001007"


@pytest.mark.parametrize("cls, value", [
    (DistrictCode, "32010"), (DistrictCode, "3201041"), (StreetCode, "32010400"), (CommunityCode, "3201040010011"),
    (GridCode, "32010400100100"), (GridCode, "32010400100100a"), (GridCode, 320104001001001),
    (GridCode, "３２０１０４００１００１００１"),  # full-width digits are digits to str.isdigit, not to us
    (BuildingCode, "1234"), (ComponentId, "320104010100000"),
])
def test_a_code_of_the_wrong_length_or_not_digits_is_refused(cls: type, value: object) -> None:
    with pytest.raises(InvalidCode) as refused:
        cls.parse(value, field="code")
    assert refused.value.refusal is Refusal.INVALID
    assert refused.value.field == "code"


@pytest.mark.parametrize("value, why", [
    ("320104001001000", "grid sequence 000"), ("320104001000001", "community 000"),
    ("320104000001001", "street 000"), ("320100001001001", "a prefecture, not a district"),
    ("990104001001001", "no province 99"), ("050104001001001", "no province 05"),
])
def test_all_zero_segments_and_impossible_districts_are_refused(value: str, why: str) -> None:
    with pytest.raises(InvalidCode, match=r"zero|province"):
        GridCode.parse(value)


def test_a_grid_code_must_begin_with_its_communitys_code() -> None:
    community = CommunityCode.parse("320104001001")
    assert GridCode.in_community("320104001001002", community).sequence == 2
    with pytest.raises(InvalidCode) as refused:
        GridCode.in_community("320104001002002", community, field="grids/0/code")
    assert refused.value.code == "grid_not_in_community"
    assert refused.value.field == "grids/0/code"
    assert "320104001001" in refused.value.message


def test_a_building_is_five_digits_within_its_grid() -> None:
    assert BuildingCode.parse("00012").value == "00012"
    with pytest.raises(InvalidCode):
        BuildingCode.parse("00000")
    bid = BuildingId.parse("32010400100100100012")
    assert bid.grid == GridCode("320104001001001") and bid.building == BuildingCode("00012")
    assert str(bid) == "32010400100100100012"


def test_a_component_id_is_admin_major_minor_serial() -> None:
    cid = ComponentId.parse("3201040102000123")
    assert (cid.district, cid.major, cid.minor, cid.serial) == (DistrictCode("320104"), "01", "02", "000123")
    for bad in ("3201040002000123", "3201040100000123", "3201040102000000"):
        with pytest.raises(InvalidCode, match="zero"):
            ComponentId.parse(bad)
