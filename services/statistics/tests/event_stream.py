"""A stream of generated, contract-valid events as intake and approval publish them, and the
figures counted independently from those raw events (plain Python over the event list, no SQL,
no fact store): what every KPI test compares the service with.

    stream = generate(cases=200, complaints=100, seed=7)
    records = stream.records(topics)      # CloudEvents binary-mode Kafka records
    expected = stream.expected()          # figures per community and overall
"""
from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from civicgrid_common.calendar import WorkingCalendar
from civicgrid_common.calendar.working_days import local_date
from civicgrid_common.cloudevents import KafkaRecord, to_kafka_record
from civicgrid_common.events import StoredEvent

CHINA = timezone(timedelta(hours=8))
STREET = "320104001"
COMMUNITIES = [f"{STREET}00{i}" for i in (1, 2, 3)]
AFFAIRS = ["dibao", "unemployment_registration", "elderly_care_file", "shop_sign"]
CASE_CHANNELS = ["window", "web", "mobile_app", "self_service"]
CATEGORIES = ["urban_construction", "environmental_protection", "public_order", "housing_management"]
COMPLAINT_CHANNELS = ["window", "phone", "web", "open311", "grid_worker"]
DEPARTMENTS = ["urban_management", "housing", "public_security"]
LEVELS = ["very_satisfied", "satisfied", "basically_satisfied", "dissatisfied", "very_dissatisfied"]
CLERKS = ["clerk-a", "clerk-b", "clerk-c"]
REVIEWERS = ["reviewer-x", "reviewer-y"]
SIG = "A" * 86
CAL = WorkingCalendar()


@dataclass
class Generated:
    topic: str  # "cases" | "complaints" | "approvals"
    type: str
    key: str
    data: dict[str, Any]
    recorded_at: datetime
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _t(x: datetime) -> str:
    return x.astimezone(CHINA).isoformat()


