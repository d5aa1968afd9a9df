"""The grid registry: polygons valid, inside the community, not overlapping; the household norm
a warning; grid changes as versioned events that keep the area; buildings and components in
exactly one grid."""
from __future__ import annotations

import pytest
import shapely

from civicgrid_common.problems import Refusal

from civicgrid_grid.domain.classification import ClassKey, Kind
from civicgrid_grid.domain.geometry import GeoPoint, InvalidGeometry, parse_polygon
from civicgrid_grid.domain.registry import (
    BOUNDARY_SET, GRID_DEFINED, GRID_REDRAWN, GRID_REVISED, GRID_SPLIT, GRIDS_MERGED, Grid, GridKind, UnitType,
)
from civicgrid_grid.domain.rules import InvalidInput, StateConflict

from grid_builders import ADMIN, COMMUNITY, T0, box, grid, grid_code, grid_data, registry, replayed, state, ticks

# Two neighbours sharing the edge at lon 118.79 (touching is allowed).
WEST_BOX = box(118.782, 32.022, 118.790, 32.030)
EAST_BOX = box(118.790, 32.022, 118.798, 32.030)
PART_CLASSES = frozenset({ClassKey(Kind.PART, "01", "01"), ClassKey(Kind.PART, "01", "02")})


def two_grids():
    r, t = registry(), ticks()
    r.define_grid(grid(1, WEST_BOX), by=ADMIN, at=next(t))
    r.define_grid(grid(2, EAST_BOX), by=ADMIN, at=next(t))
    return r, t


def test_a_grid_is_defined_as_an_event_of_its_communitys_registry() -> None:
    r = registry()
    assert r.id == "grid-registry:320104001001" and r.stream_type == "grid_registry"
    warnings = r.define_grid(grid(1, WEST_BOX, households=320), by=ADMIN, at=T0)
    assert warnings == []
    assert [e.type for e in r.pending_events] == [BOUNDARY_SET, GRID_DEFINED]
    assert GRID_DEFINED == "civicgrid.grid.registry.grid_defined.v1"
    data = r.pending_events[-1].data
    assert data["grid"]["code"] == "320104001001001" and data["revision"] == 1 and data["warnings"] == []
    assert data["grid"]["polygon"]["type"] == "Polygon"
    assert data["at"] == "2026-03-02T01:00:00+00:00"
    assert r.version == 2 and list(r.grids) == [grid_code(1)]


def test_touching_grids_are_allowed_and_overlapping_ones_refused() -> None:
    r, t = two_grids()
    with pytest.raises(InvalidInput) as refused:
        r.define_grid(grid(3, box(118.788, 32.024, 118.792, 32.028)), by=ADMIN, at=next(t))
    assert refused.value.code == "overlaps_grid" and refused.value.field == "polygon"
    assert refused.value.extra["overlapping"] == [grid_code(1), grid_code(2)]
    # A grid that touches both only along their northern edges is fine.
    r.define_grid(grid(3, box(118.786, 32.030, 118.794, 32.034)), by=ADMIN, at=next(t))
    assert len(r.grids) == 3


def test_a_grid_must_lie_inside_its_community() -> None:
    r = registry()
    with pytest.raises(InvalidInput) as refused:
        r.define_grid(grid(1, box(118.795, 32.030, 118.805, 32.035)), by=ADMIN, at=T0)
    assert refused.value.code == "outside_community" and "50.0%" in refused.value.message
    assert r.version == 1  # nothing emitted


def test_a_grid_needs_the_communitys_boundary_first() -> None:
    with pytest.raises(StateConflict) as refused:
        registry(with_boundary=False).define_grid(grid(1, WEST_BOX), by=ADMIN, at=T0)
    assert refused.value.code == "no_boundary" and refused.value.refusal is Refusal.CONFLICT


def test_a_boundary_that_would_leave_a_grid_out_is_refused() -> None:
    r, t = two_grids()
    with pytest.raises(InvalidInput) as refused:
        r.set_boundary(box(118.78, 32.02, 118.795, 32.04), by=ADMIN, at=next(t))
    assert refused.value.extra["grids"] == [grid_code(2)]


def test_a_grid_code_that_does_not_begin_with_the_communitys_is_refused() -> None:
    data = grid_data(1, WEST_BOX) | {"code": "320104001002001"}
    with pytest.raises(InvalidInput) as refused:
        Grid.from_data(data, COMMUNITY)
    assert (refused.value.code, refused.value.field) == ("grid_not_in_community", "code")


