"""An incident (网格事件) through the closed loop (闭环管理). Pure: no I/O.

    from                  command                 to
    (new)                 report (信息收集)       reported
    reported              create (立案)           created
    created               dispatch (派遣)         dispatched
    dispatched            defer (缓办)            deferred    (still with the handler)
    dispatched, deferred  feedback (反馈)         fed back
    fed back              verify, passed          closed (核查结案)
    fed back              verify, failed          dispatched or deferred again: rework (返工), counted
    closed                evaluate (综合评价)     evaluated

Sources (信息来源): a grid worker's patrol, a resident's complaint (intake's; the grid gets the
on-site part), video, a task from above. The report carries what the reporter saw: the
classification they chose, the place, the grid it is filed in (kept for good, whatever
happens to the grids later), whether it is urgent, and the phone's client-generated id.

Time limits (time_limits.py), each exposed as a due instant so that the application can set
its durable timers (`deadlines()`):

- created and dispatched within 10 minutes of the report if urgent, 30 otherwise;
- handled within the minor class's limit, the clock starting at dispatch (处置时限); a rework
  does not restart it: the handler had the time once;
- verified on site within 1 hour of each feedback.

Closure is on time when the feedback that passed the check came within the handling limit and
the check within its hour. A deferred incident (缓办, with a reason) leaves the on-time
figures: `counts_for_on_time` is False and `closed_on_time` None, whatever happens after.

Every command takes `at` (timezone-aware; kept in UTC) and a client id: sent again, it is
recorded once (rules.GridAggregate). A command the state does not allow is a StateConflict
(409), bad input an InvalidInput (422) naming the field; nothing is emitted.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Collection, Iterable, Mapping

from civicgrid_common.aggregate import applies

from civicgrid_grid.domain.classification import ClassKey, ClassRevision, Kind
from civicgrid_grid.domain.codes import ComponentId, GridCode
from civicgrid_grid.domain.geometry import GeoPoint
from civicgrid_grid.domain.rates import Rate
from civicgrid_grid.domain.rules import (
    PREFIX, GridAggregate, InvalidInput, NotYours, StateConflict, instant, iso, photos, subject, text,
    utc,
)
from civicgrid_grid.domain.rules import client_id as _client_id
from civicgrid_grid.domain.time_limits import (
    DEFAULT_OFFICE_HOURS, NORMAL_DISPATCH, URGENT_DISPATCH, VERIFICATION, Calendar, OfficeHours,
)

_P = PREFIX + "incident."
REPORTED = _P + "reported.v1"
CREATED = _P + "created.v1"
DISPATCHED = _P + "dispatched.v1"
DEFERRED = _P + "deferred.v1"
FED_BACK = _P + "fed_back.v1"
CLOSED = _P + "closed.v1"
REWORK_ORDERED = _P + "rework_ordered.v1"
EVALUATED = _P + "evaluated.v1"
DEADLINE_WARNED = _P + "deadline_warned.v1"
OVERDUE = _P + "overdue.v1"
EVENT_TYPES = (REPORTED, CREATED, DISPATCHED, DEFERRED, FED_BACK, CLOSED, REWORK_ORDERED, EVALUATED, DEADLINE_WARNED,
               OVERDUE)
LIMITS = ("create", "dispatch", "handling", "verification")
# Departments whose own systems take grid tasks on Kafka (the others answer through the API);
# each has civicgrid.departments.<code>.tasks and .results in contracts/asyncapi.yaml.
TASK_SYSTEMS = ("urban_management",)


def department_task_type(department: str) -> str:
    """The task a department's own system takes on its topic (civicgrid.departments.<code>.tasks)."""
    return f"{PREFIX}{department}_task.issued.v1"

_DEPARTMENT = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,99}$")


