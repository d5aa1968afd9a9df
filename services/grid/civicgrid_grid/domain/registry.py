"""The grid registry (网格台账): a community's responsibility grids, its buildings and its
components, one aggregate per community (stream `grid-registry:<community code>`). Pure: no I/O.

A community is cut into grids that do not overlap and lie inside the community's boundary
(which the registry holds too). Grids are residential (居民网格, a residents' area of some 250
to 500 households) or unit grids (单位网格: a market, a school, a hospital, a campus with clear
boundaries); a residential grid outside 250-500 households is allowed, with a warning recorded
on its event, because the norm is a guide for drawing, not a law of the land.

Grid changes are events, versioned: a grid is defined, revised (its details), redrawn (its
polygon), split into new grids or merged with neighbours into a new one, and retired. A grid
code is never reused (a split or merge makes new codes and retires the old ones), so an
incident that keeps the grid it was filed in always names one grid's history. A split or merge
keeps the area exactly (up to geometry.AREA_TOLERANCE) and the new grids are checked against
every other grid again; buildings and components move with their ground.

A building (楼栋, 5 digits within its grid) and a component (部件, a 16-digit id) lie in exactly
one grid: a place on the border between two grids is refused, since which grid answers for it
would be a coin toss.

Rules are checked when a command is given; replay reads the facts as recorded.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Collection, Mapping, Sequence

from shapely import Point, Polygon

from civicgrid_common.aggregate import applies

from civicgrid_grid.domain.classification import ClassKey, Kind, UnknownClass
from civicgrid_grid.domain.codes import BuildingCode, BuildingId, CommunityCode, ComponentId, GridCode, InvalidCode
from civicgrid_grid.domain.geometry import (
    GeoPoint, GridMap, from_geojson, interiors_overlap, lies_within, outside_area, parse_point_or_polygon,
    parse_polygon, same_area, to_geojson, union,
)
from civicgrid_grid.domain.rules import (
    MAX_NAME, PREFIX, GridAggregate, InvalidInput, StateConflict, iso, subject, text, utc,
)

_P = PREFIX + "registry."
BOUNDARY_SET = _P + "boundary_set.v1"
GRID_DEFINED = _P + "grid_defined.v1"
GRID_REVISED = _P + "grid_revised.v1"
GRID_REDRAWN = _P + "grid_redrawn.v1"
GRID_SPLIT = _P + "grid_split.v1"
GRIDS_MERGED = _P + "grids_merged.v1"
GRID_RETIRED = _P + "grid_retired.v1"
BUILDING_REGISTERED = _P + "building_registered.v1"
COMPONENT_REGISTERED = _P + "component_registered.v1"
WORKERS_ASSIGNED = _P + "workers_assigned.v1"
EVENT_TYPES = (BOUNDARY_SET, GRID_DEFINED, GRID_REVISED, GRID_REDRAWN, GRID_SPLIT, GRIDS_MERGED, GRID_RETIRED,
               BUILDING_REGISTERED, COMPONENT_REGISTERED,
               WORKERS_ASSIGNED)

HOUSEHOLDS_NORM = (250, 500)  # a residential grid's households, as the reform's guidance draws them
MAX_HOUSEHOLDS = 100_000
MAX_RESIDENTS = 1_000_000
MAX_PARTS = 20
MAX_WORKERS = 20  # a grid's workers: a full-time worker (专职网格员) and part-time helpers


class GridKind(str, enum.Enum):
    RESIDENTIAL = "residential"  # 居民网格
    UNIT = "unit"  # 单位网格 (专属网格)


class UnitType(str, enum.Enum):
    """What the unit of a unit grid is."""

    MARKET = "market"  # 商场, 市场
    SCHOOL = "school"
    HOSPITAL = "hospital"
    CAMPUS = "campus"  # a university's or a research institute's
    ENTERPRISE = "enterprise"  # an industrial park, a large firm
    GOVERNMENT = "government"  # an office compound
    PARK = "park"  # a park or scenic area with its own management
    TRANSPORT = "transport"  # a station, a depot
    OTHER = "other"


def _count(value: Any, limit: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise InvalidInput("invalid_count", f"{field} is a whole number from 0 to {limit}", field=field)
    return value


@dataclass(frozen=True)
class Grid:
    """A unit grid as defined: code, kind (and unit type), name, polygon, counts, responsible party.

    `responsible_party` names who answers for the grid: a staff subject or, for a unit grid,
    the unit itself (never a phone number: grid workers' contacts live with the people service)."""

    code: GridCode
    kind: GridKind
    name: str
    polygon: Polygon
    households: int
    residents: int
    responsible_party: str
    unit_type: UnitType | None = None

    @classmethod
    def from_data(cls, data: Any, community: CommunityCode, field: str = "") -> Grid:
        """The JSON form (API bodies, split parts), every rule checked; `field` prefixes the
        member paths of a refusal ('parts/1')."""
        at = f"{field}/" if field else ""
        if not isinstance(data, Mapping):
            raise InvalidInput("invalid_grid", "a grid is an object", field=field or "grid")
        code = GridCode.in_community(data.get("code"), community, f"{at}code")
        try:
            kind = GridKind(data.get("kind"))
        except ValueError:
            raise InvalidInput("unknown_grid_kind", "kind is residential or unit", field=f"{at}kind") from None
        unit_type = data.get("unit_type")
        if kind is GridKind.UNIT:
            try:
                unit_type = UnitType(unit_type)
            except ValueError:
                known = ", ".join(u.value for u in UnitType)
                raise InvalidInput("unknown_unit_type", f"a unit grid names its unit type: {known}",
                                   field=f"{at}unit_type") from None
        elif unit_type is not None:
            raise InvalidInput("unit_type_of_residential_grid", "a residential grid has no unit type",
                               field=f"{at}unit_type")
        return cls(code=code, kind=kind, name=text(data.get("name"), f"{at}name", limit=MAX_NAME),
                   polygon=parse_polygon(data.get("polygon"), f"{at}polygon"),
                   households=_count(data.get("households"), MAX_HOUSEHOLDS, f"{at}households"),
                   residents=_count(data.get("residents"), MAX_RESIDENTS, f"{at}residents"),
                   responsible_party=text(data.get("responsible_party"), f"{at}responsible_party", limit=MAX_NAME),
                   unit_type=unit_type)

    def details(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "unit_type": self.unit_type.value if self.unit_type else None,
                "name": self.name, "households": self.households, "residents": self.residents,
                "responsible_party": self.responsible_party}

    def to_data(self) -> dict[str, Any]:
        return {"code": self.code.value, **self.details(), "polygon": to_geojson(self.polygon)}

    @classmethod
    def from_stored(cls, data: Mapping[str, Any], polygon: Polygon | None = None) -> Grid:
        return cls(code=GridCode(data["code"]), kind=GridKind(data["kind"]), name=data["name"],
                   polygon=polygon if polygon is not None else from_geojson(data["polygon"]),
                   households=data["households"], residents=data["residents"],
                   responsible_party=data["responsible_party"],
                   unit_type=UnitType(data["unit_type"]) if data.get("unit_type") else None)

    def warnings(self) -> list[dict[str, Any]]:
        """What is allowed but worth a second look, recorded on the grid's event."""
        low, high = HOUSEHOLDS_NORM
        if self.kind is GridKind.RESIDENTIAL and not low <= self.households <= high:
            return [{"code": "households_outside_norm", "households": self.households,
                     "detail": f"a residential grid usually holds {low} to {high} households; "
                               f"{self.code} has {self.households}"}]
        return []


@dataclass(frozen=True)
class Building:
    id: BuildingId
    name: str
    place: Point | Polygon


@dataclass(frozen=True)
class Component:
    id: ComponentId
    grid: GridCode
    location: GeoPoint


_DETAILS = ("kind", "unit_type", "name", "households", "residents", "responsible_party")


class GridRegistry(GridAggregate):
    stream_type = "grid_registry"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.community = CommunityCode.parse(self.id.removeprefix("grid-registry:"), "community")
        self.boundary: Polygon | None = None
        self.grids: dict[str, Grid] = {}  # the active grids by code
        self.revisions: dict[str, int] = {}  # a grid's revision: 1 when defined, +1 per revision or redraw
        self.retired: dict[str, str] = {}  # code -> why (split, merged, retired)
        self.buildings: dict[str, Building] = {}  # by the 20-digit building id
        self.components: dict[str, Component] = {}
        self.workers: dict[str, tuple[str, ...]] = {}  # grid code -> its workers, the lead first
        self._map: GridMap | None = None

    @staticmethod
    def stream_for(community: str) -> str:
        return f"grid-registry:{community}"

    # ------------------------------------------------------------------ queries

    def grid_map(self) -> GridMap:
        """The locate index of the active grids (rebuilt after a change)."""
        if self._map is None:
            self._map = GridMap({code: g.polygon for code, g in self.grids.items()})
        return self._map

    def locate(self, lat: Any, lon: Any) -> str | None:
        return self.grid_map().locate(lat, lon)

    def grid(self, code: str, field: str = "grid") -> Grid:
        if code in self.grids:
            return self.grids[code]
        why = f" ({self.retired[code]})" if code in self.retired else ""
        raise InvalidInput("unknown_grid", f"{code!r} is no active grid of community {self.community}{why}",
                           field=field)

    def buildings_in(self, code: str) -> list[Building]:
        return [b for b in self.buildings.values() if b.id.grid.value == code]

    def components_in(self, code: str) -> list[Component]:
        return [c for c in self.components.values() if c.grid.value == code]

    # ------------------------------------------------------------------ the community's boundary

    def set_boundary(self, polygon: Any, *, by: str, at: datetime) -> None:
        at = self._at(at)
        boundary = parse_polygon(polygon, "polygon")
        outside = [code for code, g in sorted(self.grids.items()) if not lies_within(g.polygon, boundary)]
        if outside:
            raise InvalidInput("grids_outside_boundary", f"the boundary leaves out grids {', '.join(outside)}",
                               field="polygon", grids=outside)
        self._emit(BOUNDARY_SET, {"community": self.community.value, "polygon": to_geojson(boundary),
                                  "by": subject(by), "at": iso(at)})

    # ------------------------------------------------------------------ grid changes

    def define_grid(self, grid: Grid, *, by: str, at: datetime) -> list[dict[str, Any]]:
        """A new grid; returns the warnings recorded with it."""
        at = self._at(at)
        self._check_new_code(grid.code, "code")
        self._check_place(grid.polygon, "polygon")
        warnings = grid.warnings()
        self._emit(GRID_DEFINED, {"grid": grid.to_data(), "revision": 1, "warnings": warnings,
                                  "by": subject(by), "at": iso(at)})
        return warnings

    def revise_grid(self, code: str, changes: Mapping[str, Any], *, reason: str, by: str,
                    at: datetime) -> list[dict[str, Any]]:
        """Change a grid's details (name, kind, unit type, counts, responsible party); the
        polygon changes by `redraw_grid` only."""
        at = self._at(at)
        why = text(reason, "reason", limit=500)
        current = self.grid(code, "code")
        unknown = sorted(set(changes) - set(_DETAILS))
        if unknown:
            raise InvalidInput("not_a_detail", f"{unknown[0]} is not a grid detail; details are {', '.join(_DETAILS)}",
                               field=f"changes/{unknown[0]}")
        merged = {**current.details(), **changes, "code": code, "polygon": to_geojson(current.polygon)}
        revised = Grid.from_data(merged, self.community, "changes")
        changed = [k for k in _DETAILS if revised.details()[k] != current.details()[k]]
        if not changed:
            raise InvalidInput("nothing_changed", f"grid {code}'s details are already so", field="changes")
        warnings = revised.warnings()
        self._emit(GRID_REVISED, {"code": code, "details": revised.details(), "changed": changed,
                                  "revision": self.revisions[code] + 1, "reason": why, "warnings": warnings,
                                  "by": subject(by), "at": iso(at)})
        return warnings

    def redraw_grid(self, code: str, polygon: Any, *, reason: str, by: str, at: datetime) -> None:
        at = self._at(at)
        why = text(reason, "reason", limit=500)
        current = self.grid(code, "code")
        redrawn = parse_polygon(polygon, "polygon")
        if same_area(redrawn, current.polygon):
            raise InvalidInput("nothing_changed", f"grid {code} already has this polygon", field="polygon")
        self._check_place(redrawn, "polygon", ignore=(code,))
        left_out = [str(b.id) for b in self.buildings_in(code) if not lies_within(b.place, redrawn)]
        left_out += [str(c.id) for c in self.components_in(code) if not lies_within(c.location.point, redrawn)]
        if left_out:
            raise InvalidInput("would_leave_out", f"the new polygon leaves out {', '.join(left_out)}",
                               field="polygon", left_out=left_out)
        self._emit(GRID_REDRAWN, {"code": code, "polygon": to_geojson(redrawn),
                                  "revision": self.revisions[code] + 1, "reason": why,
                                  "by": subject(by), "at": iso(at)})

    def split_grid(self, code: str, parts: Sequence[Grid], *, reason: str, by: str,
                   at: datetime) -> dict[str, list[dict[str, Any]]]:
        """Cut a grid into new grids that cover exactly its area; the grid is retired, its
        buildings and components go to the part they lie in. Returns the warnings per part."""
        at = self._at(at)
        why = text(reason, "reason", limit=500)
        original = self.grid(code, "code")
        if not 2 <= len(parts) <= MAX_PARTS:
            raise InvalidInput("invalid_parts", f"a split makes 2 to {MAX_PARTS} grids", field="parts")
        self._check_new_codes([p.code for p in parts], "parts")
        for i, part in enumerate(parts):
            for j in range(i):
                if interiors_overlap(part.polygon, parts[j].polygon):
                    raise InvalidInput("parts_overlap", f"parts {parts[j].code} and {part.code} overlap",
                                       field=f"parts/{i}/polygon")
        if not same_area(union(p.polygon for p in parts), original.polygon):
            raise InvalidInput("split_changes_area", f"the parts do not cover exactly grid {code}'s area",
                               field="parts")
        for i, part in enumerate(parts):
            self._check_place(part.polygon, f"parts/{i}/polygon", ignore=(code,))
        parts_map = GridMap({p.code.value: p.polygon for p in parts})
        buildings = [{"from": str(b.id), "to": self._home(parts_map, b.place, str(b.id), "parts") + b.id.building.value}
                     for b in self.buildings_in(code)]
        components = [{"id": str(c.id), "to": self._home(parts_map, c.location.point, str(c.id), "parts")}
                      for c in self.components_in(code)]
        warnings = {p.code.value: p.warnings() for p in parts}
        self._emit(GRID_SPLIT, {"code": code, "parts": [p.to_data() for p in parts], "reason": why,
                                "buildings": buildings, "components": components,
                                "warnings": [w for p in parts for w in warnings[p.code.value]],
                                "by": subject(by), "at": iso(at)})
        return warnings

    def merge_grids(self, codes: Sequence[str], into: Grid, *, reason: str, by: str,
                    at: datetime) -> list[dict[str, Any]]:
        """Join neighbouring grids into a new grid whose polygon is exactly their union; they
        are retired and their buildings and components move to it."""
        at = self._at(at)
        why = text(reason, "reason", limit=500)
        if len(set(codes)) != len(codes) or not 2 <= len(codes) <= MAX_PARTS:
            raise InvalidInput("invalid_merge", f"a merge joins 2 to {MAX_PARTS} different grids", field="codes")
        merged = [self.grid(c, f"codes/{i}") for i, c in enumerate(codes)]
        self._check_new_code(into.code, "into/code")
        joined = union(g.polygon for g in merged)
        if not isinstance(joined, Polygon):
            raise InvalidInput("grids_not_adjacent", "the grids do not make one piece: merge neighbours only",
                               field="codes")
        if not same_area(into.polygon, joined):
            raise InvalidInput("merge_changes_area", "the merged polygon is not exactly the grids' union",
                               field="into/polygon")
        self._check_place(into.polygon, "into/polygon", ignore=tuple(codes))
        moving = [b for c in codes for b in self.buildings_in(c)]
        seen: dict[str, str] = {}
        for b in moving:
            if b.id.building.value in seen:
                raise InvalidInput("building_codes_collide",
                                   f"buildings {seen[b.id.building.value]} and {b.id} would both be "
                                   f"{into.code}{b.id.building.value}: renumber one first", field="codes")
            seen[b.id.building.value] = str(b.id)
        warnings = into.warnings()
        self._emit(GRIDS_MERGED, {
            "codes": list(codes), "into": into.to_data(), "reason": why, "warnings": warnings,
            "buildings": [{"from": str(b.id), "to": into.code.value + b.id.building.value} for b in moving],
            "components": [{"id": str(c.id), "to": into.code.value} for g in codes for c in self.components_in(g)],
            "by": subject(by), "at": iso(at)})
        return warnings

    def retire_grid(self, code: str, *, reason: str, by: str, at: datetime) -> None:
        at = self._at(at)
        why = text(reason, "reason", limit=500)
        self.grid(code, "code")
        still = [str(b.id) for b in self.buildings_in(code)] + [str(c.id) for c in self.components_in(code)]
        if still:
            raise StateConflict("grid_not_empty", f"grid {code} still holds {', '.join(still)}: redraw, split or "
                                "merge it instead", holding=still)
        self._emit(GRID_RETIRED, {"code": code, "reason": why, "by": subject(by), "at": iso(at)})

    # ------------------------------------------------------------------ buildings and components

    def register_building(self, grid: str, building: str, place: Any, *, name: str | None = None, by: str,
                          at: datetime) -> BuildingId:
        """A building (楼栋) by its 5 digits within its grid, at its entrance (a Point) or its
        footprint (a Polygon), which must lie in that grid and no other."""
        at = self._at(at)
        home = self.grid(grid, "grid")
        bid = BuildingId(home.code, BuildingCode.parse(building, "code"))
        if bid.value in self.buildings:
            raise InvalidInput("building_exists", f"grid {grid} has a building {building} already", field="code")
        shape = parse_point_or_polygon(place, "place")
        if not lies_within(shape, home.polygon):
            raise InvalidInput("building_outside_grid", f"the building does not lie inside grid {grid}",
                               field="place")
        others = ([c for c in self.grid_map().covering(shape) if c != grid] if isinstance(shape, Point)
                  else self.grid_map().overlapping(shape, ignore=(grid,)))
        if others:
            raise InvalidInput("building_on_grid_border", f"the building lies in grid {', '.join(others)} too: "
                               "a building lies in exactly one grid", field="place", grids=[grid, *others])
        self._emit(BUILDING_REGISTERED, {"id": bid.value, "grid": grid, "code": bid.building.value,
                                         "name": text(name, "name", required=False, limit=MAX_NAME),
                                         "place": to_geojson(shape), "by": subject(by), "at": iso(at)})
        return bid

    def register_component(self, component_id: str, location: GeoPoint, *, part_classes: Collection[ClassKey],
                           by: str, at: datetime) -> str:
        """A component (部件) at a point: its id's district must be this community's, its class a
        part class of the district's table (`part_classes`, the active keys), and the point in
        exactly one grid. Returns the grid it lies in."""
        at = self._at(at)
        cid = ComponentId.parse(component_id, "component_id")
        if cid.district != self.community.district:
            raise InvalidCode("component_of_other_district",
                              f"component {cid} is numbered in district {cid.district}, not {self.community.district}",
                              field="component_id")
        key = ClassKey(Kind.PART, cid.major, cid.minor)
        if key not in part_classes:
            raise UnknownClass("unknown_class", f"{key} is no part class of the district's table",
                               field="component_id")
        if cid.value in self.components:
            raise InvalidInput("component_exists", f"component {cid} is registered already", field="component_id")
        grids = self.grid_map().covering(location.point)
        if not grids:
            raise InvalidInput("outside_every_grid", "the location lies in no grid of the community",
                               field="location")
        if len(grids) > 1:
            raise InvalidInput("component_on_grid_border", f"the location is on the border of {', '.join(grids)}: "
                               "a component lies in exactly one grid", field="location", grids=grids)
        self._emit(COMPONENT_REGISTERED, {"id": cid.value, "grid": grids[0], "class": key.to_data(),
                                          "location": location.to_data(), "by": subject(by), "at": iso(at)})
        return grids[0]

    # ------------------------------------------------------------------ grid workers

    def assign_workers(self, code: str, workers: Sequence[str], *, lead: str, by: str, at: datetime) -> None:
        """The grid's workers (网格员), one of them its lead (the full-time worker who answers
        for the daily report); the whole list each time, so the event says who is assigned."""
        at = self._at(at)
        self.grid(code, "grid")
        if not isinstance(workers, (list, tuple)) or not 1 <= len(workers) <= MAX_WORKERS:
            raise InvalidInput("invalid_workers", f"a grid has 1 to {MAX_WORKERS} workers", field="workers")
        named = [subject(w, f"workers/{i}") for i, w in enumerate(workers)]
        if len(set(named)) != len(named):
            raise InvalidInput("worker_twice", "a worker is named twice", field="workers")
        if subject(lead, "lead") not in named:
            raise InvalidInput("lead_not_a_worker", "the lead is one of the grid's workers", field="lead")
        ordered = [lead] + [w for w in named if w != lead]
        self._emit(WORKERS_ASSIGNED, {"community": self.community.value, "grid": code, "workers": ordered,
                                      "lead": lead, "by": subject(by), "at": iso(at)})

    # ------------------------------------------------------------------ rules

    def _at(self, at: datetime) -> datetime:
        at = utc(at)
        self._not_before_last(at)
        return at

    def _check_new_code(self, code: GridCode, field: str) -> None:
        if code.community != self.community:
            raise InvalidCode("grid_not_in_community",
                              f"grid {code} does not begin with its community's code {self.community}", field=field)
        if code.value in self.grids:
            raise InvalidInput("grid_exists", f"grid {code} is defined already", field=field)
        if code.value in self.retired:
            raise InvalidInput("grid_code_retired", f"grid code {code} was used before ({self.retired[code.value]}); "
                               "codes are never reused", field=field)

    def _check_new_codes(self, codes: Sequence[GridCode], field: str) -> None:
        for i, code in enumerate(codes):
            self._check_new_code(code, f"{field}/{i}/code")
            if code in codes[:i]:
                raise InvalidInput("grid_code_twice", f"{code} is named twice", field=f"{field}/{i}/code")

    def _check_place(self, polygon: Polygon, field: str, ignore: Sequence[str] = ()) -> None:
        """Inside the community's boundary, overlapping no other grid (touching is fine)."""
        if self.boundary is None:
            raise StateConflict("no_boundary", f"community {self.community} has no boundary yet: set it first")
        if not lies_within(polygon, self.boundary):
            share = outside_area(polygon, self.boundary) / polygon.area
            raise InvalidInput("outside_community", f"{share:.1%} of the polygon lies outside community "
                               f"{self.community}", field=field)
        overlapping = self.grid_map().overlapping(polygon, ignore=ignore)
        if overlapping:
            raise InvalidInput("overlaps_grid", f"the polygon overlaps grid {', '.join(overlapping)}", field=field,
                               overlapping=overlapping)

    @staticmethod
    def _home(parts: GridMap, place: Point | Polygon, what: str, field: str) -> str:
        # A footprint lay inside the original grid, the union of the parts: if it overlaps
        # one part's interior only, it lies inside that part.
        grids = parts.covering(place) if isinstance(place, Point) else [
            c for c in parts.covering(place) if interiors_overlap(place, parts.polygon(c))]
        if len(grids) != 1:
            raise InvalidInput("cut_through_building", f"the split's new border runs through {what}: "
                               "a building or component lies in exactly one grid", field=field, grids=grids)
        return grids[0]

    # ------------------------------------------------------------------ appliers

    def _changed(self) -> None:
        self._map = None

    @applies(BOUNDARY_SET)
    def _boundary_set(self, d: Mapping[str, Any]) -> None:
        self.boundary = from_geojson(d["polygon"])

    @applies(GRID_DEFINED)
    def _grid_defined(self, d: Mapping[str, Any]) -> None:
        self._add(d["grid"])

    @applies(GRID_REVISED)
    def _grid_revised(self, d: Mapping[str, Any]) -> None:
        old = self.grids[d["code"]]
        self.grids[d["code"]] = Grid.from_stored({**d["details"], "code": d["code"]}, old.polygon)
        self.revisions[d["code"]] = d["revision"]

    @applies(GRID_REDRAWN)
    def _grid_redrawn(self, d: Mapping[str, Any]) -> None:
        self.grids[d["code"]] = replace(self.grids[d["code"]], polygon=from_geojson(d["polygon"]))
        self.revisions[d["code"]] = d["revision"]
        self._changed()

    @applies(GRID_SPLIT)
    def _grid_split(self, d: Mapping[str, Any]) -> None:
        self._retire(d["code"], f"split into {', '.join(p['code'] for p in d['parts'])}")
        for part in d["parts"]:
            self._add(part)
        self._move(d)

    @applies(GRIDS_MERGED)
    def _grids_merged(self, d: Mapping[str, Any]) -> None:
        for code in d["codes"]:
            self._retire(code, f"merged into {d['into']['code']}")
        self._add(d["into"])
        self._move(d)

    @applies(GRID_RETIRED)
    def _grid_retired(self, d: Mapping[str, Any]) -> None:
        self._retire(d["code"], f"retired: {d['reason']}")

    @applies(BUILDING_REGISTERED)
    def _building_registered(self, d: Mapping[str, Any]) -> None:
        bid = BuildingId(GridCode(d["grid"]), BuildingCode(d["code"]))
        self.buildings[bid.value] = Building(bid, d["name"], from_geojson(d["place"]))

    @applies(COMPONENT_REGISTERED)
    def _component_registered(self, d: Mapping[str, Any]) -> None:
        self.components[d["id"]] = Component(ComponentId(d["id"]), GridCode(d["grid"]),
                                             GeoPoint.from_data(d["location"]))

    @applies(WORKERS_ASSIGNED)
    def _workers_assigned(self, d: Mapping[str, Any]) -> None:
        self.workers[d["grid"]] = tuple(d["workers"])

    def _add(self, data: Mapping[str, Any]) -> None:
        self.grids[data["code"]] = Grid.from_stored(data)
        self.revisions[data["code"]] = 1
        self._changed()

    def _retire(self, code: str, why: str) -> None:
        del self.grids[code]
        self.workers.pop(code, None)
        self.retired[code] = why
        self._changed()

    def _move(self, d: Mapping[str, Any]) -> None:
        for move in d["buildings"]:
            old = self.buildings.pop(move["from"])
            self.buildings[move["to"]] = replace(old, id=BuildingId(GridCode(move["to"][:15]),
                                                                    BuildingCode(move["to"][15:])))
        for move in d["components"]:
            self.components[move["id"]] = replace(self.components[move["id"]], grid=GridCode(move["to"]))