@pytest.mark.parametrize("polygon, code, field", [
    ({"type": "Polygon", "coordinates": [[[118.782, 32.022], [118.79, 32.03], [118.79, 32.022], [118.782, 32.03],
                                          [118.782, 32.022]]]}, "invalid_polygon", "polygon"),  # a bow tie
    ({"type": "Polygon", "coordinates": [[[118.782, 32.022], [118.79, 32.022], [118.79, 32.03],
                                          [118.782, 32.03]]]}, "ring_not_closed", "polygon/coordinates/0"),
    ({"type": "Polygon", "coordinates": [[[32.022, 118.782], [32.022, 118.79], [32.03, 118.79],
                                          [32.022, 118.782]]]}, "outside_china", "polygon/coordinates/0/0"),
    ({"type": "Point", "coordinates": [118.79, 32.03]}, "not_a_polygon", "polygon"),
    ({"type": "Polygon", "coordinates": [[[118.782, 32.022], [118.79, 32.022], [118.782, 32.022]]]},
     "invalid_ring", "polygon/coordinates/0"),
    ({"type": "Polygon", "coordinates": [[[118.782, 32.022], ["118.79", 32.022], [118.79, 32.03],
                                          [118.782, 32.022]]]}, "invalid_coordinate", "polygon/coordinates/0/1/0"),
])
def test_a_polygon_that_is_not_valid_is_refused_saying_why(polygon: dict, code: str, field: str) -> None:
    with pytest.raises(InvalidGeometry) as refused:
        Grid.from_data(grid_data(1, polygon), COMMUNITY)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert refused.value.problem().status == 422


def test_validity_is_shapelys_and_the_refusal_carries_its_reason() -> None:
    bow_tie = {"type": "Polygon", "coordinates": [[[118.782, 32.022], [118.79, 32.03], [118.79, 32.022],
                                                   [118.782, 32.03], [118.782, 32.022]]]}
    with pytest.raises(InvalidGeometry) as refused:
        parse_polygon(bow_tie)
    assert refused.value.extra["reason"].startswith("Self-intersection")
    assert refused.value.extra["reason"] in refused.value.message
    # A hole is fine; a hole that crosses its shell is not.
    shell = [[118.782, 32.022], [118.79, 32.022], [118.79, 32.03], [118.782, 32.03], [118.782, 32.022]]
    hole = [[118.784, 32.024], [118.786, 32.024], [118.786, 32.026], [118.784, 32.024]]
    assert parse_polygon({"type": "Polygon", "coordinates": [shell, hole]}).interiors
    crossing = [[118.788, 32.024], [118.795, 32.024], [118.795, 32.026], [118.788, 32.024]]
    with pytest.raises(InvalidGeometry, match="not valid"):
        parse_polygon({"type": "Polygon", "coordinates": [shell, crossing]})


def test_a_residential_grid_outside_250_to_500_households_is_recorded_with_a_warning() -> None:
    r, t = registry(), ticks()
    assert r.define_grid(grid(1, WEST_BOX, households=500), by=ADMIN, at=next(t)) == []
    warnings = r.define_grid(grid(2, EAST_BOX, households=180), by=ADMIN, at=next(t))
    assert [w["code"] for w in warnings] == ["households_outside_norm"]
    assert r.pending_events[-1].data["warnings"] == warnings and grid_code(2) in r.grids  # allowed, not refused
    # A unit grid has no household norm; it names its unit type.
    school = grid(3, box(118.782, 32.030, 118.790, 32.034), kind="unit", households=0, unit_type="school")
    assert school.kind is GridKind.UNIT and school.unit_type is UnitType.SCHOOL
    assert r.define_grid(school, by=ADMIN, at=next(t)) == []
    with pytest.raises(InvalidInput) as refused:
        grid(4, WEST_BOX, kind="unit", households=0)
    assert refused.value.field == "unit_type"
    with pytest.raises(InvalidInput):
        grid(4, WEST_BOX, unit_type="market")


