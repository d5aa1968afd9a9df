"""What every aggregate of the grid service shares: its refusals, its instants, and the
client-generated ids that make a phone's offline queue safe to replay. Pure: no I/O.

Refusals follow the platform's family (civicgrid_common.problems): a fault of the input is
`InvalidInput` (422, naming the body member), a command the state does not allow now is
`StateConflict` (409), a unit acting on work that is not its own is `NotYours` (403).
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Mapping

from civicgrid_common.aggregate import Aggregate, EventLike
from civicgrid_common.problems import Refusal, RuleViolation

PREFIX = "civicgrid.grid."
MAX_TEXT = 2000  # a note, a reason, a result: what a phone's text box holds
MAX_NAME = 100
# A client-generated id (a UUID, usually): opaque, printable, short.
_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_SUBJECT = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class GridRuleViolation(RuleViolation):
    """A rule of the grid service refused a command; nothing was emitted."""


class InvalidInput(GridRuleViolation):
    """The input breaks a rule: 422, naming the member at fault (`field`, a path like 'polygon'
    or 'location/lat')."""

    refusal = Refusal.INVALID

    def __init__(self, code: str, message: str, *, field: str, **extra: Any) -> None:
        super().__init__(code, message, field=field, **extra)


class InvalidParameter(GridRuleViolation):
    """A path or query parameter breaks a rule: 422, naming it (`parameter=(name, "path")`)."""

    refusal = Refusal.INVALID


class StateConflict(GridRuleViolation):
    """The aggregate's current state does not allow the command: 409."""

    refusal = Refusal.CONFLICT


class NotYours(GridRuleViolation):
    """A unit acting on work dispatched to another: 403."""

    refusal = Refusal.FORBIDDEN


# ---------------------------------------------------------------------------- instants


def utc(at: Any, field: str = "at") -> datetime:
    """An instant as the domain keeps it: timezone-aware, in UTC. A naive datetime is refused:
    whose 09:00 it was cannot be guessed."""
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput("naive_instant", f"{field} must be a timezone-aware instant", field=field)
    return at.astimezone(timezone.utc)


def iso(at: datetime) -> str:
    """An instant in event data: ISO 8601 in UTC."""
    return at.astimezone(timezone.utc).isoformat()


def instant(text: str) -> datetime:
    """An instant read back from event data."""
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def text(value: Any, field: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    """A bounded free text, trimmed; control characters other than newlines refused."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("invalid_text", f"{field} must be text", field=field)
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{field.rsplit('/', 1)[-1]}_required", f"{field} must not be empty", field=field)
    if len(value) > limit:
        raise InvalidInput("text_too_long", f"{field} is longer than {limit} characters", field=field)
    if _CONTROL.search(value):
        raise InvalidInput("invalid_text", f"{field} contains control characters", field=field)
    return value


def subject(value: Any, field: str = "by") -> str:
    """Who acted: a token's subject (staff and grid workers), never a name or a phone number."""
    if not isinstance(value, str) or not _SUBJECT.match(value):
        raise InvalidInput("invalid_subject", f"{field} must be a token subject (1 to 128 printable characters)",
                           field=field)
    return value


def client_id(value: Any, field: str = "client_id") -> str:
    if not isinstance(value, str) or not _CLIENT_ID.match(value):
        raise InvalidInput("invalid_client_id", f"{field} must be 1 to 64 letters, digits or _.:- "
                           "(a UUID made on the phone)", field=field)
    return value


# ---------------------------------------------------------------------------- the base aggregate


class GridAggregate(Aggregate):
    """An aggregate whose commands carry a client-generated id.

    A phone queues its writes while offline and sends the queue again until it is
    acknowledged, so a command may arrive twice. Each event of a command carries the command's
    `client_id`; the aggregate remembers them (in `apply`, so replay remembers them too), and
    a command whose client id was seen is recorded once: `_seen` says so and the command emits
    nothing. The same id on another kind of command is a client's bug, refused.

    Instants must not go backwards within one aggregate: a command older than the last event
    is refused (the loop's durations would be negative)."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.client_ids: dict[str, str] = {}  # client id -> the event type it recorded
        self.last_at: datetime | None = None

    def apply(self, event: EventLike) -> None:
        super().apply(event)
        data: Mapping[str, Any] = event.data
        if data.get("client_id"):
            self.client_ids[data["client_id"]] = event.type
        if data.get("at"):
            self.last_at = instant(data["at"])

    def _seen(self, cid: str | None, *event_types: str, field: str = "client_id") -> bool:
        """Whether the command of this client id was recorded already (by one of the event types
        the command emits)."""
        if cid is None:
            return False
        client_id(cid, field)
        recorded = self.client_ids.get(cid)
        if recorded is None:
            return False
        if recorded not in event_types:
            raise StateConflict("client_id_reused", f"client id {cid!r} already recorded a {recorded}",
                                field=field)
        return True

    def _not_before_last(self, at: datetime) -> None:
        if self.last_at is not None and at < self.last_at:
            raise StateConflict("time_goes_backwards",
                                f"{iso(at)} is before the last recorded instant {iso(self.last_at)}")


# ---------------------------------------------------------------------------- photos

MAX_PHOTOS = 9
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def photos(value: Any, field: str = "photos") -> list[str]:
    """Photos by their content address (the SHA-256 of the stored, metadata-stripped bytes):
    the upload route stores them, events only name them."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or len(value) > MAX_PHOTOS:
        raise InvalidInput("invalid_photos", f"at most {MAX_PHOTOS} photos, by their SHA-256", field=field)
    for i, digest in enumerate(value):
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise InvalidInput("invalid_photo", "a photo is named by the lower-case hex SHA-256 of its bytes",
                               field=f"{field}/{i}")
    if len(set(value)) != len(value):
        raise InvalidInput("photo_twice", "a photo is named twice", field=field)
    return list(value)