class Source(str, enum.Enum):
    PATROL = "patrol"  # 网格员巡查
    RESIDENT_COMPLAINT = "resident_complaint"  # 群众举报 (an intake complaint)
    VIDEO = "video"  # 视频监控
    TASK_FROM_ABOVE = "task_from_above"  # 上级交办


# The sources whose report must say where it came from (the complaint, the task).
_REFERENCE_REQUIRED = frozenset({Source.RESIDENT_COMPLAINT, Source.TASK_FROM_ABOVE})


class State(str, enum.Enum):
    NEW = "new"
    REPORTED = "reported"
    CREATED = "created"  # 立案
    DISPATCHED = "dispatched"  # 派遣: with the handler
    DEFERRED = "deferred"  # 缓办: with the handler, out of the on-time figures
    FED_BACK = "fed_back"  # 反馈: waiting for the on-site check
    CLOSED = "closed"  # 核查结案
    EVALUATED = "evaluated"  # 综合评价


class HandlerKind(str, enum.Enum):
    DEPARTMENT = "department"  # a district department of contracts/departments.yaml
    STREET_SQUAD = "street_squad"  # the street's own squads


class StreetSquad(str, enum.Enum):
    """The street's own teams that take incidents (街道直属队伍)."""

    SANITATION = "sanitation"  # 环卫所
    ENFORCEMENT = "enforcement"  # 城管执法中队
    MAINTENANCE = "maintenance"  # 市政养护队
    SAFETY = "safety"  # 安监 / 综治巡防队


@dataclass(frozen=True)
class Handler:
    """Who the incident is dispatched to: a department by its code, or one of the street's squads."""

    kind: HandlerKind
    code: str

    @classmethod
    def department(cls, code: str, known_departments: Collection[str], field: str = "handler") -> Handler:
        if not isinstance(code, str) or not _DEPARTMENT.match(code) or code not in known_departments:
            raise InvalidInput("unknown_department", f"{code!r} is no department of contracts/departments.yaml",
                               field=f"{field}/code")
        return cls(HandlerKind.DEPARTMENT, code)

    @classmethod
    def squad(cls, squad: str, field: str = "handler") -> Handler:
        try:
            return cls(HandlerKind.STREET_SQUAD, StreetSquad(squad).value)
        except ValueError:
            known = ", ".join(s.value for s in StreetSquad)
            raise InvalidInput("unknown_squad", f"the street's squads are {known}", field=f"{field}/code") from None

    def to_data(self) -> dict[str, str]:
        return {"kind": self.kind.value, "code": self.code}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Handler:
        return cls(HandlerKind(data["kind"]), data["code"])

    def __str__(self) -> str:
        return f"{self.kind.value} {self.code}"


class Evaluation(str, enum.Enum):
    """The overall evaluation of a closed incident (综合评价)."""

    GOOD = "good"  # 好
    FAIR = "fair"  # 中
    POOR = "poor"  # 差


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("invalid_flag", f"{field} is true or false", field=field)
    return value