def test_revising_a_grids_households_records_the_warning_and_a_new_revision() -> None:
    r, t = two_grids()
    warnings = r.revise_grid(grid_code(1), {"households": 620}, reason="new estate moved in", by=ADMIN, at=next(t))
    assert warnings[0]["households"] == 620
    event = r.pending_events[-1]
    assert event.type == GRID_REVISED and event.data["changed"] == ["households"] and event.data["revision"] == 2
    with pytest.raises(InvalidInput, match="already so"):
        r.revise_grid(grid_code(1), {"households": 620}, reason="again", by=ADMIN, at=next(t))
    with pytest.raises(InvalidInput) as refused:
        r.revise_grid(grid_code(1), {"polygon": WEST_BOX}, reason="sneaky", by=ADMIN, at=next(t))
    assert refused.value.field == "changes/polygon"


def test_a_grid_code_is_never_reused() -> None:
    r, t = two_grids()
    with pytest.raises(InvalidInput, match="defined already"):
        r.define_grid(grid(1, box(118.782, 32.030, 118.790, 32.034)), by=ADMIN, at=next(t))
    r.retire_grid(grid_code(2), reason="demolished for the metro", by=ADMIN, at=next(t))
    with pytest.raises(InvalidInput) as refused:
        r.define_grid(grid(2, EAST_BOX), by=ADMIN, at=next(t))
    assert refused.value.code == "grid_code_retired"


def test_redrawing_a_grid_rechecks_overlap_and_keeps_its_buildings() -> None:
    r, t = two_grids()
    with pytest.raises(InvalidInput) as refused:
        r.redraw_grid(grid_code(1), box(118.782, 32.022, 118.792, 32.030), reason="x", by=ADMIN, at=next(t))
    assert refused.value.code == "overlaps_grid"
    r.register_building(grid_code(1), "00001", {"type": "Point", "coordinates": [118.783, 32.029]}, by=ADMIN,
                        at=next(t))
    with pytest.raises(InvalidInput) as refused:
        r.redraw_grid(grid_code(1), box(118.784, 32.022, 118.790, 32.030), reason="x", by=ADMIN, at=next(t))
    assert refused.value.code == "would_leave_out" and refused.value.extra["left_out"] == ["32010400100100100001"]
    r.redraw_grid(grid_code(1), box(118.782, 32.020, 118.790, 32.030), reason="take in the park", by=ADMIN,
                  at=next(t))
    assert r.pending_events[-1].type == GRID_REDRAWN and r.revisions[grid_code(1)] == 2
    assert r.locate(32.021, 118.785) == grid_code(1)


def test_a_split_keeps_the_area_and_moves_buildings_and_components_with_their_ground() -> None:
    r, t = two_grids()
    r.register_building(grid_code(1), "00007", box(118.783, 32.023, 118.784, 32.024), by=ADMIN, at=next(t))
    r.register_component("3201040101000001", GeoPoint(32.028, 118.785), part_classes=PART_CLASSES, by=ADMIN,
                         at=next(t))
    south, north = grid(3, box(118.782, 32.022, 118.790, 32.026)), grid(4, box(118.782, 32.026, 118.790, 32.030))
    before = r.grids[grid_code(1)].polygon
    r.split_grid(grid_code(1), [south, north], reason="too many households", by=ADMIN, at=next(t))
    event = r.pending_events[-1]
    assert event.type == GRID_SPLIT and [p["code"] for p in event.data["parts"]] == [grid_code(3), grid_code(4)]
    assert sorted(r.grids) == [grid_code(2), grid_code(3), grid_code(4)] and grid_code(1) in r.retired
    after = shapely.union_all([r.grids[grid_code(3)].polygon, r.grids[grid_code(4)].polygon])
    assert shapely.symmetric_difference(before, after).area < 1e-12
    assert abs(after.area - before.area) < 1e-12
    assert list(r.buildings) == ["32010400100100300007"]
    assert r.components["3201040101000001"].grid.value == grid_code(4)
    assert event.data["buildings"] == [{"from": "32010400100100100007", "to": "32010400100100300007"}]
    assert r.locate(32.024, 118.785) == grid_code(3) and r.locate(32.028, 118.785) == grid_code(4)


