"""How a person is told (通知偏好), and the digests (消息摘要) that gather their items. Pure: no I/O.

A person (a token subject) chooses, for the in-app channel, `immediate` (every item pushed on
their live stream as it arrives: the default) or `digest`: the items of rules marked `digest`
(e.g. a case waiting for a community's review) still land in their inbox at once, but are not
pushed one by one; at the end of each period (`every_minutes`, aligned to midnight China time:
60 is on the hour) the ones they have not read are gathered into one item addressed to them,
and that one is pushed. Urgent rules are never digested (a rule cannot be both).

Who holds which role is the identity provider's to know, and an item is addressed to a role in
a jurisdiction, so the preferences keep the roles and jurisdictions of the token that set them:
the digest gathers the items of those. Setting the preferences again with a new token brings
them up to date.

`Preferences` is the aggregate, stream `preferences:<subject>`: `choose` records a choice (an
event only when something changed), `compile_digest` the digest of a period.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Any, Mapping, Sequence

from civicgrid_common.aggregate import Aggregate, applies
from civicgrid_common.calendar.working_days import CHINA_TZ
from civicgrid_common.events import NewEvent
from civicgrid_common.problems import Refusal, RuleViolation

from civicgrid_notifications.domain.templates import FieldErrors

PREFERENCES_SET = "civicgrid.notifications.preferences.set.v1"
DIGEST_COMPILED = "civicgrid.notifications.digest.compiled.v1"
EVENT_TYPES = (PREFERENCES_SET, DIGEST_COMPILED)

PERIODS = (15, 30, 60, 120, 240, 480, 1440)  # minutes; each divides a day
DEFAULT_PERIOD = 60
MAX_NAMED = 50  # items a digest names (it counts them all)
SHOWN = 10  # titles a digest's body lists
MAX_TITLE = 60  # characters of each title shown
DIGEST_RULE = "digest"  # the ledger's rule id for a digest
_STREAM = "preferences:"
# Channels people are told on; the others reach applicants (SMS) or department systems (webhooks).
PEOPLE_CHANNELS = ("in_app",)


class InApp(enum.StrEnum):
    IMMEDIATE = "immediate"
    DIGEST = "digest"


class PreferencesRejected(RuleViolation):
    refusal = Refusal.INVALID

    def __init__(self, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__("invalid_preferences", "The notification preferences do not hold.", errors=errors)


@dataclass(frozen=True)
class Choice:
    in_app: InApp = InApp.IMMEDIATE
    every_minutes: int = DEFAULT_PERIOD


def parse_choice(raw: Any) -> Choice:
    """`{"in_app": {"delivery": "digest", "every_minutes": 60}}`; every problem at once."""
    errors = FieldErrors()
    if not isinstance(raw, Mapping):
        raise PreferencesRejected([{"pointer": "#", "detail": "preferences are an object with in_app"}])
    for member in raw:
        if member not in PEOPLE_CHANNELS:
            errors.add((str(member)[:64],), "in_app is the channel that reaches people today: SMS reaches "
                                            "applicants, webhooks department systems")
    in_app = raw.get("in_app")
    choice = Choice()
    if not isinstance(in_app, Mapping):
        errors.add(("in_app",), "required: an object with delivery (immediate or digest)")
    else:
        for member in in_app:
            if member not in ("delivery", "every_minutes"):
                errors.add(("in_app", str(member)[:64]), "not a member; allowed: delivery, every_minutes")
        delivery = InApp.IMMEDIATE
        try:
            delivery = InApp(in_app.get("delivery"))
        except ValueError:
            errors.add(("in_app", "delivery"), "required" if in_app.get("delivery") is None else
                       "immediate or digest")
        every = in_app.get("every_minutes", DEFAULT_PERIOD)
        if isinstance(every, bool) or every not in PERIODS:
            errors.add(("in_app", "every_minutes"), "one of " + ", ".join(map(str, PERIODS)) + " (minutes)")
            every = DEFAULT_PERIOD
        choice = Choice(delivery, every)
    if errors:
        raise PreferencesRejected(errors.items())
    return choice


def next_period_end(after: datetime, every_minutes: int) -> datetime:
    """The first period boundary strictly after `after`: boundaries fall every `every_minutes`
    from midnight China time (which keeps no daylight saving)."""
    if every_minutes not in PERIODS:
        raise ValueError(f"a digest period is one of {PERIODS} minutes")
    local = after.astimezone(CHINA_TZ)
    midnight = datetime.combine(local.date(), time(0), CHINA_TZ)
    step = timedelta(minutes=every_minutes)
    return (midnight + ((local - midnight) // step + 1) * step).astimezone(timezone.utc)


def is_period_end(at: datetime, every_minutes: int) -> bool:
    return every_minutes in PERIODS and next_period_end(at - timedelta(microseconds=1), every_minutes) == at


def digest_message(titles: Sequence[str], total: int, start: datetime, end: datetime) -> dict[str, str]:
    """The digest's in-app item (zh-CN, as the inbox's other items): how many, from when, and
    the first titles."""
    s, e = start.astimezone(CHINA_TZ), end.astimezone(CHINA_TZ)
    since = f"{s:%H:%M}" if s.date() == e.date() else f"{s:%m-%d %H:%M}"
    shown = [t if len(t) <= MAX_TITLE else t[:MAX_TITLE - 1] + "…" for t in titles[:SHOWN]]
    body = "；".join(shown) + (f"；等 {total} 条" if total > len(shown) else "。")
    return {"title": f"消息摘要：{since}–{e:%H:%M} 有 {total} 条新消息", "body": body, "link": "/inbox"}


def _instant(value: datetime) -> str:
    if value.utcoffset() is None:
        raise ValueError("instants are timezone-aware")
    return value.astimezone(timezone.utc).isoformat()


class Preferences(Aggregate):
    """One person's preferences; stream id `preferences:<subject>`."""

    stream_type = "notification_preferences"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        if not id.startswith(_STREAM) or len(id) == len(_STREAM):
            raise ValueError(f"{id!r} is not a preferences stream id (preferences:<subject>)")
        self.subject = id[len(_STREAM):]
        self.choice = Choice()
        self.roles: tuple[str, ...] = ()
        self.jurisdictions: tuple[str, ...] = ()
        # The digest gathers the items after this instant: when digests were chosen, then the end
        # of the last digest. None while items go out one by one.
        self.digest_since: datetime | None = None

    @staticmethod
    def stream_for(subject: str) -> str:
        return _STREAM + subject

    @property
    def digests(self) -> bool:
        return self.choice.in_app is InApp.DIGEST

    # ------------------------------------------------------------------ commands

    def choose(self, choice: Choice, *, roles: Sequence[str], jurisdictions: Sequence[str], at: datetime) -> bool:
        """Record a choice and the token's scope; False when nothing changed (no event)."""
        roles_, codes = tuple(sorted(set(roles))), tuple(sorted(set(jurisdictions)))
        if self.version and (choice, roles_, codes) == (self.choice, self.roles, self.jurisdictions):
            return False
        self._emit(PREFERENCES_SET, {"subject": self.subject, "in_app": choice.in_app.value,
                                     "every_minutes": choice.every_minutes, "roles": list(roles_),
                                     "jurisdictions": list(codes), "at": _instant(at)})
        return True

    def digest_window(self, period_end: datetime) -> tuple[datetime, datetime] | None:
        """The (after, until] span a digest ending at `period_end` gathers; None when this person
        takes no digest, or it is not a boundary of their period (an earlier choice's timer), or
        it is gathered already."""
        if not self.digests or self.digest_since is None:
            return None
        if not is_period_end(period_end, self.choice.every_minutes) or period_end <= self.digest_since:
            return None
        return self.digest_since, period_end

    def compile_digest(self, period_end: datetime, items: Sequence[int], total: int, *, at: datetime) -> NewEvent:
        """The digest of the period ending at `period_end`, of `items` (oldest first) of `total`."""
        window = self.digest_window(period_end)
        if window is None:
            raise ValueError(f"no digest of {self.subject!r} ends at {period_end.isoformat()}")
        if not items or total < len(items):
            raise ValueError("a digest gathers at least one item, and counts every one it names")
        return self._emit(DIGEST_COMPILED, {"subject": self.subject, "period_start": _instant(window[0]),
                                            "period_end": _instant(period_end), "items": list(items[:MAX_NAMED]),
                                            "total": total, "at": _instant(at)})

    # ------------------------------------------------------------------ state

    @applies(PREFERENCES_SET)
    def _set(self, data: Mapping[str, Any]) -> None:
        chosen = Choice(InApp(data["in_app"]), int(data["every_minutes"]))
        if chosen.in_app is InApp.DIGEST and not self.digests:
            self.digest_since = datetime.fromisoformat(data["at"])
        elif chosen.in_app is InApp.IMMEDIATE:
            self.digest_since = None
        self.choice = chosen
        self.roles, self.jurisdictions = tuple(data["roles"]), tuple(data["jurisdictions"])

    @applies(DIGEST_COMPILED)
    def _compiled(self, data: Mapping[str, Any]) -> None:
        self.digest_since = datetime.fromisoformat(data["period_end"])
