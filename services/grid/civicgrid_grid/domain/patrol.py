"""A grid worker's patrol (巡查): started and ended on the phone, with its GPS track. Pure: no I/O.

The track is sent in batches as the phone has signal. A point outside the grid is flagged, not
refused: the worker walks the street that bounds the grid, crosses to the shop opposite, and
GPS drifts by tens of metres between tall buildings; the flags are for a reviewer to read,
not a reason to lose the track. Whether a point is inside is shapely's `covers` on the grid's
polygon, passed in as a value (the registry's, at the time of the batch).

One aggregate per patrol (its id is made on the phone); every batch has its client id, so a
batch sent twice is recorded once.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

import numpy as np
import shapely
from shapely import Polygon

from civicgrid_common.aggregate import applies

from civicgrid_grid.domain.codes import GridCode
from civicgrid_grid.domain.geometry import GeoPoint
from civicgrid_grid.domain.rules import PREFIX, GridAggregate, InvalidInput, StateConflict, instant, iso, subject, utc
from civicgrid_grid.domain.rules import client_id as _client_id

_P = PREFIX + "patrol."
STARTED = _P + "started.v1"
TRACK_RECORDED = _P + "track_recorded.v1"
ENDED = _P + "ended.v1"
EVENT_TYPES = (STARTED, TRACK_RECORDED, ENDED)

MAX_BATCH = 2_000  # points per batch: an hour at one fix every two seconds
MAX_POINTS = 20_000  # points per patrol
MAX_DURATION = timedelta(hours=16)
# A phone's clock may run a little ahead of the server's: a point stamped up to this much
# after the batch arrived is accepted as it is.
CLOCK_SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class TrackPoint:
    position: GeoPoint
    at: datetime

    @classmethod
    def parse(cls, data: Any, field: str) -> TrackPoint:
        if not isinstance(data, Mapping):
            raise InvalidInput("invalid_track_point", "a track point is {lat, lon, at}", field=field)
        return cls(GeoPoint.parse(data.get("lat"), data.get("lon"), field=field),
                   utc(data.get("at"), f"{field}/at"))


class Patrol(GridAggregate):
    stream_type = "patrol"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.grid: GridCode | None = None
        self.worker: str | None = None
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.point_count = 0
        self.points_outside = 0
        self.last_point_at: datetime | None = None

    @property
    def started(self) -> bool:
        return self.started_at is not None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    # ------------------------------------------------------------------ commands

    def start(self, *, grid: GridCode, by: str, at: datetime, client_id: str) -> bool:
        if self.started:
            if self._seen(client_id, STARTED):
                return False
            raise StateConflict("already_started", f"patrol {self.id} has started already")
        at = utc(at)
        self._emit(STARTED, {"grid": grid.value, "worker": subject(by), "client_id": _client_id(client_id),
                             "at": iso(at)})
        return True

    def record_track(self, points: Sequence[TrackPoint], *, area: Polygon, at: datetime, client_id: str) -> bool:
        """A batch of the track; points outside `area` (the grid's polygon) are flagged."""
        if self._seen(client_id, TRACK_RECORDED):
            return False
        at = self._at(at)
        self._open("record a track")
        if not points:
            raise InvalidInput("points_required", "a batch has at least one point", field="points")
        self._emit(TRACK_RECORDED, self._batch(points, area, at, client_id))
        return True

    def end(self, *, area: Polygon, at: datetime, client_id: str, points: Sequence[TrackPoint] = ()) -> bool:
        """Ends the patrol, with the last points if there are any."""
        if self._seen(client_id, ENDED):
            return False
        at = self._at(at)
        self._open("end")
        if at - self.started_at > MAX_DURATION:  # type: ignore[operator]
            raise InvalidInput("patrol_too_long", f"a patrol lasts at most {MAX_DURATION}: was it ended on "
                               "another day?", field="at")
        self._emit(ENDED, self._batch(points, area, at, client_id) if points else
                   {"points": [], "outside": 0, "client_id": _client_id(client_id), "at": iso(at)})
        return True

    # ------------------------------------------------------------------ rules

    def _at(self, at: datetime) -> datetime:
        at = utc(at)
        self._not_before_last(at)
        return at

    def _open(self, what: str) -> None:
        if not self.started:
            raise StateConflict("not_started", f"cannot {what}: patrol {self.id} has not started")
        if self.ended:
            raise StateConflict("already_ended", f"cannot {what}: patrol {self.id} has ended")

    def _batch(self, points: Sequence[TrackPoint], area: Polygon, at: datetime, cid: str) -> dict[str, Any]:
        if len(points) > MAX_BATCH:
            raise InvalidInput("batch_too_large", f"at most {MAX_BATCH} points a batch", field="points")
        if self.point_count + len(points) > MAX_POINTS:
            raise InvalidInput("track_too_long", f"a patrol records at most {MAX_POINTS} points", field="points")
        previous = self.last_point_at or self.started_at
        for i, p in enumerate(points):
            if p.at < previous:  # type: ignore[operator]
                raise InvalidInput("track_out_of_order", "points are in time order, after the patrol began and "
                                   "the points before", field=f"points/{i}/at")
            if p.at > at + CLOCK_SKEW:
                raise InvalidInput("point_in_future", "a point is stamped after the batch was sent",
                                   field=f"points/{i}/at")
            previous = p.at
        # One vectorised covers over the whole batch; a point on the grid's edge is inside.
        inside = shapely.covers(area, shapely.points([(p.position.lon, p.position.lat) for p in points]))
        return {"points": [{**p.position.to_data(), "at": iso(p.at), "outside": not bool(ok)}
                           for p, ok in zip(points, inside)],
                "outside": int(np.count_nonzero(~inside)), "client_id": _client_id(cid), "at": iso(at)}

    # ------------------------------------------------------------------ appliers

    @applies(STARTED)
    def _started(self, d: Mapping[str, Any]) -> None:
        self.grid = GridCode(d["grid"])
        self.worker = d["worker"]
        self.started_at = instant(d["at"])

    @applies(TRACK_RECORDED)
    def _track_recorded(self, d: Mapping[str, Any]) -> None:
        self._points(d)

    @applies(ENDED)
    def _ended(self, d: Mapping[str, Any]) -> None:
        self._points(d)
        self.ended_at = instant(d["at"])

    def _points(self, d: Mapping[str, Any]) -> None:
        self.point_count += len(d["points"])
        self.points_outside += d["outside"]
        if d["points"]:
            self.last_point_at = instant(d["points"][-1]["at"])
