"""Notification rules (通知规则): which event tells whom, on which channels, with which template.
Pure: no I/O.

A `Rule` matches events of one type whose data meets all its `conditions`, and names its
`recipients` (the applicant, the holders of a role in a jurisdiction, a grid's workers, a
department's system, a named user: the application resolves them to people), its `channels`
and its `template`. `urgent` marks a threat to life or property: it passes quiet hours; `digest`
lets the application gather its messages into a digest (never both).

A district keeps its rules and templates in one `RuleBook` (stream `rule-book:<district>`):
every change is an event carrying the whole rule or template and its version (1 when new, +1 on
each change: a removal is a change too, and a rule set again after its removal goes on from
there, so versions of an id never repeat). A rule names a template of the book that has a text
for each of its channels; a template's new version cannot drop a channel a rule uses.

`parse_rule` reads a rule from JSON, refusing every problem at once as a `RuleRejected` naming
each member (`conditions/0/op`, `recipients/1/role`, `channels/2`); `Rule.to_dict()` is the form
stored in events and `Rule.from_dict` reads it back without judging it again.
"""
from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from civicgrid_common.aggregate import Aggregate, applies
from civicgrid_common.identity.principal import Role, validate_jurisdiction
from civicgrid_common.problems import NotFound, Refusal, RuleViolation, body_error

from civicgrid_notifications.domain.facts import fact_problem
from civicgrid_notifications.domain.templates import (
    NAME_PATTERN,
    ZH_CN,
    Channel,
    FieldErrors,
    Template,
    TemplateRejected,
    validate_template,
)

__all__ = [
    "RULE_SET", "RULE_REMOVED", "TEMPLATE_SET", "EVENT_TYPES", "MAX_RULES", "MAX_TEMPLATES", "MAX_CONDITIONS",
    "MAX_RECIPIENTS", "MAX_IN_VALUES", "ConditionOp", "Condition", "RecipientKind", "Recipient", "Rule",
    "RuleRejected", "RuleNotFound", "BookFull", "RuleBook", "parse_rule", "lookup",
]

RULE_SET = "civicgrid.notifications.rule.set.v1"
RULE_REMOVED = "civicgrid.notifications.rule.removed.v1"
TEMPLATE_SET = "civicgrid.notifications.template.set.v1"
EVENT_TYPES = (RULE_SET, RULE_REMOVED, TEMPLATE_SET)

MAX_RULES = 500  # per book
MAX_TEMPLATES = 200  # per book
MAX_CONDITIONS = 10
MAX_RECIPIENTS = 10
MAX_CHANNELS = len(Channel)
MAX_IN_VALUES = 50
MAX_SCALAR = 200  # characters of a condition's text value
MAX_DESCRIPTION = 500
MAX_SUBJECT = 200
MAX_EVENT_TYPE = 200

RULE_ID = NAME_PATTERN  # the same slug as a template's name
# A civicgrid CloudEvent type: civicgrid.<service>.<entity>.<fact>.v<major>.
EVENT_TYPE_PATTERN = re.compile(r"^civicgrid\.[a-z_]+(\.[a-z_]+)+\.v[1-9][0-9]*$")
FIELD_PATTERN = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")  # a dotted path into event data
MAX_FIELD = 100
DEPARTMENT_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")  # as approval's departments
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SUBJECT_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_STREAM = re.compile(r"^rule-book:([0-9]{6})$")

Scalar = str | int | float | bool


class RuleRejected(RuleViolation):
    """A rule that does not hold, or that names what the book lacks; `errors` name each member."""

    refusal = Refusal.INVALID

    def __init__(self, errors: Sequence[Mapping[str, Any]], *, code: str = "invalid_rule",
                 message: str = "The notification rule does not hold.") -> None:
        super().__init__(code, message, errors=errors)


class RuleNotFound(NotFound):
    """No rule of this id in the book: 404."""

    def __init__(self, rule_id: str) -> None:
        super().__init__("notification rule", rule_id)
        self.rule_id = rule_id


