"""Geometry of the grids, all of it done by shapely (GEOS): parsing GeoJSON, validity,
containment, overlap, and the R-tree (STRtree) that maps a point to its grid. Pure: no I/O.

Coordinates are WGS84 as GPS gives them, in GeoJSON's order: [longitude, latitude]. (Chinese
web maps draw in GCJ-02, offset by a few hundred metres: converting is the client's job.)

Areas and tolerances are in square degrees, planar: they are only compared with each other
and with AREA_TOLERANCE, never shown as square metres. At 32°N a square degree is about
1.05e10 m², so the tolerance of 1e-10 is about one square metre: far below what a surveyor
draws, far above the rounding noise that splitting a polygon with GEOS leaves on shared edges.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import shapely
from shapely import Point, Polygon, STRtree
from shapely.geometry import mapping, shape
from shapely.geometry.polygon import orient

from civicgrid_grid.domain.rules import InvalidInput

# Rough bounding box of China, South China Sea islands included: a point outside it is surely
# a typo or latitude and longitude swapped, not a grid of ours (intake uses the same box).
CHINA_LAT = (3.8, 53.6)
CHINA_LON = (73.4, 135.1)
AREA_TOLERANCE = 1e-10  # about 1 m² (see above)
MAX_VERTICES = 10_000  # a grid's boundary, holes included; a building's footprint likewise


class InvalidGeometry(InvalidInput):
    """A point or polygon that is not what it must be."""


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidGeometry("invalid_coordinate", f"{field} must be a finite number, got {value!r}", field=field)
    return float(value)


def _check_in_china(lon: float, lat: float, field: str) -> None:
    if not (CHINA_LAT[0] <= lat <= CHINA_LAT[1] and CHINA_LON[0] <= lon <= CHINA_LON[1]):
        raise InvalidGeometry("outside_china", f"({lat}, {lon}) as (latitude, longitude) is not in China; "
                              "are longitude and latitude swapped? GeoJSON puts longitude first", field=field)


@dataclass(frozen=True)
class GeoPoint:
    """A WGS84 position. Constructed by `parse`, which checks it; `point` is shapely's (x=lon, y=lat)."""

    lat: float
    lon: float

    @classmethod
    def parse(cls, lat: Any, lon: Any, *, field: str = "location") -> GeoPoint:
        prefix = f"{field}/" if field else ""
        la, lo = _number(lat, f"{prefix}lat"), _number(lon, f"{prefix}lon")
        if not -90 <= la <= 90:
            raise InvalidGeometry("invalid_coordinate", f"latitude {la} is outside -90..90", field=f"{prefix}lat")
        if not -180 <= lo <= 180:
            raise InvalidGeometry("invalid_coordinate", f"longitude {lo} is outside -180..180", field=f"{prefix}lon")
        _check_in_china(lo, la, field or "location")
        return cls(la, lo)

    @property
    def point(self) -> Point:
        return Point(self.lon, self.lat)

    def to_data(self) -> dict[str, float]:
        return {"lat": self.lat, "lon": self.lon}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> GeoPoint:
        return cls(float(data["lat"]), float(data["lon"]))


# ---------------------------------------------------------------------------- GeoJSON


def _ring(raw: Any, field: str) -> list[tuple[float, float]]:
    if not isinstance(raw, list) or len(raw) < 4:
        raise InvalidGeometry("invalid_ring", "a linear ring has at least 4 positions (3 corners and the first "
                              "again)", field=field)
    ring = []
    for i, position in enumerate(raw):
        if not isinstance(position, list) or len(position) not in (2, 3):
            raise InvalidGeometry("invalid_position", "a position is [longitude, latitude]", field=f"{field}/{i}")
        lon, lat = _number(position[0], f"{field}/{i}/0"), _number(position[1], f"{field}/{i}/1")
        _check_in_china(lon, lat, f"{field}/{i}")
        ring.append((lon, lat))
    if ring[0] != ring[-1]:
        raise InvalidGeometry("ring_not_closed", "a linear ring ends where it begins (RFC 7946 §3.1.6)", field=field)
    return ring


