"""Builders shared by the grid service's unit tests: codes, boxes as GeoJSON, a registry with a
community boundary, replay of an aggregate's own events. No I/O."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

import yaml

from civicgrid_common.calendar import CHINA_TZ

from civicgrid_grid.domain.codes import CommunityCode
from civicgrid_grid.domain.registry import Grid, GridRegistry

ROOT = Path(__file__).resolve().parents[4]
COMMUNITY = CommunityCode("320104001001")
DISTRICT = "320104"
ADMIN = "admin-320104"
# The community's boundary: a box of 0.02° by 0.02° around 32.03°N 118.79°E (about 1.9 by 2.2 km).
WEST, SOUTH, EAST, NORTH = 118.78, 32.02, 118.80, 32.04
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)  # Monday 09:00 China time, a working day


def china(*args: int) -> datetime:
    """An instant given in China time, as UTC."""
    return datetime(*args, tzinfo=CHINA_TZ).astimezone(timezone.utc)


def box(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    """A GeoJSON Polygon: [lon, lat] positions, the ring closed."""
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                [west, south]]]}


def grid_code(sequence: int) -> str:
    return f"{COMMUNITY}{sequence:03d}"


def grid_data(sequence: int, polygon: dict[str, Any], *, kind: str = "residential", households: int = 300,
              residents: int = 800, unit_type: str | None = None, name: str | None = None) -> dict[str, Any]:
    data = {"code": grid_code(sequence), "kind": kind, "name": name or f"网格 {sequence}", "polygon": polygon,
            "households": households, "residents": residents, "responsible_party": f"worker-{sequence}"}
    if unit_type is not None:
        data["unit_type"] = unit_type
    return data


def grid(sequence: int, polygon: dict[str, Any], **kwargs: Any) -> Grid:
    return Grid.from_data(grid_data(sequence, polygon, **kwargs), COMMUNITY)


def registry(with_boundary: bool = True) -> GridRegistry:
    r = GridRegistry(GridRegistry.stream_for(COMMUNITY.value))
    if with_boundary:
        r.set_boundary(box(WEST, SOUTH, EAST, NORTH), by=ADMIN, at=T0)
    return r


def ticks(start: datetime = T0, step: timedelta = timedelta(minutes=1)):
    """Increasing instants: every command of a test at its own minute."""
    t = start
    while True:
        t += step
        yield t


@dataclass(frozen=True)
class Stored:
    type: str
    data: Mapping[str, Any]
    version: int


def replayed(aggregate: Any) -> Any:
    """The aggregate rebuilt from its own events after a JSON round trip, as a store gives them
    back: proves the events hold plain JSON and replay reaches the same state."""
    stored = [Stored(e.type, json.loads(json.dumps(e.data)), i + 1) for i, e in enumerate(aggregate.pending_events)]
    return type(aggregate).replay(aggregate.id, stored)


def state(aggregate: Any) -> dict[str, Any]:
    """An aggregate's state for comparison (its queue of pending events left out)."""
    return {k: v for k, v in vars(aggregate).items() if k not in ("_pending", "_map")}


def departments() -> frozenset[str]:
    raw = yaml.safe_load((ROOT / "contracts" / "departments.yaml").read_text(encoding="utf-8"))
    return frozenset(raw["departments"])