def test_a_split_that_changes_the_area_or_overlaps_is_refused() -> None:
    r, t = two_grids()
    gap = [grid(3, box(118.782, 32.022, 118.790, 32.025)), grid(4, box(118.782, 32.026, 118.790, 32.030))]
    with pytest.raises(InvalidInput) as refused:
        r.split_grid(grid_code(1), gap, reason="x", by=ADMIN, at=next(t))
    assert refused.value.code == "split_changes_area"
    overlapping = [grid(3, box(118.782, 32.022, 118.790, 32.027)), grid(4, box(118.782, 32.026, 118.790, 32.030))]
    with pytest.raises(InvalidInput) as refused:
        r.split_grid(grid_code(1), overlapping, reason="x", by=ADMIN, at=next(t))
    assert (refused.value.code, refused.value.field) == ("parts_overlap", "parts/1/polygon")
    # Parts that cover the grid and a slice of the neighbour do not keep the area either.
    greedy = [grid(3, box(118.782, 32.022, 118.790, 32.026)), grid(4, box(118.782, 32.026, 118.792, 32.030))]
    with pytest.raises(InvalidInput, match="exactly"):
        r.split_grid(grid_code(1), greedy, reason="x", by=ADMIN, at=next(t))
    with pytest.raises(InvalidInput):
        r.split_grid(grid_code(1), [grid(3, WEST_BOX)], reason="x", by=ADMIN, at=next(t))
    with pytest.raises(InvalidInput) as refused:
        r.split_grid(grid_code(1), [grid(2, box(118.782, 32.022, 118.790, 32.026)),
                                    grid(4, box(118.782, 32.026, 118.790, 32.030))], reason="x", by=ADMIN, at=next(t))
    assert refused.value.field == "parts/0/code"
    assert r.version == 3  # boundary and two grids: nothing else was emitted


def test_a_split_through_a_building_is_refused() -> None:
    r, t = two_grids()
    r.register_building(grid_code(1), "00001", box(118.783, 32.025, 118.784, 32.027), by=ADMIN, at=next(t))
    parts = [grid(3, box(118.782, 32.022, 118.790, 32.026)), grid(4, box(118.782, 32.026, 118.790, 32.030))]
    with pytest.raises(InvalidInput) as refused:
        r.split_grid(grid_code(1), parts, reason="x", by=ADMIN, at=next(t))
    assert refused.value.code == "cut_through_building"


def test_a_merge_is_exactly_the_union_of_neighbours() -> None:
    r, t = two_grids()
    r.register_building(grid_code(1), "00001", {"type": "Point", "coordinates": [118.785, 32.025]}, by=ADMIN,
                        at=next(t))
    r.register_building(grid_code(2), "00002", {"type": "Point", "coordinates": [118.795, 32.025]}, by=ADMIN,
                        at=next(t))
    with pytest.raises(InvalidInput) as refused:
        r.merge_grids([grid_code(1), grid_code(2)], grid(3, box(118.782, 32.022, 118.797, 32.030)), reason="x",
                      by=ADMIN, at=next(t))
    assert (refused.value.code, refused.value.field) == ("merge_changes_area", "into/polygon")
    whole = box(118.782, 32.022, 118.798, 32.030)
    r.merge_grids([grid_code(1), grid_code(2)], grid(3, whole, households=480), reason="community merged grids",
                  by=ADMIN, at=next(t))
    assert r.pending_events[-1].type == GRIDS_MERGED and list(r.grids) == [grid_code(3)]
    assert sorted(r.buildings) == ["32010400100100300001", "32010400100100300002"]
    assert r.locate(32.025, 118.795) == grid_code(3)


def test_merging_grids_that_do_not_touch_or_whose_buildings_collide_is_refused() -> None:
    r, t = two_grids()
    r.define_grid(grid(3, box(118.782, 32.032, 118.790, 32.036)), by=ADMIN, at=next(t))
    with pytest.raises(InvalidInput) as refused:
        r.merge_grids([grid_code(1), grid_code(3)], grid(4, box(118.782, 32.022, 118.790, 32.036)), reason="x",
                      by=ADMIN, at=next(t))
    assert refused.value.code == "grids_not_adjacent"
    for code, lon in ((grid_code(1), 118.785), (grid_code(2), 118.795)):
        r.register_building(code, "00001", {"type": "Point", "coordinates": [lon, 32.025]}, by=ADMIN, at=next(t))
    with pytest.raises(InvalidInput) as refused:
        r.merge_grids([grid_code(1), grid_code(2)], grid(4, box(118.782, 32.022, 118.798, 32.030)), reason="x",
                      by=ADMIN, at=next(t))
    assert refused.value.code == "building_codes_collide"