def parse_polygon(geojson: Any, field: str = "polygon") -> Polygon:
    """A GeoJSON Polygon (RFC 7946) as a valid shapely polygon, or InvalidGeometry saying why.

    Validity is shapely's (`is_valid`, OGC simple features): no self-intersection, holes inside
    the shell and not crossing it. `is_valid_reason` (the explain_validity of shapely 2) says
    what is wrong and where, and the refusal carries it."""
    if not isinstance(geojson, Mapping) or geojson.get("type") != "Polygon":
        raise InvalidGeometry("not_a_polygon", 'a GeoJSON object {"type": "Polygon", "coordinates": [...]}',
                              field=field)
    rings = geojson.get("coordinates")
    if not isinstance(rings, list) or not rings:
        raise InvalidGeometry("invalid_polygon", "coordinates: a list of linear rings, the shell first",
                              field=f"{field}/coordinates")
    parsed = [_ring(r, f"{field}/coordinates/{i}") for i, r in enumerate(rings)]
    if sum(len(r) for r in parsed) > MAX_VERTICES:
        raise InvalidGeometry("too_many_vertices", f"at most {MAX_VERTICES} positions", field=field)
    polygon = Polygon(parsed[0], parsed[1:])
    if not shapely.is_valid(polygon):
        reason = shapely.is_valid_reason(polygon)
        raise InvalidGeometry("invalid_polygon", f"the polygon is not valid: {reason}", field=field, reason=reason)
    if polygon.area <= AREA_TOLERANCE:
        raise InvalidGeometry("polygon_too_small", "the polygon encloses no area", field=field)
    return shapely.normalize(polygon)


def parse_point_geometry(geojson: Any, field: str) -> Point:
    if not isinstance(geojson, Mapping) or geojson.get("type") != "Point":
        raise InvalidGeometry("not_a_point", 'a GeoJSON object {"type": "Point", "coordinates": [lon, lat]}',
                              field=field)
    position = geojson.get("coordinates")
    if not isinstance(position, list) or len(position) not in (2, 3):
        raise InvalidGeometry("invalid_position", "a position is [longitude, latitude]", field=f"{field}/coordinates")
    lon, lat = _number(position[0], f"{field}/coordinates/0"), _number(position[1], f"{field}/coordinates/1")
    _check_in_china(lon, lat, f"{field}/coordinates")
    return Point(lon, lat)


def parse_point_or_polygon(geojson: Any, field: str) -> Point | Polygon:
    """A building's place: its entrance (a Point) or its footprint (a Polygon)."""
    if isinstance(geojson, Mapping) and geojson.get("type") == "Point":
        return parse_point_geometry(geojson, field)
    return parse_polygon(geojson, field)


def to_geojson(geometry: Point | Polygon) -> dict[str, Any]:
    """Plain JSON (lists, not tuples), as event data holds it; a polygon's shell counter-
    clockwise and its holes clockwise, as RFC 7946 §3.1.6 asks of writers."""
    def plain(value: Any) -> Any:
        return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value
    raw = mapping(orient(geometry, sign=1.0) if isinstance(geometry, Polygon) else geometry)
    return {"type": raw["type"], "coordinates": plain(raw["coordinates"])}


def from_geojson(data: Mapping[str, Any]) -> Any:
    """A stored geometry back as shapely's: facts are not checked again when replayed."""
    return shape(data)


# ---------------------------------------------------------------------------- relations


def overlap_area(a: Polygon, b: Polygon) -> float:
    return float(shapely.area(shapely.intersection(a, b)))


def interiors_overlap(a: Polygon, b: Polygon) -> bool:
    """Two areas overlap when their interiors meet (DE-9IM interior/interior not empty) by more
    than the tolerance; sharing an edge or a corner is touching, which neighbours do."""
    return bool(shapely.relate_pattern(a, b, "T********")) and overlap_area(a, b) > AREA_TOLERANCE