class Stream:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.events: list[Generated] = []
        self._versions: Counter[str] = Counter()

    def emit(self, topic: str, kind: str, key: str, at: datetime, data: dict[str, Any]) -> None:
        self.events.append(Generated(topic, f"civicgrid.{kind}.v1", key, data, at))

    def records(self, topics: dict[str, str], duplicate_share: float = 0.0) -> list[KafkaRecord]:
        """Kafka records in publication order; `duplicate_share` of them published twice (as
        the at-least-once relay may), the copy a little later in the log."""
        out: list[KafkaRecord] = []
        pending: list[KafkaRecord] = []
        for i, ev in enumerate(self.events):
            self._versions[ev.key] += 1
            stored = StoredEvent(id=uuid.UUID(ev.id), stream_id=ev.key, stream_type=ev.type.split(".")[2],
                                 version=self._versions[ev.key], position=i + 1, type=ev.type, data=ev.data,
                                 metadata={}, recorded_at=ev.recorded_at.astimezone(timezone.utc), hash="0" * 64,
                                 prev_hash=None)
            rec = to_kafka_record(stored, topic=topics[ev.topic], source=f"/civicgrid/{ev.type.split('.')[1]}",
                                  schema_base_url="http://127.0.0.1:8000/contracts")
            out.append(rec)
            if self.rng.random() < duplicate_share:
                pending.append(rec)
            if pending and self.rng.random() < 0.3:
                out.append(pending.pop(0))
        return out + pending

    # ------------------------------------------------------------------ what happened
    def case(self, start: datetime) -> None:
        r = self.rng
        cid = str(uuid.UUID(int=r.getrandbits(128), version=4))
        community, affair, channel, clerk = r.choice(COMMUNITIES), r.choice(AFFAIRS), r.choice(CASE_CHANNELS), r.choice(CLERKS)
        limit = r.choice([5, 10, 20])
        at = start
        self.emit("cases", "intake.case.registered", cid, at, {
            "applicant_id": f"app-{r.randrange(10**6)}", "affair_code": affair, "affair_version": 1,
            "time_limit_working_days": limit, "level": "street", "routing": {"kind": "street"},
            "jurisdiction": community, "channel": channel, "materials_required": ["id_card"],
            "materials_handed_in": ["id_card"], "materials_missing": [], "registered_at": _t(at), "actor": clerk})
        at += timedelta(minutes=r.randrange(5, 60))
        if r.random() < 0.12:
            self.emit("cases", "intake.case.refused", cid, at, {"reason": "not eligible here", "refused_at": _t(at), "actor": clerk})
            return
        due = CAL.add_working_days(at, limit)
        self.emit("cases", "intake.case.accepted", cid, at, {
            "case_number": f"{r.randrange(10**21):021d}", "accepted_at": _t(at), "time_limit_working_days": limit,
            "due_date": due.isoformat(), "actor": clerk})
        if r.random() < 0.1:
            at += timedelta(hours=1)
            self.emit("cases", "intake.case.green_channelled", cid, at, {
                "reason": "urgent", "green_channelled_at": _t(at), "actor": "street-reviewer-1", "actor_role": "street_reviewer"})
        approval = str(uuid.UUID(int=r.getrandbits(128), version=4))
        at += timedelta(hours=r.randrange(1, 30))
        self.emit("approvals", "approval.approval.started", approval, at, {
            "case_id": cid, "case_number": None, "affair_code": affair, "workflow_version": 1, "definition": {},
            "path": ["community", "street"], "jurisdiction": community, "routing": {"kind": "street"},
            "green_channel": False, "started_at": _t(at), "started_by": "system", "step": "community",
            "step_due_date": due.isoformat()})
        for _ in range(r.randrange(0, 3)):
            outcome = r.choice(["extended", "sent_back", "supplement_requested", "escalated"])
            at += timedelta(hours=r.randrange(1, 72))
            self._acted(approval, cid, r.choice(REVIEWERS), outcome, at)
            if outcome == "supplement_requested":
                at += timedelta(hours=r.randrange(1, 48))
                self.emit("cases", "intake.case.supplemented", cid, at, {
                    "materials_added": ["proof"], "materials_missing": [], "supplemented_at": _t(at), "actor": clerk})
        fate = r.random()
        if fate < 0.05:
            at += timedelta(days=1)
            self.emit("cases", "intake.case.withdrawn", cid, at, {"withdrawn_at": _t(at)})
            return
        if fate < 0.25:
            return  # still running (perhaps overdue by now)
        at += timedelta(days=r.randrange(1, 30))
        outcome = "approved" if r.random() < 0.8 else "refused"
        self._acted(approval, cid, r.choice(REVIEWERS), outcome, at)
        self.emit("approvals", "approval.approval.concluded", approval, at, {
            "case_id": cid, "affair_code": affair, "outcome": outcome, "decided_at": _t(at), "decided_by": "bureau-1"})
        at += timedelta(minutes=5)
        self.emit("cases", "intake.case.completed", cid, at, {
            "outcome": outcome, "approval_reference": approval, "decided_at": _t(at), "completed_at": _t(at)})
        if r.random() < 0.6:
            at += timedelta(days=1)
            level = r.choice(LEVELS)
            bad = level in LEVELS[3:]
            self.emit("cases", "intake.case.rated", cid, at, {"level": level, "round": 1, "bad_review": bad, "rated_at": _t(at)})
            if bad:
                self.emit("cases", "intake.case.follow_up_opened", cid, at, {
                    "opened_at": _t(at), "call_back_due": (local_date(at) + timedelta(days=1)).isoformat(),
                    "fix_due": (local_date(at) + timedelta(days=21)).isoformat(), "fix_working_days": 15})
                at += timedelta(hours=5)
                self.emit("cases", "intake.case.applicant_called_back", cid, at, {
                    "called_back_at": _t(at), "on_time": True, "actor": clerk})
                if r.random() < 0.7:
                    at += timedelta(days=r.randrange(1, 30))
                    self.emit("cases", "intake.case.follow_up_closed", cid, at, {
                        "closed_at": _t(at), "fixed_on_time": r.random() < 0.7, "actor": clerk})

    def _acted(self, approval: str, cid: str, actor: str, outcome: str, at: datetime) -> None:
        action = {"approved": "approve", "refused": "refuse", "escalated": "escalate", "extended": "extend",
                  "sent_back": "send_back", "supplement_requested": "request_supplement"}[outcome]
        self.emit("approvals", "approval.approval.acted", approval, at, {
            "case_id": cid, "task": "community.1", "step": "community", "branch": None, "action": action,
            "outcome": outcome, "from_step": "community", "to_step": None, "actor": actor,
            "actor_roles": ["community_reviewer"], "comment": "ok", "acted_at": _t(at),
            "seal": {"key_id": "k1", "signature": SIG, "decision": {
                "approval_id": approval, "step": "community", "branch": None, "action": action, "outcome": outcome,
                "time": _t(at), "signer": actor, "key_id": "k1", "previous": None}}})

    def complaint(self, start: datetime) -> None:
        r = self.rng
        cid = f"cp-{r.getrandbits(64):016x}"
        community, category, channel = r.choice(COMMUNITIES), r.choice(CATEGORIES), r.choice(COMPLAINT_CHANNELS)
        at = start
        due = _t(at + timedelta(days=7))
        self.emit("complaints", "intake.complaint.received", cid, at, {
            "complaint_id": cid, "category": category, "channel": channel, "urgency": "general",
            "jurisdiction": community, "location": {"address": "Huaihai Road 1"}, "description": "noise",
            "anonymous": True, "received_at": _t(at), "feedback_due_at": due})
        if r.random() < 0.1:
            return
        at += timedelta(hours=1)
        department = r.choice(DEPARTMENTS)
        self.emit("complaints", "intake.complaint.routed", cid, at, {
            "routing": {"kind": "department", "department": department}, "routed_at": _t(at)})
        if r.random() < 0.15:
            return
        at += timedelta(hours=r.randrange(1, 200))
        on_time = at <= start + timedelta(days=7)
        self.emit("complaints", "intake.complaint.responded", cid, at, {
            "responded_at": _t(at), "by": department, "response_seconds": int((at - start).total_seconds()),
            "feedback_due_at": due, "on_time": on_time})
        at += timedelta(hours=2)
        resolved = r.random() < 0.75
        self.emit("complaints", "intake.complaint.answered", cid, at, {
            "answered_at": _t(at), "answer": "done", "resolved": resolved, "round": 1,
            "handling_seconds": int((at - start).total_seconds()), "feedback_due_at": due, "on_time": on_time})
        self.emit("complaints", "intake.complaint.closed", cid, at, {"closed_at": _t(at), "round": 1, "resolved": resolved})
        if r.random() < 0.7:
            at += timedelta(days=1)
            rating = r.choice(LEVELS)
            self.emit("complaints", "intake.complaint.rated", cid, at, {
                "rated_at": _t(at), "rating": rating, "satisfied": rating in LEVELS[:3], "round": 1, "final": True})

    # ------------------------------------------------------------------ independent counts
    def as_of(self, instant: datetime) -> "Stream":
        """The stream as it stood at `instant`: only the events recorded by then."""
        past = Stream(0)
        past.events = [e for e in self.events if e.recorded_at <= instant]
        return past

    def expected(self, now: datetime | None = None) -> dict[str, Any]:
        """Figures per community ('all' for the street) counted from the raw events."""
        now = now or datetime.now(timezone.utc)
        cases: dict[str, dict[str, Any]] = {}
        complaints: dict[str, dict[str, Any]] = {}
        for ev in self.events:
            d, kind = ev.data, ev.type[len("civicgrid."):-3]
            if kind == "intake.case.registered":
                cases[ev.key] = {"j": d["jurisdiction"], "affair": d["affair_code"], "channel": d["channel"], "k": Counter()}
            elif kind.startswith("intake.case."):
                cases[ev.key]["k"][kind] += 1
                if kind == "intake.case.accepted":
                    cases[ev.key]["due"] = date.fromisoformat(d["due_date"])
                if kind == "intake.case.completed":
                    cases[ev.key]["completed_on"] = local_date(datetime.fromisoformat(d["completed_at"]))
                if kind == "intake.case.rated":
                    cases[ev.key]["rating"] = d["level"]
            elif kind == "approval.approval.acted":
                cases[d["case_id"]]["k"]["acted." + d["outcome"]] += 1
            elif kind == "intake.complaint.received":
                complaints[ev.key] = {"j": d["jurisdiction"], "category": d["category"], "k": Counter(), "d": {}}
            elif kind.startswith("intake.complaint."):
                complaints[ev.key]["k"][kind] += 1
                complaints[ev.key]["d"][kind] = d
        out: dict[str, Any] = {"cases": defaultdict(Counter), "complaints": defaultdict(Counter),
                               "cases_by_affair": defaultdict(Counter)}
        today = local_date(now)
        for c in cases.values():
            k = c["k"]
            row = Counter({
                "registered": 1,
                "accepted": int(bool(k["intake.case.accepted"])),
                "refused": int(bool(k["intake.case.refused"])),
                "withdrawn": int(bool(k["intake.case.withdrawn"])),
                "completed": int(bool(k["intake.case.completed"])),
                "completed_on_time": int(bool(k["intake.case.completed"]) and c["completed_on"] <= c["due"]),
                "overdue_now": int(bool(k["intake.case.accepted"]) and not k["intake.case.completed"]
                                   and not k["intake.case.withdrawn"] and c["due"] < today),
                "green_channelled": int(bool(k["intake.case.green_channelled"])),
                "supplemented": k["intake.case.supplemented"],
                "extended": k["acted.extended"], "sent_back": k["acted.sent_back"], "returned": k["acted.refused"],
            })
            for label in (c["j"], "all"):
                out["cases"][label].update(row)
            out["cases_by_affair"][c["affair"]].update(row)
        for c in complaints.values():
            k, d = c["k"], c["d"]
            rated = d.get("intake.complaint.rated")
            row = Counter({
                "received": 1,
                "responded": int(bool(k["intake.complaint.responded"])),
                "resolved": int(bool(d.get("intake.complaint.closed", {}).get("resolved"))),
                "rated": int(rated is not None),
                "satisfied": int(bool(rated and rated["satisfied"])),
            })
            for label in (c["j"], "all"):
                out["complaints"][label].update(row)
        return out


def generate(cases: int, complaints: int, seed: int = 1, start: datetime | None = None) -> Stream:
    stream = Stream(seed)
    t = start or datetime(2026, 9, 1, 9, 0, tzinfo=CHINA)
    for i in range(max(cases, complaints)):
        if i < cases:
            stream.case(t + timedelta(minutes=37 * i))
        if i < complaints:
            stream.complaint(t + timedelta(minutes=53 * i))
    return stream