def test_a_building_lies_in_exactly_one_grid() -> None:
    r, t = two_grids()
    bid = r.register_building(grid_code(1), "00001", box(118.783, 32.023, 118.784, 32.024), name="3号楼", by=ADMIN,
                              at=next(t))
    assert str(bid) == "32010400100100100001"
    cases = [
        ({"type": "Point", "coordinates": [118.795, 32.025]}, "building_outside_grid"),  # in the neighbour
        ({"type": "Point", "coordinates": [118.790, 32.025]}, "building_on_grid_border"),  # on the shared edge
        (box(118.789, 32.023, 118.791, 32.024), "building_outside_grid"),  # across the edge
    ]
    for i, (place, code) in enumerate(cases, start=2):
        with pytest.raises(InvalidInput) as refused:
            r.register_building(grid_code(1), f"0000{i}", place, by=ADMIN, at=next(t))
        assert (refused.value.code, refused.value.field) == (code, "place")
    with pytest.raises(InvalidInput) as refused:
        r.register_building(grid_code(1), "00001", {"type": "Point", "coordinates": [118.785, 32.025]}, by=ADMIN,
                            at=next(t))
    assert refused.value.code == "building_exists"


def test_a_component_is_located_in_exactly_one_grid_and_belongs_to_a_part_class() -> None:
    r, t = two_grids()
    assert r.register_component("3201040102000001", GeoPoint(32.025, 118.795), part_classes=PART_CLASSES,
                                by=ADMIN, at=next(t)) == grid_code(2)
    cases = [
        ("3201050102000001", GeoPoint(32.025, 118.795), "component_of_other_district", "component_id"),
        ("3201040199000001", GeoPoint(32.025, 118.795), "unknown_class", "component_id"),
        ("3201040102000001", GeoPoint(32.026, 118.796), "component_exists", "component_id"),
        ("3201040102000002", GeoPoint(32.025, 118.790), "component_on_grid_border", "location"),
        ("3201040102000003", GeoPoint(32.035, 118.795), "outside_every_grid", "location"),
    ]
    for cid, where, code, field in cases:
        with pytest.raises(InvalidInput) as refused:
            r.register_component(cid, where, part_classes=PART_CLASSES, by=ADMIN, at=next(t))
        assert (refused.value.code, refused.value.field) == (code, field)


def test_a_grid_with_buildings_cannot_simply_be_retired() -> None:
    r, t = two_grids()
    r.register_building(grid_code(2), "00001", {"type": "Point", "coordinates": [118.795, 32.025]}, by=ADMIN,
                        at=next(t))
    with pytest.raises(StateConflict) as refused:
        r.retire_grid(grid_code(2), reason="x", by=ADMIN, at=next(t))
    assert refused.value.code == "grid_not_empty"


def test_instants_do_not_go_backwards_and_must_be_timezone_aware() -> None:
    r, t = two_grids()
    with pytest.raises(StateConflict) as refused:
        r.define_grid(grid(3, box(118.782, 32.030, 118.790, 32.034)), by=ADMIN, at=T0)
    assert refused.value.code == "time_goes_backwards"
    with pytest.raises(InvalidInput) as refused:
        r.define_grid(grid(3, box(118.782, 32.030, 118.790, 32.034)), by=ADMIN, at=T0.replace(tzinfo=None))
    assert refused.value.code == "naive_instant"


def test_replaying_the_registrys_events_gives_the_same_state() -> None:
    r, t = two_grids()
    r.register_building(grid_code(1), "00007", box(118.783, 32.023, 118.784, 32.024), by=ADMIN, at=next(t))
    r.register_component("3201040101000001", GeoPoint(32.025, 118.795), part_classes=PART_CLASSES, by=ADMIN,
                         at=next(t))
    r.revise_grid(grid_code(2), {"name": "东网格"}, reason="renamed", by=ADMIN, at=next(t))
    r.split_grid(grid_code(1), [grid(3, box(118.782, 32.022, 118.790, 32.026)),
                                grid(4, box(118.782, 32.026, 118.790, 32.030))], reason="x", by=ADMIN, at=next(t))
    r.merge_grids([grid_code(2), grid_code(4)], grid(5, _union_geojson(r, 2, 4)), reason="y", by=ADMIN, at=next(t))
    again = replayed(r)
    assert state(again) == state(r)
    assert again.version == r.version == 8
    assert again.locate(32.025, 118.795) == r.locate(32.025, 118.795) == grid_code(5)


def _union_geojson(r, *sequences: int) -> dict:
    from civicgrid_grid.domain.geometry import to_geojson
    return to_geojson(shapely.union_all([r.grids[grid_code(s)].polygon for s in sequences]))