def outside_area(inner: Polygon, outer: Polygon) -> float:
    """How much of `inner` lies outside `outer` (0 when outer covers it)."""
    if shapely.covers(outer, inner):
        return 0.0
    return float(shapely.area(shapely.difference(inner, outer)))


def lies_within(inner: Point | Polygon, outer: Polygon) -> bool:
    if isinstance(inner, Point):
        return bool(shapely.covers(outer, inner))
    return outside_area(inner, outer) <= AREA_TOLERANCE


def same_area(a: Any, b: Any) -> bool:
    """The same area up to the tolerance: what a split or a merge must keep."""
    return float(shapely.area(shapely.symmetric_difference(a, b))) <= AREA_TOLERANCE


def union(polygons: Iterable[Polygon]) -> Any:
    return shapely.union_all(list(polygons))


# ---------------------------------------------------------------------------- the locate index


class GridMap:
    """Which grid a point is in, over an R-tree of the grids' polygons (shapely's STRtree).

    `STRtree.query(point, predicate="intersects")` finds the polygons whose boxes hold the point
    and keeps those the point intersects, boundary included (for a point, intersects is covers).
    Grids do not overlap, so that is one grid inside a grid, none outside every grid, and two or
    more only on a shared edge or corner. There the point gets exactly one grid all the same:
    the lowest code, a fixed rule (west and north come first in the numbering), so the same
    point always lands in the same grid. The tree holds the polygons in code order, so the
    lowest index found is the lowest code.

    Immutable: a change to the grids builds a new map (STRtree cannot be added to)."""

    def __init__(self, grids: Mapping[str, Polygon]) -> None:
        self._codes = np.array(sorted(grids), dtype=object)
        self._code_list = self._codes.tolist()  # one code by index, without a numpy scalar
        self._polygons = [grids[c] for c in self._codes]
        self._by_code = dict(grids)
        self._tree = STRtree(self._polygons)

    def __len__(self) -> int:
        return len(self._polygons)

    def covering(self, geometry: Point | Polygon) -> list[str]:
        """Every grid the point intersects, in code order (more than one on a shared edge)."""
        found = self._tree.query(geometry, predicate="intersects")
        return [str(c) for c in self._codes.take(np.sort(found))]

    def locate_point(self, point: Point) -> str | None:
        found = self._tree.query(point, predicate="intersects")
        n = len(found)
        if n == 0:
            return None
        # Inside a grid one hit; only on a shared edge or corner several, and then the lowest code.
        return self._code_list[found[0] if n == 1 else found.min()]

    def locate(self, lat: Any, lon: Any) -> str | None:
        """The grid of (lat, lon), or None outside every grid. Refuses a bad coordinate
        (InvalidGeometry naming `lat` or `lon`).

        The hot path of every report: GeoPoint.parse's checks inline, without building a
        GeoPoint. China's box lies inside -90..90 and -180..180, so a point in it passes every
        check; any other is handed to GeoPoint.parse, which refuses it with its reason."""
        la, lo = _number(lat, "lat"), _number(lon, "lon")
        if not (CHINA_LAT[0] <= la <= CHINA_LAT[1] and CHINA_LON[0] <= lo <= CHINA_LON[1]):
            GeoPoint.parse(lat, lon, field="")  # raises
        return self.locate_point(Point(lo, la))

    def overlapping(self, polygon: Polygon, *, ignore: Sequence[str] = ()) -> list[str]:
        """The grids whose interiors overlap this polygon's (touching is not overlapping)."""
        found = self._tree.query(polygon, predicate="intersects")
        return [str(self._codes[i]) for i in np.sort(found)
                if self._codes[i] not in ignore and interiors_overlap(polygon, self._polygons[i])]

    def polygon(self, code: str) -> Polygon:
        return self._by_code[code]
