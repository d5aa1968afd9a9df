"""A generated stream of the grid service's events (data of the shapes its domain emits:
services/grid/civicgrid_grid/domain/incident.py, reports.py, disputes.py), and the grid KPIs
counted again from those raw events in plain Python: no SQL, no fact store, no code of
civicgrid_statistics. What the grid KPI tests compare the service with.

    stream = generate_grid(incidents=60, seed=5)
    records = stream.records(topics)            # CloudEvents binary-mode Kafka records
    figures = recount(stream.events, "community", as_of=...)   # {label: {figure: value}}, "total"
"""
from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

from event_stream import Generated, Stream

CHINA = timezone(timedelta(hours=8))
UTC = timezone.utc
STREET = "320104001"
COMMUNITIES = [f"{STREET}001", f"{STREET}002"]
GRIDS = [f"{c}00{i}" for c in COMMUNITIES for i in (1, 2)]
OTHER_STREET_GRID = "320104002001001"
ALL_GRIDS = [*GRIDS, OTHER_STREET_GRID]
# Two working weeks of March 2026 (no holiday in it).
DAYS = [date(2026, 3, d) for d in (2, 3, 4, 5, 6, 9, 10, 11, 12, 13)]
FREE_TEXT = "居民王某反映：楼道堆放杂物"  # in descriptions, notes, summaries: never in a fact
TOPICS = ("incidents", "reports", "disputes", "community_work")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()  # the grid keeps instants in UTC


def _china(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=CHINA)


