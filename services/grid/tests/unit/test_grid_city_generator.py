"""The generated city of the locate benchmark (load-tests/grid_city.py): valid polygons that
tile without overlapping, codes that nest, grids numbered west to east and north to south, and
GridMap.locate agreeing with it. A small city: no I/O, a fraction of a second."""
from __future__ import annotations

from itertools import pairwise

import pytest
import shapely
from shapely import Point

from civicgrid_grid.domain.codes import CommunityCode, GridCode
from civicgrid_grid.domain.geometry import (AREA_TOLERANCE, CHINA_LAT, CHINA_LON, interiors_overlap, parse_polygon,
                                            to_geojson)

from grid_city import (CELL_LAT, CELL_LON, GRIDS_IN_COMMUNITY, GRIDS_PER_COMMUNITY, GRIDS_PER_STREET, _layout,
                       generate_city, query_points)

N = 620  # 13 communities (the last one partly filled) over two streets


@pytest.fixture(scope="module")
def city():
    return generate_city(N, seed=7)


@pytest.fixture(scope="module")
def grid_map(city):
    return city.grid_map()


def test_the_city_has_n_grids_in_code_order_with_valid_nested_codes(city) -> None:
    codes = list(city.grids)
    assert len(city) == N and codes == sorted(codes) and len(set(codes)) == N
    communities = city.communities()
    assert len(communities) == -(-N // GRIDS_PER_COMMUNITY)
    assert {code[:9] for code in codes} == {"320102001", "320102002"}  # N spans two streets
    for community, members in communities.items():
        parsed = CommunityCode.parse(community)
        for code in members:
            assert code.startswith(community)
            assert GridCode.in_community(code, parsed).community == parsed
        assert [GridCode.parse(c).sequence for c in members] == list(range(1, len(members) + 1))


def test_every_polygon_is_valid_for_the_domain_and_inside_china(city) -> None:
    polygons = list(city.grids.values())
    assert shapely.is_valid(polygons).all()
    for polygon in polygons:
        assert parse_polygon(to_geojson(polygon)).equals(polygon)  # the registry would accept it
        west, south, east, north = polygon.bounds
        assert CHINA_LAT[0] < south < north < CHINA_LAT[1] and CHINA_LON[0] < west < east < CHINA_LON[1]
    west, south, east, north = city.bounds
    assert south < 32.0 < north + 0.5 and 118.0 < west < 118.8 < east + 0.6  # around 32.0N 118.8E


def test_no_two_grids_overlap_and_neighbours_touch(city) -> None:
    codes = list(city.grids)
    polygons = list(city.grids.values())
    tree = shapely.STRtree(polygons)
    touching = 0
    for i, polygon in enumerate(polygons):
        for k in tree.query(polygon, predicate="intersects"):
            if k != i:
                assert not interiors_overlap(polygon, polygons[k]), (codes[i], codes[k])
                touching += 1
    assert touching > 2 * N  # a lattice: each grid shares edges with its neighbours
    # They tile: the union's area is the sum of the areas (nothing counted twice).
    assert abs(shapely.union_all(polygons).area - sum(p.area for p in polygons)) <= AREA_TOLERANCE


def test_grids_are_numbered_west_to_east_then_north_to_south_inside_a_community(city) -> None:
    _, columns = GRIDS_IN_COMMUNITY
    for members in city.communities().values():
        centres = [city.grids[c].centroid for c in members]
        for k, (a, b) in enumerate(pairwise(centres)):
            if (k + 1) % columns:  # the next grid of the same row: east of it
                assert b.x > a.x and abs(b.y - a.y) < CELL_LAT / 2
            else:  # the first grid of the next row: south of it, back at the west
                assert b.y < a.y and b.x < a.x


def test_locate_of_each_representative_point_is_its_own_grid(city, grid_map) -> None:
    for code, polygon in city.grids.items():
        p = polygon.representative_point()
        assert grid_map.locate(p.y, p.x) == code


def test_points_outside_every_grid_are_located_nowhere(city, grid_map) -> None:
    west, south, east, north = city.bounds
    for lat, lon in [(north + 0.01, 118.8), (south - 0.01, (west + east) / 2), (32.0, west - 0.01),
                     (32.0, east + 0.01), (39.9, 116.4)]:
        assert grid_map.locate(lat, lon) is None
    # A lattice cell past the last generated grid is a hole: outside every grid too.
    last_row, last_col = city.cells[list(city.grids)[-1]]
    hole = Point(west + (last_col + 1.5) * CELL_LON, north - (last_row + 0.5) * CELL_LAT)
    assert not any(p.covers(hole) for p in city.grids.values())
    assert grid_map.locate(hole.y, hole.x) is None


def test_query_points_are_deterministic_and_about_5_percent_outside(city, grid_map) -> None:
    q = query_points(city, 2_000)
    assert q == query_points(city, 2_000)
    outside = sum(e is None for e in q.expected)
    assert outside == 100
    assert [grid_map.locate(lat, lon) for lat, lon in q.pairs()] == q.expected


def test_the_same_seed_gives_the_same_city_and_another_seed_another() -> None:
    a, b, c = generate_city(60, seed=1), generate_city(60, seed=1), generate_city(60, seed=2)
    assert list(a.grids) == list(b.grids) == list(c.grids)
    assert all(shapely.equals_exact(a.grids[k], b.grids[k], 0) for k in a.grids)
    assert not all(shapely.equals_exact(a.grids[k], c.grids[k], 0) for k in a.grids)


def test_the_default_city_is_ten_districts_of_a_thousand_communities() -> None:
    codes, cells, districts = _layout(50_000)
    assert districts == 10 and len(codes) == 50_000 == len(set(cells))
    assert len({c[:12] for c in codes}) == 1_000 and len({c[:9] for c in codes}) == 100
    assert len({c[:6] for c in codes}) == 10 and GRIDS_PER_STREET == 500
    assert codes[0] == "320102001001001" and codes[-1] == "320117010010050"
    assert max(r for r, _ in cells) == 199 and max(c for _, c in cells) == 249  # 200 x 250 cells