class BookFull(RuleViolation):
    """The book holds as many rules (or templates) as it may: 409, naming the member of the new one."""

    refusal = Refusal.CONFLICT


# ---------------------------------------------------------------------------- conditions

_MISSING = object()


def _find(data: Any, path: str) -> Any:
    value = data
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def lookup(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path into event data (`location.community`); None if it is not
    there (a list or a scalar on the way counts as not there)."""
    value = _find(data, path)
    return None if value is _MISSING else value


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, "1" is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return isinstance(a, str) and isinstance(b, str) and a == b


class ConditionOp(enum.StrEnum):
    EQUALS = "equals"
    NOT_EQUALS = "not_equals"  # also holds when the field is absent
    IN = "in"
    PRESENT = "present"  # there and not null
    ABSENT = "absent"  # not there, or null


@dataclass(frozen=True)
class Condition:
    """A test of one field of the event's data. A field that is absent (or null) equals nothing
    and is in nothing; `not_equals` holds for it."""

    field: str
    op: ConditionOp
    value: Scalar | tuple[Scalar, ...] | None = None

    def holds(self, data: Mapping[str, Any]) -> bool:
        found = _find(data, self.field)
        there = found is not _MISSING and found is not None
        match self.op:
            case ConditionOp.PRESENT:
                return there
            case ConditionOp.ABSENT:
                return not there
            case ConditionOp.EQUALS:
                return there and _same(found, self.value)
            case ConditionOp.NOT_EQUALS:
                return not (there and _same(found, self.value))
            case ConditionOp.IN:
                return there and any(_same(found, v) for v in self.value or ())
        return False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "op": self.op.value}
        if self.op is ConditionOp.IN:
            out["value"] = list(self.value or ())
        elif self.op in (ConditionOp.EQUALS, ConditionOp.NOT_EQUALS):
            out["value"] = self.value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Condition:
        op = ConditionOp(data["op"])
        value = data.get("value")
        return cls(data["field"], op, tuple(value) if op is ConditionOp.IN else value)


# ---------------------------------------------------------------------------- recipients


class RecipientKind(enum.StrEnum):
    APPLICANT = "applicant"  # the applicant of the event's case or complaint (its subject)
    ROLE = "role"  # the holders of a role in a jurisdiction
    GRID_WORKERS = "grid_workers"  # the workers of a grid (网格员)
    DEPARTMENT = "department"  # a department's system
    USER = "user"  # one named user (a token subject)


# The parameters each kind takes; any other member is refused.
_PARAMETERS: Mapping[RecipientKind, tuple[str, ...]] = {
    RecipientKind.APPLICANT: (),
    RecipientKind.ROLE: ("role", "jurisdiction", "jurisdiction_field"),
    RecipientKind.GRID_WORKERS: ("grid_field",),
    RecipientKind.DEPARTMENT: ("department", "department_field"),
    RecipientKind.USER: ("subject",),
}
DEFAULT_GRID_FIELD = "grid"


@dataclass(frozen=True)
class Recipient:
    """Who a rule tells. role: `role` in the fixed `jurisdiction` or the one at
    `jurisdiction_field` of the event's data; grid_workers: the grid at `grid_field`;
    department: the fixed `department` or the one at `department_field`; user: `subject`."""

    kind: RecipientKind
    role: Role | None = None
    jurisdiction: str | None = None
    jurisdiction_field: str | None = None
    grid_field: str | None = None
    department: str | None = None
    department_field: str | None = None
    subject: str | None = None

    def scope(self, data: Mapping[str, Any]) -> str | None:
        """What the application resolves the recipient in, for an event's data: the
        jurisdiction (role), the grid (grid_workers), the department, the subject (user); None
        for the applicant (found from the event's subject) or when the event lacks it."""
        match self.kind:
            case RecipientKind.ROLE:
                value = self.jurisdiction or lookup(data, self.jurisdiction_field or "")
            case RecipientKind.GRID_WORKERS:
                value = lookup(data, self.grid_field or DEFAULT_GRID_FIELD)
            case RecipientKind.DEPARTMENT:
                value = self.department or lookup(data, self.department_field or "")
            case RecipientKind.USER:
                value = self.subject
            case _:
                value = None
        return value if isinstance(value, str) and value else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value}
        for name in _PARAMETERS[self.kind]:
            value = getattr(self, name)
            if value is not None:
                out[name] = value.value if isinstance(value, Role) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipient:
        kind = RecipientKind(data["kind"])
        params = {name: data[name] for name in _PARAMETERS[kind] if data.get(name) is not None}
        if "role" in params:
            params["role"] = Role(params["role"])
        return cls(kind, **params)


# ---------------------------------------------------------------------------- the rule


@dataclass(frozen=True)
class Rule:
    id: str
    event_type: str
    recipients: tuple[Recipient, ...]
    channels: tuple[Channel, ...]
    template: str
    conditions: tuple[Condition, ...] = ()
    urgent: bool = False  # a threat to life or property: passes quiet hours
    digest: bool = False  # may be gathered into a digest
    enabled: bool = True
    description: str | None = None

    def matches(self, event_type: str, data: Mapping[str, Any]) -> bool:
        """Whether an event of `event_type` with `data` calls for this rule."""
        return self.enabled and event_type == self.event_type and all(c.holds(data) for c in self.conditions)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "event_type": self.event_type,
            "conditions": [c.to_dict() for c in self.conditions],
            "recipients": [r.to_dict() for r in self.recipients],
            "channels": [c.value for c in self.channels],
            "template": self.template, "urgent": self.urgent, "digest": self.digest, "enabled": self.enabled,
        }
        if self.description is not None:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """A rule as an event stored it (to_dict): read, not judged again."""
        return cls(
            id=data["id"], event_type=data["event_type"],
            recipients=tuple(Recipient.from_dict(r) for r in data["recipients"]),
            channels=tuple(Channel(c) for c in data["channels"]), template=data["template"],
            conditions=tuple(Condition.from_dict(c) for c in data.get("conditions", ())),
            urgent=bool(data.get("urgent", False)), digest=bool(data.get("digest", False)),
            enabled=bool(data.get("enabled", True)), description=data.get("description"),
        )