def _reference(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _REFERENCE.match(value):
        raise InvalidInput("invalid_reference", f"{field} is 1 to 100 letters, digits or _./:-", field=field)
    return value


class Incident(GridAggregate):
    stream_type = "incident"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.state = State.NEW
        self.source: Source | None = None
        self.grid: GridCode | None = None  # the grid it was filed in, for good
        self.urgent = False
        self.reported_at: datetime | None = None
        self.classification: ClassRevision | None = None  # set at creation, the version then in force
        self.handler: Handler | None = None
        self.created_at: datetime | None = None
        self.dispatched_at: datetime | None = None
        self.handling_due: datetime | None = None
        self.fed_back_at: datetime | None = None
        self.feedback_on_time: bool | None = None
        self.closed_at: datetime | None = None
        self.closed_on_time: bool | None = None
        self.deferred = False
        self.deferral_reason: str | None = None
        self.rework_count = 0
        self.evaluation: Evaluation | None = None
        self._reported: dict[str, Any] = {}  # the report as recorded: what the reporter saw
        self.task_system: str | None = None  # the department system that holds the task on Kafka
        self.task_at: datetime | None = None  # the `at` of its current task (a rework issues a new one)
        self.deadline_marks: set[tuple[str, str]] = set()  # (limit, warned or overdue) recorded
        self.overdue: set[str] = set()  # the limits that passed unmet

    # ------------------------------------------------------------------ due instants

    @property
    def create_due(self) -> datetime | None:
        """Created (立案) by then: 10 minutes after the report if urgent, 30 otherwise."""
        if self.reported_at is None:
            return None
        return self.reported_at + (URGENT_DISPATCH if self.urgent else NORMAL_DISPATCH)

    @property
    def dispatch_due(self) -> datetime | None:
        """Dispatched (派遣) by then: the same limit, from the same report."""
        return self.create_due

    @property
    def verification_due(self) -> datetime | None:
        """Checked on site by then: 1 hour after the last feedback."""
        return None if self.fed_back_at is None else self.fed_back_at + VERIFICATION

    @property
    def counts_for_on_time(self) -> bool:
        """False once deferred (缓办): the incident is taken out of the on-time denominator."""
        return not self.deferred

    def deadlines(self) -> dict[str, datetime]:
        """The limits running now, by name: what the application keeps timers for."""
        if self.state is State.REPORTED:
            return {"create": self.create_due, "dispatch": self.dispatch_due}  # type: ignore[dict-item]
        if self.state is State.CREATED:
            return {"dispatch": self.dispatch_due}  # type: ignore[dict-item]
        if self.state is State.DISPATCHED and not self.deferred:
            return {"handling": self.handling_due}  # type: ignore[dict-item]
        if self.state is State.FED_BACK:
            return {"verification": self.verification_due}  # type: ignore[dict-item]
        return {}

    # ------------------------------------------------------------------ commands

    def report(self, *, source: str, classification: ClassKey, location: GeoPoint, grid: GridCode, urgent: bool,
               description: str, client_id: str, by: str, at: datetime, observed_at: datetime | None = None,
               source_ref: str | None = None, component_id: str | None = None,
               photo_ids: Iterable[str] = ()) -> bool:
        """信息收集: what the reporter saw. The clock of creation and dispatch starts at `at`, when
        the report reached the centre; `observed_at` (a phone that was offline) is kept too."""
        at = utc(at)
        if self.state is not State.NEW:
            if self._seen(client_id, REPORTED):
                return False
            raise StateConflict("already_reported", f"incident {self.id} is reported already")
        try:
            src = Source(source)
        except ValueError:
            known = ", ".join(s.value for s in Source)
            raise InvalidInput("unknown_source", f"the sources are {known}", field="source") from None
        if src in _REFERENCE_REQUIRED and source_ref is None:
            raise InvalidInput("source_ref_required", f"a report from a {src.value} names it", field="source_ref")
        observed = utc(observed_at, "observed_at") if observed_at is not None else at
        if observed > at:
            raise InvalidInput("observed_after_report", "observed_at is after the report", field="observed_at")
        component = None
        if component_id is not None:
            component = ComponentId.parse(component_id, "component_id")
            if classification.kind is not Kind.PART or (component.major, component.minor) != (
                    classification.major, classification.minor):
                raise InvalidInput("component_class_mismatch", f"component {component} is not of class "
                                   f"{classification}", field="component_id")
        self._emit(REPORTED, {
            "source": src.value, "source_ref": _reference(source_ref, "source_ref") if source_ref else None,
            "classification": classification.to_data(), "location": location.to_data(), "grid": grid.value,
            "urgent": _flag(urgent, "urgent"), "description": text(description, "description"),
            "component_id": component.value if component else None, "photos": photos(list(photo_ids)),
            "observed_at": iso(observed), "client_id": _client_id(client_id), "by": subject(by), "at": iso(at),
        })
        return True

    def create(self, revision: ClassRevision, *, by: str, at: datetime, urgent: bool | None = None,
               client_id: str | None = None) -> bool:
        """立案: the centre confirms (or corrects) the class, from the district's table as it is
        now, and the urgency."""
        if self._seen(client_id, CREATED):
            return False
        at = self._at(at)
        self._require(State.REPORTED, "create")
        urgency = self.urgent if urgent is None else _flag(urgent, "urgent")
        due = self.reported_at + (URGENT_DISPATCH if urgency else NORMAL_DISPATCH)  # type: ignore[operator]
        self._emit(CREATED, {"classification": revision.to_data(), "urgent": urgency,
                             "reclassified": revision.key != self._reported_class, "on_time": at <= due,
                             "client_id": client_id, "by": subject(by), "at": iso(at)})
        return True

    def dispatch(self, handler: Handler, *, calendar: Calendar, by: str, at: datetime,
                 office_hours: OfficeHours = DEFAULT_OFFICE_HOURS, note: str | None = None,
                 client_id: str | None = None, task_systems: Collection[str] = ()) -> bool:
        """派遣: to a department or the street's squad. The handling clock starts now; its due
        instant is fixed in the event, on the calendar as it is now. A department whose own
        system takes tasks (`task_systems`) also gets the task on its topic: what it needs to
        act, never who reported it."""
        if self._seen(client_id, DISPATCHED):
            return False
        at = self._at(at)
        self._require(State.CREATED, "dispatch")
        assert self.classification is not None
        due = self.classification.minor_class.limit.due(at, calendar, office_hours)
        self._emit(DISPATCHED, {"handler": handler.to_data(), "handling_due": iso(due),
                                "on_time": at <= self.dispatch_due,  # type: ignore[operator]
                                "note": text(note, "note", required=False), "client_id": client_id,
                                "by": subject(by), "at": iso(at)})
        if handler.kind is HandlerKind.DEPARTMENT and handler.code in task_systems:
            self._issue_task(handler.code, due, at, rework=0, note=None)
        return True

    def _issue_task(self, department: str, due: datetime, at: datetime, *, rework: int, note: str | None) -> None:
        """The department system's task: on dispatch, and again on each rework with the check's note."""
        r = self._reported
        self._emit(department_task_type(department), {
            "incident_id": self.id, "grid": r["grid"], "classification": self.classification.to_data(),  # type: ignore[union-attr]
            "location": r["location"], "component_id": r["component_id"], "description": r["description"],
            "urgent": self.urgent, "photos": r["photos"], "handling_due": iso(due), "rework": rework, "note": note,
            "at": iso(at)})

    def deadline_reached(self, limit: str, due: datetime, *, overdue: bool, at: datetime) -> bool:
        """A durable timer of a limit fired: a warning before `due`, or overdue after it.
        Recorded only while that limit still runs with that due instant (an incident dispatched
        in time, or a rework that moved the verification, makes the old timer moot)."""
        if limit not in LIMITS:
            raise ValueError(f"unknown limit {limit!r}")
        due = utc(due, "due")
        if self.deadlines().get(limit) != due:
            return False
        kind = OVERDUE if overdue else DEADLINE_WARNED
        if (limit, kind) in self.deadline_marks:
            return False
        self._emit(kind, {"limit": limit, "due": iso(due), "at": iso(utc(at))})
        return True

    def defer(self, *, reason: str, by: str, at: datetime, client_id: str | None = None) -> bool:
        """缓办: the handler cannot do it within the limit for a reason (a season, a budget, a court
        case); the incident stays with them and leaves the on-time figures."""
        if self._seen(client_id, DEFERRED):
            return False
        at = self._at(at)
        self._require(State.DISPATCHED, "defer")
        if self.deferred:
            raise StateConflict("already_deferred", f"incident {self.id} is deferred already")
        self._emit(DEFERRED, {"reason": text(reason, "reason", limit=500), "client_id": client_id,
                              "by": subject(by), "at": iso(at)})
        return True

    def feedback(self, handler: Handler, *, result: str, by: str, at: datetime, photo_ids: Iterable[str] = (),
                 client_id: str | None = None) -> bool:
        """反馈: the handler says it is done. Only the unit it was dispatched to may."""
        if self._seen(client_id, FED_BACK):
            return False
        at = self._at(at)
        self._require((State.DISPATCHED, State.DEFERRED), "feed back")
        if handler != self.handler:
            raise NotYours("not_the_handler", f"incident {self.id} is with {self.handler}, not {handler}")
        on_time = None if self.deferred else at <= self.handling_due  # type: ignore[operator]
        self._emit(FED_BACK, {"handler": handler.to_data(), "result": text(result, "result"),
                              "photos": photos(list(photo_ids)), "on_time": on_time,
                              "verification_due": iso(at + VERIFICATION), "client_id": client_id,
                              "by": subject(by), "at": iso(at)})
        return True

    def verify(self, *, passed: bool, by: str, at: datetime, note: str | None = None,
               photo_ids: Iterable[str] = (), client_id: str | None = None) -> bool:
        """核查: the grid worker checks on site. Passed: closed (核查结案). Not passed: rework
        (返工), back to the handler, counted; the handling limit keeps running."""
        if self._seen(client_id, CLOSED, REWORK_ORDERED):
            return False
        at = self._at(at)
        self._require(State.FED_BACK, "verify")
        verified_on_time = at <= self.verification_due  # type: ignore[operator]
        data: dict[str, Any] = {"verified_on_time": verified_on_time, "photos": photos(list(photo_ids)),
                                "client_id": client_id, "by": subject(by), "at": iso(at)}
        if _flag(passed, "passed"):
            on_time = None if self.deferred else bool(self.feedback_on_time and verified_on_time)
            self._emit(CLOSED, {**data, "note": text(note, "note", required=False), "on_time": on_time,
                                "rework_count": self.rework_count})
        else:
            self._emit(REWORK_ORDERED, {**data, "note": text(note, "note"), "rework": self.rework_count + 1})
            if self.task_system is not None:
                self._issue_task(self.task_system, self.handling_due, at, rework=self.rework_count,  # type: ignore[arg-type]
                                 note=text(note, "note"))
        return True

    def evaluate(self, level: str, *, by: str, at: datetime, note: str | None = None,
                 client_id: str | None = None) -> bool:
        """综合评价, once, after closure."""
        if self._seen(client_id, EVALUATED):
            return False
        at = self._at(at)
        self._require(State.CLOSED, "evaluate")
        try:
            evaluation = Evaluation(level)
        except ValueError:
            raise InvalidInput("unknown_evaluation", "the evaluation is good, fair or poor", field="level") from None
        self._emit(EVALUATED, {"level": evaluation.value, "note": text(note, "note", required=False),
                               "client_id": client_id, "by": subject(by), "at": iso(at)})
        return True

    # ------------------------------------------------------------------ rules

    def _at(self, at: datetime) -> datetime:
        at = utc(at)
        if self.state is not State.NEW:
            self._not_before_last(at)
        return at

    def _require(self, states: State | tuple[State, ...], what: str) -> None:
        allowed = states if isinstance(states, tuple) else (states,)
        if self.state not in allowed:
            raise StateConflict("illegal_transition", f"cannot {what} incident {self.id}: it is {self.state.value}",
                                state=self.state.value)

    @property
    def reported_class(self) -> ClassKey:
        """The class the reporter chose (the centre may correct it at creation)."""
        return self._reported_class

    @property
    def _reported_class(self) -> ClassKey:
        return ClassKey.from_data(self._reported["classification"])

    # ------------------------------------------------------------------ appliers

    @applies(REPORTED)
    def _reported_event(self, d: Mapping[str, Any]) -> None:
        self._reported = dict(d)
        self.state = State.REPORTED
        self.source = Source(d["source"])
        self.grid = GridCode(d["grid"])
        self.urgent = d["urgent"]
        self.reported_at = instant(d["at"])

    @applies(CREATED)
    def _created(self, d: Mapping[str, Any]) -> None:
        self.state = State.CREATED
        self.classification = ClassRevision.from_stored(d["classification"])
        self.urgent = d["urgent"]
        self.created_at = instant(d["at"])

    @applies(DISPATCHED)
    def _dispatched(self, d: Mapping[str, Any]) -> None:
        self.state = State.DISPATCHED
        self.handler = Handler.from_data(d["handler"])
        self.dispatched_at = instant(d["at"])
        self.handling_due = instant(d["handling_due"])

    @applies(DEFERRED)
    def _deferred(self, d: Mapping[str, Any]) -> None:
        self.state = State.DEFERRED
        self.deferred = True
        self.deferral_reason = d["reason"]

    @applies(FED_BACK)
    def _fed_back(self, d: Mapping[str, Any]) -> None:
        self.state = State.FED_BACK
        self.fed_back_at = instant(d["at"])
        self.feedback_on_time = d["on_time"]

    @applies(CLOSED)
    def _closed(self, d: Mapping[str, Any]) -> None:
        self.state = State.CLOSED
        self.closed_at = instant(d["at"])
        self.closed_on_time = d["on_time"]

    @applies(REWORK_ORDERED)
    def _rework_ordered(self, d: Mapping[str, Any]) -> None:
        self.state = State.DEFERRED if self.deferred else State.DISPATCHED
        self.rework_count = d["rework"]
        self.deadline_marks = {m for m in self.deadline_marks if m[0] != "verification"}
        self.fed_back_at = None
        self.feedback_on_time = None

    @applies(DEADLINE_WARNED)
    def _deadline_warned(self, d: Mapping[str, Any]) -> None:
        self.deadline_marks.add((d["limit"], DEADLINE_WARNED))

    @applies(OVERDUE)
    def _overdue(self, d: Mapping[str, Any]) -> None:
        self.deadline_marks.add((d["limit"], OVERDUE))
        self.overdue.add(d["limit"])

    @applies(*(department_task_type(d) for d in TASK_SYSTEMS))
    def _task_issued(self, d: Mapping[str, Any]) -> None:
        """The department system's copy of the dispatch (or the rework): it has the task now."""
        self.task_system = self.handler.code if self.handler else None
        self.task_at = instant(d["at"])

    @applies(EVALUATED)
    def _evaluated(self, d: Mapping[str, Any]) -> None:
        self.state = State.EVALUATED
        self.evaluation = Evaluation(d["level"])


# ---------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class ClosureFigures:
    """The closed loop's figures over a set of incidents, as of an instant.

    An incident is due once its handling limit has passed or it is closed; deferred incidents
    are out of both rates (closed ÷ due, closed on time ÷ due)."""

    due: int
    closed: int
    closed_on_time: int
    deferred: int
    reworks: int

    @property
    def closure_rate(self) -> Rate:
        return Rate(self.closed, self.due)

    @property
    def on_time_closure_rate(self) -> Rate:
        return Rate(self.closed_on_time, self.due)


def closure_figures(incidents: Iterable[Incident], as_of: datetime) -> ClosureFigures:
    as_of = utc(as_of, "as_of")
    due = closed = on_time = deferred = reworks = 0
    for i in incidents:
        reworks += i.rework_count
        if i.deferred:
            deferred += 1
            continue
        is_closed = i.state in (State.CLOSED, State.EVALUATED)
        if is_closed or (i.handling_due is not None and i.handling_due < as_of):
            due += 1
            closed += is_closed
            on_time += bool(is_closed and i.closed_on_time)
    return ClosureFigures(due, closed, on_time, deferred, reworks)