class GridStream(Stream):
    """event_stream's Stream (its records: binary-mode CloudEvents, duplicates as a relay may
    publish them) filled with grid events."""

    def grid_event(self, topic: str, kind: str, key: str, at: datetime, data: dict[str, Any]) -> None:
        self.emit(topic, f"grid.{kind}", key, at, {**data, "at": _iso(at)})

    def ordered(self) -> None:
        """Publication in the order things happened (each stream's events stay in its order)."""
        self.events.sort(key=lambda e: e.recorded_at)

    # ------------------------------------------------------------------------------ incidents

    def incident(self, n: int) -> None:
        rng = self.rng
        iid = f"incident-{n:03d}-{uuid.uuid4().hex[:6]}"
        grid = rng.choice(ALL_GRIDS)
        day = rng.choice(DAYS)
        reported = _china(day, rng.randint(8, 15), rng.randint(0, 59)) + timedelta(seconds=rng.randint(0, 59))
        urgent = rng.random() < 0.3
        limit = timedelta(minutes=10 if urgent else 30)
        cls = {"kind": "event", "major": "02", "minor": rng.choice(["01", "03", "07"])}
        ev = lambda kind, at, data: self.grid_event("incidents", f"incident.{kind}", iid, at, data)  # noqa: E731
        ev("reported", reported, {
            "source": rng.choice(["patrol", "video"]), "source_ref": None, "classification": cls,
            "location": {"lat": 32.04 + rng.random() / 100, "lon": 118.78 + rng.random() / 100}, "grid": grid,
            "urgent": urgent, "description": FREE_TEXT, "component_id": None, "photos": ["1" * 64],
            "observed_at": _iso(reported - timedelta(minutes=rng.randint(0, 20))), "client_id": f"c-{iid}",
            "by": "worker-1"})
        fate = rng.choices(["reported", "created", "open", "deferred", "closed", "rework", "reworked_open"],
                           weights=[1, 1, 2, 2, 6, 3, 1])[0]
        if fate == "reported":
            return
        created = reported + timedelta(seconds=rng.randint(60, 45 * 60))
        ev("created", created, {"classification": {**cls, "name_zh": "乱堆物料", "name_en": "piling",
                                                   "department": "urban_management",
                                                   "limit": {"hours": 24}, "version": 1},
                                "urgent": urgent, "reclassified": False, "on_time": created <= reported + limit,
                                "client_id": None, "by": "centre-1"})
        if fate == "created":
            return
        dispatched = created + timedelta(seconds=rng.randint(30, 20 * 60))
        handling_due = dispatched + timedelta(hours=rng.choice([4, 24, 48]))
        ev("dispatched", dispatched, {"handler": {"kind": "street_squad", "code": "sanitation"},
                                      "handling_due": _iso(handling_due), "on_time": dispatched <= reported + limit,
                                      "note": FREE_TEXT, "client_id": None, "by": "centre-1"})
        deferred = fate == "deferred" or (fate == "closed" and rng.random() < 0.15)
        t = dispatched
        if deferred:
            t += timedelta(hours=rng.randint(1, 3))
            ev("deferred", t, {"reason": FREE_TEXT, "client_id": None, "by": "handler-1"})
            if fate == "deferred":
                return
        if fate == "open":
            if rng.random() < 0.5:
                ev("overdue", handling_due, {"limit": "handling", "due": _iso(handling_due)})
            return
        reworks = {"closed": 0, "rework": rng.choice([1, 1, 2]), "reworked_open": 1}[fate]
        warned = False
        for round_ in range(reworks + 1):
            t += timedelta(seconds=rng.randint(20 * 60, 30 * 3600))
            fed_on_time = None if deferred else t <= handling_due
            if fed_on_time is False and not warned and rng.random() < 0.7:
                warned = True  # the handling limit's timer fires once
                ev("overdue", handling_due, {"limit": "handling", "due": _iso(handling_due)})
            ev("fed_back", t, {"handler": {"kind": "street_squad", "code": "sanitation"}, "result": FREE_TEXT,
                               "photos": ["2" * 64], "on_time": fed_on_time,
                               "verification_due": _iso(t + timedelta(hours=1)), "client_id": None,
                               "by": "handler-1"})
            fed = t
            t += timedelta(seconds=rng.randint(5 * 60, 90 * 60))
            verified_on_time = t <= fed + timedelta(hours=1)
            if round_ < reworks:
                ev("rework_ordered", t, {"verified_on_time": verified_on_time, "photos": [], "note": FREE_TEXT,
                                         "rework": round_ + 1, "client_id": None, "by": "worker-1"})
                if fate == "reworked_open":
                    return
            else:
                ev("closed", t, {"verified_on_time": verified_on_time, "photos": ["3" * 64], "note": FREE_TEXT,
                                 "on_time": None if deferred else bool(fed_on_time and verified_on_time),
                                 "rework_count": reworks, "client_id": None, "by": "worker-1"})
        if rng.random() < 0.5:
            ev("evaluated", t + timedelta(hours=2), {"level": rng.choice(["good", "fair", "poor"]), "note": None,
                                                     "client_id": None, "by": "centre-1"})

    # ------------------------------------------------------------------------------ daily reports

    def reports(self) -> None:
        rng = self.rng
        for day in DAYS:
            for grid in ALL_GRIDS:
                key = f"daily-report:{grid}:{day.isoformat()}"
                check = _china(day, 17)
                fate = rng.choices(["on_time", "late", "missing", "unchecked"], weights=[6, 1, 2, 1])[0]
                if fate == "unchecked":
                    continue  # the check has not named it (yet): not expected
                if fate in ("late", "missing"):
                    self.grid_event("reports", "daily_report.missing", key, check,
                                    {"grid": grid, "date": day.isoformat(), "check_at": _iso(check)})
                if fate == "missing":
                    continue
                at = _china(day, rng.randint(9, 16)) if fate == "on_time" else check + timedelta(hours=16)
                found = [] if rng.random() < 0.7 else [f"incident-x-{rng.randint(1, 99)}"]
                self.grid_event("reports", "daily_report.submitted", key, at, {
                    "grid": grid, "date": day.isoformat(), "all_safe": not found, "incidents": found,
                    "late": fate == "late", "patrol_id": None, "client_id": f"r-{grid}-{day}", "by": "worker-1"})

    # ------------------------------------------------------------------------------ disputes

    def dispute(self, n: int) -> None:
        rng = self.rng
        did = f"dispute-{n:03d}-{uuid.uuid4().hex[:6]}"
        t = _china(rng.choice(DAYS), rng.randint(8, 17))
        ev = lambda kind, at, data: self.grid_event("disputes", f"dispute.{kind}", did, at, data)  # noqa: E731
        ev("filed", t, {"grid": rng.choice(ALL_GRIDS), "nature": rng.choice(["neighbourhood", "family", "labour"]),
                        "urgency": rng.choice(["general", "urgent"]), "summary": FREE_TEXT,
                        "parties": rng.randint(2, 6), "client_id": f"d-{did}", "by": "worker-1"})
        fate = rng.choice(["filed", "agreed", "agreed_later", "failed_referred", "partial", "referred"])
        outcomes = {"filed": [], "agreed": ["agreed"], "agreed_later": ["partial", "agreed"],
                    "failed_referred": ["failed"], "partial": ["partial"], "referred": []}[fate]
        for outcome in outcomes:
            t += timedelta(days=1)
            ev("mediated", t, {"mediator": "mediator-1", "outcome": outcome, "note": FREE_TEXT, "client_id": None,
                               "by": "worker-1"})
        if outcomes and outcomes[-1] == "agreed":
            t += timedelta(hours=2)
            ev("settled", t, {"mediations": len(outcomes), "note": None, "client_id": None, "by": "worker-1"})
        if fate in ("failed_referred", "referred"):
            t += timedelta(hours=3)
            ev("referred", t, {"to": "judicial_office", "reason": FREE_TEXT, "mediated": bool(outcomes),
                               "client_id": None, "by": "worker-1"})
        if outcomes and rng.random() < 0.5:
            ev("followed_up", t + timedelta(days=7), {"note": FREE_TEXT, "holding": True, "client_id": None,
                                                      "by": "worker-1"})

    # ------------------------------------------------------------------------------ community work

    def community_work(self) -> None:
        rng = self.rng
        for community in [*COMMUNITIES, OTHER_STREET_GRID[:12]]:
            for _ in range(rng.randint(2, 5)):
                at = _china(rng.choice(DAYS), rng.randint(9, 17))
                refused = rng.random() < 0.6
                data = {"community": community, "department": rng.choice(["civil_affairs", "public_security"]),
                        "work_kind": rng.choice(["other", "survey", "inspection"]), "title": FREE_TEXT,
                        "description": None, "client_id": f"w-{uuid.UUID(int=rng.getrandbits(128))}",
                        "by": "dept-user"}
                if refused:
                    data.update(reason="no_access_grant", detail=FREE_TEXT)
                else:
                    data.update(grant=str(uuid.UUID(int=rng.randint(1, 9))), grant_valid_until="2026-12-31")
                self.grid_event("community_work", f"community_work.{'refused' if refused else 'accepted'}",
                                f"community-work:{community}", at, data)