# ---------------------------------------------------------------------------- parsing

_RULE_MEMBERS = ("id", "event_type", "description", "enabled", "conditions", "recipients", "channels", "template",
                 "urgent", "digest")


def _key(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 64 else text[:61] + "..."


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _unknown(raw: Mapping[str, Any], allowed: Sequence[str], path: tuple[Any, ...], what: str,
             errors: FieldErrors) -> bool:
    found = False
    for member in raw:
        if member not in allowed:
            errors.add((*path, _key(member)), f"not a member of {what}; allowed: {', '.join(allowed) or 'none'}")
            found = True
    return found


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return None if len(value) <= MAX_SCALAR else f"at most {MAX_SCALAR} characters"
    if isinstance(value, int):
        return None if abs(value) < 2**63 else "a number that large is not compared"
    if isinstance(value, float):
        return None if math.isfinite(value) else "a finite number"
    return "a JSON scalar: text, a number or true/false (test null with present/absent)"


def _field_path(value: Any, path: tuple[Any, ...], errors: FieldErrors, *, required: bool = True) -> str | None:
    if value is None:
        if required:
            errors.add(path, "required")
        return None
    if not isinstance(value, str) or len(value) > MAX_FIELD or not FIELD_PATTERN.match(value):
        errors.add(path, f"a dotted path into the event's data like priority or location.community, or "
                         f"about.<fact> (lower-case names, at most {MAX_FIELD} characters)")
        return None
    if (problem := fact_problem(value)) is not None:
        errors.add(path, problem)
        return None
    return value


def _parse_condition(raw: Any, path: tuple[Any, ...], errors: FieldErrors) -> Condition | None:
    if not isinstance(raw, Mapping):
        errors.add(path, "a condition is an object with field, op and value")
        return None
    bad = _unknown(raw, ("field", "op", "value"), path, "a condition", errors)
    field = _field_path(raw.get("field"), (*path, "field"), errors)
    op: ConditionOp | None = None
    try:
        op = ConditionOp(raw.get("op"))
    except ValueError:
        errors.add((*path, "op"), "required" if raw.get("op") is None else
                   f"one of {', '.join(o.value for o in ConditionOp)}")
    value = raw.get("value")
    where = (*path, "value")
    parsed: Scalar | tuple[Scalar, ...] | None = None
    if op in (ConditionOp.PRESENT, ConditionOp.ABSENT):
        if value is not None:
            errors.add(where, f"{op.value} takes no value")
            bad = True
    elif op is ConditionOp.IN:
        if not _is_list(value) or not 1 <= len(value) <= MAX_IN_VALUES:
            errors.add(where, f"required: a list of 1 to {MAX_IN_VALUES} values" if value is None
                       else f"a list of 1 to {MAX_IN_VALUES} values")
            bad = True
        else:
            for i, item in enumerate(value):
                if (problem := _scalar_problem(item)) is not None:
                    errors.add((*where, i), problem)
                    bad = True
            parsed = tuple(value)
    elif op is not None:
        if value is None:
            errors.add(where, f"required: the value {op.value} compares with (test null with present/absent)")
            bad = True
        elif (problem := _scalar_problem(value)) is not None:
            errors.add(where, problem)
            bad = True
        else:
            parsed = value
    if bad or field is None or op is None:
        return None
    return Condition(field, op, parsed)


def _one_of(raw: Mapping[str, Any], fixed: str, by_field: str, path: tuple[Any, ...], errors: FieldErrors,
            what: str) -> tuple[str | None, str | None, bool]:
    """(fixed value, field path, ok) of a parameter named either way, never both."""
    has_fixed, has_field = raw.get(fixed) is not None, raw.get(by_field) is not None
    if has_fixed and has_field:
        errors.add((*path, by_field), f"name either {fixed} or {by_field}, not both")
        return None, None, False
    if not has_fixed and not has_field:
        errors.add((*path, fixed), f"required: {fixed} ({what}) or {by_field} (a path into the event's data)")
        return None, None, False
    if has_field:
        value = _field_path(raw[by_field], (*path, by_field), errors)
        return None, value, value is not None
    return raw[fixed], None, True


def _parse_recipient(raw: Any, path: tuple[Any, ...], errors: FieldErrors) -> Recipient | None:
    if not isinstance(raw, Mapping):
        errors.add(path, "a recipient is an object with a kind")
        return None
    try:
        kind = RecipientKind(raw.get("kind"))
    except ValueError:
        errors.add((*path, "kind"), "required" if raw.get("kind") is None else
                   f"one of {', '.join(k.value for k in RecipientKind)}")
        return None
    allowed = ("kind", *_PARAMETERS[kind])
    ok = not _unknown(raw, allowed, path, f"a {kind.value} recipient", errors)
    params: dict[str, Any] = {}
    if kind is RecipientKind.ROLE:
        try:
            params["role"] = Role(raw.get("role"))
        except ValueError:
            errors.add((*path, "role"), "required" if raw.get("role") is None else
                       f"one of {', '.join(r.value for r in Role)}")
            ok = False
        fixed, by_field, found = _one_of(raw, "jurisdiction", "jurisdiction_field", path, errors,
                                         "a 6, 9, 12 or 15-digit code")
        ok = ok and found
        if fixed is not None:
            try:
                params["jurisdiction"] = validate_jurisdiction(fixed)
            except ValueError as exc:
                errors.add((*path, "jurisdiction"), str(exc))
                ok = False
        params["jurisdiction_field"] = by_field
    elif kind is RecipientKind.GRID_WORKERS:
        grid_field = raw.get("grid_field", DEFAULT_GRID_FIELD)
        params["grid_field"] = _field_path(grid_field, (*path, "grid_field"), errors)
        ok = ok and params["grid_field"] is not None
    elif kind is RecipientKind.DEPARTMENT:
        fixed, by_field, found = _one_of(raw, "department", "department_field", path, errors, "a department code")
        ok = ok and found
        if fixed is not None:
            if isinstance(fixed, str) and DEPARTMENT_PATTERN.match(fixed):
                params["department"] = fixed
            else:
                errors.add((*path, "department"), "a department code: 2 to 40 lower-case letters, digits or _")
                ok = False
        params["department_field"] = by_field
    elif kind is RecipientKind.USER:
        subject = raw.get("subject")
        if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT \
                or _SUBJECT_CONTROL.search(subject):
            errors.add((*path, "subject"), "required" if subject is None else
                       f"a user's token subject: 1 to {MAX_SUBJECT} printable characters")
            ok = False
        params["subject"] = subject
    return Recipient(kind, **params) if ok else None


def _flag(raw: Mapping[str, Any], name: str, default: bool, errors: FieldErrors) -> bool:
    value = raw.get(name, default)
    if not isinstance(value, bool):
        errors.add((name,), "true or false")
        return default
    return value


def _list(raw: Mapping[str, Any], name: str, low: int, high: int, errors: FieldErrors, *,
          required: bool) -> Sequence[Any]:
    value = raw.get(name)
    if value is None and not required:
        return ()
    if not _is_list(value) or not low <= len(value) <= high:
        errors.add((name,), f"{'required: ' if value is None else ''}a list of {low} to {high}")
        return ()
    return value


def parse_rule(raw: Mapping[str, Any]) -> Rule:
    """Read a rule from JSON; every problem is refused at once (RuleRejected)."""
    errors = FieldErrors()
    if not isinstance(raw, Mapping):
        raise RuleRejected([body_error([], "a rule is an object")])
    _unknown(raw, _RULE_MEMBERS, (), "a rule", errors)
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not RULE_ID.match(rule_id):
        errors.add(("id",), "required" if rule_id is None else
                   "a rule id is 1 to 64 lower-case letters, digits or _.- beginning with a letter")
    event_type = raw.get("event_type")
    if not isinstance(event_type, str) or len(event_type) > MAX_EVENT_TYPE or not EVENT_TYPE_PATTERN.match(event_type):
        errors.add(("event_type",), "required" if event_type is None else
                   "a civicgrid event type like civicgrid.intake.case.accepted.v1")
    template = raw.get("template")
    if not isinstance(template, str) or not NAME_PATTERN.match(template):
        errors.add(("template",), "required" if template is None else "a template's name")
    description = raw.get("description")
    if description is not None:
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION or _CONTROL.search(description):
            errors.add(("description",), f"text of at most {MAX_DESCRIPTION} characters")
            description = None
        else:
            description = description.strip() or None
    conditions = [_parse_condition(c, ("conditions", i), errors)
                  for i, c in enumerate(_list(raw, "conditions", 0, MAX_CONDITIONS, errors, required=False))]
    recipients: list[Recipient | None] = []
    for i, r in enumerate(_list(raw, "recipients", 1, MAX_RECIPIENTS, errors, required=True)):
        recipient = _parse_recipient(r, ("recipients", i), errors)
        if recipient is not None and recipient in recipients:
            errors.add(("recipients", i), "the same recipient is named twice")
        recipients.append(recipient)
    channels: list[Channel] = []
    for i, c in enumerate(_list(raw, "channels", 1, MAX_CHANNELS, errors, required=True)):
        try:
            channel = Channel(c)
        except ValueError:
            errors.add(("channels", i), f"one of {', '.join(ch.value for ch in Channel)}")
            continue
        if channel in channels:
            errors.add(("channels", i), f"{channel.value} is listed twice")
        channels.append(channel)
    urgent = _flag(raw, "urgent", False, errors)
    digest = _flag(raw, "digest", False, errors)
    enabled = _flag(raw, "enabled", True, errors)
    if urgent and digest:
        errors.add(("digest",), "an urgent rule's messages go out at once, never in a digest")
    if errors:
        raise RuleRejected(errors.items())
    return Rule(id=rule_id, event_type=event_type, recipients=tuple(r for r in recipients if r is not None),
                channels=tuple(channels), template=template, conditions=tuple(c for c in conditions if c is not None),
                urgent=urgent, digest=digest, enabled=enabled, description=description)


# ---------------------------------------------------------------------------- the book


def _by(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 128 or _SUBJECT_CONTROL.search(value):
        raise ValueError("`by` is the acting principal's token subject (1 to 128 printable characters)")
    return value


def _same_json(a: Any, b: Any) -> bool:
    """Equal as JSON: true is not 1 (as Python's == would have it)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _at(value: Any) -> str:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError("`at` is a timezone-aware instant")
    return value.astimezone(timezone.utc).isoformat()


class RuleBook(Aggregate):
    """A district's notification rules and templates; stream id `rule-book:<district>`."""

    stream_type = "rule_book"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        m = _STREAM.match(id)
        self.district: str | None = m.group(1) if m else None
        self._rules: dict[str, tuple[Rule, int]] = {}
        self._templates: dict[str, tuple[Template, int]] = {}
        self._last_version: dict[str, int] = {}  # rule id -> its last version, removed rules too
        # ("rule", id) or ("template", name) -> who set or removed it last: the seed may renew
        # what it set itself, never what the district's admin changed since (seeding.py).
        self._changed_by: dict[tuple[str, str], str] = {}

    @staticmethod
    def stream_for(district: str) -> str:
        validate_jurisdiction(district)
        if len(district) != 6:
            raise ValueError(f"a rule book is a district's: {district!r} is not a 6-digit district code")
        return f"rule-book:{district}"

    # ------------------------------------------------------------------ queries

    @property
    def rules(self) -> Mapping[str, tuple[Rule, int]]:
        """Rule id -> (the rule, its version), in id order."""
        return MappingProxyType(dict(sorted(self._rules.items())))

    @property
    def templates(self) -> Mapping[str, tuple[Template, int]]:
        """Template name -> (the template, its version), in name order."""
        return MappingProxyType(dict(sorted(self._templates.items())))

    def changed_by(self, kind: str, name: str) -> str | None:
        """Who set or removed the rule (kind "rule") or template ("template") `name` last;
        None if it never was."""
        return self._changed_by.get((kind, name))

    def tells_of(self, event_type: str) -> bool:
        """Whether any enabled rule is for events of `event_type` (before their data is looked at)."""
        return any(rule.enabled and rule.event_type == event_type for rule, _v in self._rules.values())

    def matching(self, event_type: str, data: Mapping[str, Any]) -> list[Rule]:
        """The enabled rules that an event of `event_type` with `data` calls for, in id order."""
        return [rule for _, (rule, _v) in sorted(self._rules.items()) if rule.matches(event_type, data)]

    # ------------------------------------------------------------------ commands

    def _district(self) -> str:
        if self.district is None:
            raise ValueError(f"{self.id!r} is not a rule book's stream id (rule-book:<district>)")
        return self.district

    def set_rule(self, raw: Mapping[str, Any], *, by: str, at: datetime) -> bool:
        """Add or change a rule (read with parse_rule). Its template must be in the book with a
        text for each of its channels. Returns False, emitting nothing, when the book holds
        exactly this rule already."""
        district, by, when = self._district(), _by(by), _at(at)
        rule = parse_rule(raw)
        found = self._templates.get(rule.template)
        if found is None:
            raise RuleRejected([body_error(["template"], f"the book has no template {rule.template!r}: set it first")],
                               code="unknown_template", message=f"No template {rule.template!r} in this book.")
        lacking = [body_error(["channels", i], f"template {rule.template!r} has no text for {channel.value}")
                   for i, channel in enumerate(rule.channels) if not found[0].has_text_for(channel)]
        if lacking:
            raise RuleRejected(lacking, code="template_lacks_channel",
                               message=f"Template {rule.template!r} cannot be sent on every channel of the rule.")
        current = self._rules.get(rule.id)
        if current is not None and _same_json(current[0].to_dict(), rule.to_dict()):
            return False
        if current is None and len(self._rules) >= MAX_RULES:
            raise BookFull("too_many_rules", f"a book holds at most {MAX_RULES} rules; remove one first", field="id")
        self._emit(RULE_SET, {"district": district, "rule": rule.to_dict(),
                              "version": self._last_version.get(rule.id, 0) + 1, "by": by, "at": when})
        return True

    def remove_rule(self, rule_id: str, *, by: str, at: datetime) -> None:
        district, by, when = self._district(), _by(by), _at(at)
        if not isinstance(rule_id, str) or rule_id not in self._rules:
            raise RuleNotFound(str(rule_id))
        self._emit(RULE_REMOVED, {"district": district, "rule_id": rule_id,
                                  "version": self._last_version[rule_id] + 1, "by": by, "at": when})

    def set_template(self, raw: Mapping[str, Any], samples: Sequence[Mapping[str, Any]], *, by: str,
                     at: datetime) -> bool:
        """Add or change a template, validated against sample events of the types it is for
        (validate_template). A new version keeps every channel a rule sends it on. Returns False,
        emitting nothing, when the book holds exactly this template already."""
        district, by, when = self._district(), _by(by), _at(at)
        template = validate_template(raw, samples)
        current = self._templates.get(template.name)
        if current is not None and current[0] == template:
            return False
        if current is None and len(self._templates) >= MAX_TEMPLATES:
            raise BookFull("too_many_templates", f"a book holds at most {MAX_TEMPLATES} templates", field="name")
        dropped = FieldErrors()
        for rule_id, (rule, _v) in sorted(self._rules.items()):
            if rule.template == template.name:
                for channel in rule.channels:
                    if not template.has_text_for(channel):
                        dropped.add(("variants", ZH_CN, channel.value),
                                    f"rule {rule_id!r} sends {channel.value} messages with this template")
        if dropped:
            raise TemplateRejected(dropped.items(), code="template_in_use",
                                   message=f"Rules send template {template.name!r} on channels it would no longer have.")
        self._emit(TEMPLATE_SET, {"district": district, "template": template.to_dict(),
                                  "version": current[1] + 1 if current else 1, "by": by, "at": when})
        return True

    # ------------------------------------------------------------------ state

    @applies(RULE_SET)
    def _rule_set(self, d: Mapping[str, Any]) -> None:
        rule = Rule.from_dict(d["rule"])
        self.district = d["district"]
        self._rules[rule.id] = (rule, d["version"])
        self._last_version[rule.id] = d["version"]
        self._changed_by[("rule", rule.id)] = d["by"]

    @applies(RULE_REMOVED)
    def _rule_removed(self, d: Mapping[str, Any]) -> None:
        self.district = d["district"]
        self._rules.pop(d["rule_id"], None)
        self._last_version[d["rule_id"]] = d["version"]
        self._changed_by[("rule", d["rule_id"])] = d["by"]

    @applies(TEMPLATE_SET)
    def _template_set(self, d: Mapping[str, Any]) -> None:
        template = Template.from_dict(d["template"])
        self.district = d["district"]
        self._templates[template.name] = (template, d["version"])
        self._changed_by[("template", template.name)] = d["by"]
