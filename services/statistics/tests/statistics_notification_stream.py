"""A generated stream of notifications' delivery steps (data of the shapes
services/notifications/civicgrid_notifications/adapters/delivery_events.py emits), and the
delivery figures counted again from those raw events in plain Python: no SQL, no fact store, no
code of civicgrid_statistics. What the notification KPI tests compare the service with.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

from event_stream import Generated, Stream

CHINA = timezone(timedelta(hours=8))
UTC = timezone.utc
DISTRICT, OTHER_DISTRICT = "320104", "320105"
DEPARTMENTS = ("civil_affairs", "public_security", "urban_management")
DAYS = [date(2026, 3, d) for d in (2, 3, 4, 5, 6)]
TASK = "civicgrid.approval.civil_affairs_task.issued.v1"
STEPS = ("sent", "delivered", "failed", "dead_lettered")


def _z(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


class NotificationStream(Stream):
    def step(self, step: str, delivery: dict[str, Any], at: datetime, **extra: Any) -> None:
        data = {"district": delivery["district"], "delivery_id": delivery["id"], "channel": delivery["channel"],
                "recipient_kind": delivery.get("recipient_kind") or ("department" if delivery["department"] else "role"),
                "department": delivery["department"], "rule_id": "department-task", "cause_id": delivery["cause"],
                "cause_type": TASK, "at": _z(at), **extra}
        self.emit("deliveries", f"notifications.notification.{step}", f"notification-delivery:{delivery['id']}",
                  at, data)

    def delivery(self, n: int) -> None:
        rng = self.rng
        if n % 13 == 5:  # an SMS to an applicant intake holds no mobile number of
            self.unreachable(n)
            return
        webhook = rng.random() < 0.7
        d = {"id": f"msg_{n:032x}", "cause": f"cause-{n}", "district": OTHER_DISTRICT if n % 11 == 0 else DISTRICT,
             "channel": "webhook" if webhook else "in_app", "department": rng.choice(DEPARTMENTS) if webhook else None}
        day = rng.choice(DAYS)
        recorded = datetime(day.year, day.month, day.day, rng.randint(8, 17), rng.randint(0, 59),
                            rng.randint(0, 59), tzinfo=CHINA)
        since = {"recorded_at": _z(recorded)}
        if not webhook:
            self.step("delivered", d, recorded, **since, attempts=0)
            return
        t, attempt = recorded, 0
        fate = rng.choice(["sent", "sent", "sent", "dead", "dead_then_replayed", "pending"])
        failures = {"sent": rng.randint(0, 2), "dead": 3, "dead_then_replayed": 3, "pending": 1}[fate]
        for i in range(failures):
            attempt += 1
            t += timedelta(seconds=rng.choice([1, 5, 300]))
            last = fate.startswith("dead") and i == failures - 1
            self.step("failed", d, t, attempt=attempt, status_code=rng.choice([500, 503, None]),
                      retry_at=None if last else _z(t + timedelta(seconds=5)), endpoint_disabled=False)
        if fate.startswith("dead"):
            self.step("dead_lettered", d, t, **since, attempts=attempt, last_status_code=503, reason="schedule_spent")
        if fate in ("sent", "dead_then_replayed"):
            attempt += 1
            t += timedelta(seconds=rng.uniform(0.05, 3.0) if fate == "sent" else 3600)
            self.step("sent", d, t, **since, attempts=attempt)


    def unreachable(self, n: int) -> None:
        """An SMS to an applicant without a mobile number: one attempt finds no contact, dead-lettered
        as no_contact; one in three such was replayed once a number was on record, and then sent."""
        d = {"id": f"msg_{n:032x}", "cause": f"cause-{n}", "district": DISTRICT, "channel": "sms", "department": None,
             "recipient_kind": "applicant"}
        day = self.rng.choice(DAYS)
        recorded = datetime(day.year, day.month, day.day, 9, self.rng.randint(0, 59), tzinfo=CHINA)
        since = {"recorded_at": _z(recorded)}
        t = recorded + timedelta(seconds=1)
        self.step("failed", d, t, attempt=1, status_code=None, retry_at=None, endpoint_disabled=False)
        self.step("dead_lettered", d, t, **since, attempts=1, last_status_code=None, reason="no_contact")
        if n % 3 == 0:
            t += timedelta(hours=2)
            self.step("sent", d, t, **since, attempts=2)


def generate_notifications(deliveries: int = 90, seed: int = 7) -> NotificationStream:
    stream = NotificationStream(seed)
    for n in range(deliveries):
        stream.delivery(n)
    stream.events.sort(key=lambda e: e.recorded_at)  # published as they happened; each stream in order
    return stream


def _label(group_by: str, d: dict[str, Any]) -> str:
    if group_by == "all":
        return "all"
    if group_by == "channel":
        return d["channel"]
    if group_by == "department":
        return d["department"] or "none"
    local = d["at"].astimezone(CHINA).date()
    return local.isoformat() if group_by == "day" else local.strftime("%Y-%m")


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    if q == 0.5:
        return statistics.median(values)
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def recount(events: Iterable[Generated], group_by: str, *, scope: tuple[str, ...] = (DISTRICT,),
            channel: str | None = None) -> dict[str, dict[str, Any]]:
    """Every delivery figure per label, plus "total", from the raw events (an event published
    twice counts once, as the same event id)."""
    seen: set[str] = set()
    per: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.id in seen:
            continue
        seen.add(e.id)
        d = per.setdefault(e.key, {"steps": [], "district": e.data["district"], "channel": e.data["channel"],
                                   "department": e.data["department"]})
        d["steps"].append((e.type.split(".")[3], datetime.fromisoformat(e.data["at"]), e.data))
    groups: dict[str, dict[str, Any]] = defaultdict(lambda: {"deliveries": 0, "succeeded": 0, "dead": 0,
                                                             "unreachable": 0, "failed_attempts": 0, "seconds": []})
    for d in per.values():
        if not any(d["district"].startswith(s) for s in scope) or (channel and d["channel"] != channel):
            continue
        recorded = [datetime.fromisoformat(data["recorded_at"]) for _, _, data in d["steps"] if "recorded_at" in data]
        d["at"] = min(recorded) if recorded else min(at for _, at, _ in d["steps"])
        success = [at for step, at, _ in d["steps"] if step in ("sent", "delivered")]
        for label in (_label(group_by, d), "total"):
            g = groups[label]
            g["deliveries"] += 1
            g["failed_attempts"] += sum(1 for step, _, _ in d["steps"] if step == "failed")
            if success:
                g["succeeded"] += 1
                g["seconds"].append((min(success) - min(recorded)).total_seconds())
            elif dead := [data for step, _, data in d["steps"] if step == "dead_lettered"]:
                # the last dead letter says why: no contact is nobody to reach, not a failure
                g["unreachable" if dead[-1]["reason"] == "no_contact" else "dead"] += 1
    out = {}
    for label, g in groups.items():
        finished = g["succeeded"] + g["dead"]
        out[label] = {"deliveries": g["deliveries"], "succeeded": g["succeeded"], "dead": g["dead"],
                      "unreachable": g["unreachable"], "failed_attempts": g["failed_attempts"],
                      "pending": g["deliveries"] - g["succeeded"] - g["dead"] - g["unreachable"],
                      "delivery_rate": round(g["succeeded"] / finished, 4) if finished else None,
                      "seconds_to_deliver_p50": _quantile(g["seconds"], 0.5),
                      "seconds_to_deliver_p99": _quantile(g["seconds"], 0.99)}
    return out