def generate_grid(incidents: int = 60, disputes: int = 24, seed: int = 5) -> GridStream:
    stream = GridStream(seed)
    for n in range(incidents):
        stream.incident(n)
    stream.reports()
    for n in range(disputes):
        stream.dispute(n)
    stream.community_work()
    # Events statistics counts for nothing: a sweep, and a later major of a known type.
    sweep = _china(DAYS[-1], 10)
    stream.grid_event("disputes", "stability_sweep.recorded", f"stability-sweep:{COMMUNITIES[0]}:2026-03", sweep,
                      {"community": COMMUNITIES[0], "month": "2026-03", "disputes_found": 3})
    stream.ordered()
    stream.emit("incidents", "grid.incident.reported", "incident-v2", sweep, {"grid": GRIDS[0], "at": _iso(sweep)})
    stream.events[-1].type = "civicgrid.grid.incident.reported.v2"
    return stream


# ---------------------------------------------------------------------------- the recount

def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _label(code: str, at: datetime, group_by: str) -> str:
    levels = {"district": 6, "street": 9, "community": 12, "grid": 15}
    if group_by == "all":
        return "all"
    if group_by in levels:
        return code[:levels[group_by]]
    local = at.astimezone(CHINA).date()
    if group_by == "day":
        return local.isoformat()
    if group_by == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.strftime("%Y-%m")


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _quantiles(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    if len(values) == 1:
        return values[0], values[0]
    return statistics.median(values), statistics.quantiles(values, n=10, method="inclusive")[8]


def recount(events: Iterable[Generated], group_by: str, *, now: datetime, scope: tuple[str, ...] = (),
            jurisdiction: str | None = None, date_from: date | None = None, date_to: date | None = None,
            as_of: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Every grid figure per label, plus "total", from the raw events (as recorded by `as_of`;
    an event published twice counts once, as the same event id)."""
    seen: set[str] = set()
    by_stream: dict[str, list[Generated]] = defaultdict(list)
    for e in events:
        if e.id in seen or not e.type.endswith(".v1") or (as_of is not None and e.recorded_at > as_of):
            continue
        seen.add(e.id)
        by_stream[e.key].append(e)
    due_at = as_of or now

    def selected(code: str, at: datetime) -> bool:
        local = at.astimezone(CHINA).date()
        return ((not scope or any(code.startswith(s) for s in scope))
                and (jurisdiction is None or code.startswith(jurisdiction))
                and (date_from is None or local >= date_from) and (date_to is None or local <= date_to))

    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    spans: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    for key, evs in by_stream.items():
        kinds = defaultdict(list)
        for e in evs:
            kinds[e.type.split(".")[2] + "." + e.type.split(".")[3]].append(e)
        if kinds["incident.reported"]:
            rep = kinds["incident.reported"][0]
            reported_at = _instant(rep.data["at"])
            if not selected(rep.data["grid"], reported_at):
                continue
            c = counts[_label(rep.data["grid"], reported_at, group_by)]
            s = spans[_label(rep.data["grid"], reported_at, group_by)]
            deferred = bool(kinds["incident.deferred"])
            closed = kinds["incident.closed"][0] if kinds["incident.closed"] else None
            c["incidents_reported"] += 1
            c["incidents_created"] += bool(kinds["incident.created"])
            c["incidents_deferred"] += deferred
            c["incidents_overdue"] += bool(kinds["incident.overdue"])
            c["reworks"] += len(kinds["incident.rework_ordered"])
            if kinds["incident.created"]:
                s["create"].append((_instant(kinds["incident.created"][0].data["at"]) - reported_at).total_seconds() / 60)
            if kinds["incident.dispatched"]:
                d = kinds["incident.dispatched"][0]
                c["incidents_dispatched"] += 1
                dispatched_at = _instant(d.data["at"])
                s["dispatch"].append((dispatched_at - reported_at).total_seconds() / 60)
                if not deferred and (closed is not None or _instant(d.data["handling_due"]) < due_at):
                    c["incidents_due"] += 1
            if closed is not None:
                closed_at = _instant(closed.data["at"])
                c["incidents_closed"] += 1
                c["incidents_closed_on_time"] += bool(not deferred and closed.data["on_time"])
                c["incidents_reworked"] += bool(kinds["incident.rework_ordered"])
                last_feedback = max(_instant(f.data["at"]) for f in kinds["incident.fed_back"]
                                    if _instant(f.data["at"]) <= closed_at)
                s["handle"].append((last_feedback - dispatched_at).total_seconds() / 60)
                s["verify"].append((closed_at - last_feedback).total_seconds() / 60)
        if kinds["dispute.filed"]:
            filed = kinds["dispute.filed"][0]
            filed_at = _instant(filed.data["at"])
            if not selected(filed.data["grid"], filed_at):
                continue
            c = counts[_label(filed.data["grid"], filed_at, group_by)]
            mediated = bool(kinds["dispute.mediated"])
            c["disputes_filed"] += 1
            c["disputes_mediated"] += mediated
            c["disputes_settled"] += mediated and bool(kinds["dispute.settled"])
            c["disputes_referred"] += bool(kinds["dispute.referred"])
        for e in kinds["community_work.refused"] + kinds["community_work.accepted"]:
            at = _instant(e.data["at"])
            if selected(e.data["community"], at):
                counts[_label(e.data["community"], at, group_by)][f"community_work_{e.type.split('.')[3]}"] += 1
        submitted = kinds["daily_report.submitted"]
        if submitted or kinds["daily_report.missing"]:
            first = (submitted or kinds["daily_report.missing"])[0].data
            day_start = datetime.combine(date.fromisoformat(first["date"]), datetime.min.time(), CHINA)
            if selected(first["grid"], day_start):
                c = counts[_label(first["grid"], day_start, group_by)]
                c["reports_expected"] += 1
                c["reports_submitted"] += bool(submitted)
                c["reports_missing"] += not submitted
                c["reports_late"] += bool(submitted) and submitted[0].data["late"]

    def figures(c: dict[str, int], s: dict[str, list[float]]) -> dict[str, Any]:
        out: dict[str, Any] = {k: c.get(k, 0) for k in FIGURES}
        out.update(closure_rate=_share(c["incidents_closed"], c["incidents_dispatched"]),
                   on_time_closure_rate=_share(c["incidents_closed_on_time"], c["incidents_due"]),
                   rework_rate=_share(c["incidents_reworked"], c["incidents_closed"]),
                   report_coverage=_share(c["reports_submitted"], c["reports_expected"]),
                   mediation_rate=_share(c["disputes_mediated"], c["disputes_filed"]),
                   mediation_success_rate=_share(c["disputes_settled"], c["disputes_mediated"]))
        for span in ("create", "dispatch", "handle", "verify"):
            out[f"minutes_to_{span}_median"], out[f"minutes_to_{span}_p90"] = _quantiles(s.get(span, []))
        return out

    result = {label: figures(counts[label], spans[label]) for label in counts}
    total_counts: dict[str, int] = defaultdict(int)
    total_spans: dict[str, list[float]] = defaultdict(list)
    for label in counts:
        for k, v in counts[label].items():
            total_counts[k] += v
        for k, v in spans[label].items():
            total_spans[k] += v
    result["total"] = figures(total_counts, total_spans)
    return result


FIGURES = ("incidents_reported", "incidents_created", "incidents_dispatched", "incidents_deferred",
           "incidents_closed", "incidents_due", "incidents_closed_on_time", "incidents_overdue", "reworks",
           "incidents_reworked", "reports_expected", "reports_submitted", "reports_missing", "reports_late",
           "disputes_filed", "disputes_mediated", "disputes_settled", "disputes_referred",
           "community_work_refused", "community_work_accepted")
