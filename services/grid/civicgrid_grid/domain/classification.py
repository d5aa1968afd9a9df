"""The classification of digital urban management (数字化城市管理 部件事件分类): what an incident
is, who handles it, and how long they have. Pure: no I/O.

Two halves, each with six major classes fixed by the national scheme (data below), and minor
classes (2 digits) under each that a district keeps in its own table:

- parts (部件): things that can be broken or missing — a manhole cover, a streetlight;
- events (事件): things that happen — exposed rubbish, a road dug up without permit.

A minor class names the department that handles it (a code of contracts/departments.yaml,
passed in as `known_departments`) and its handling limit (time_limits.HandlingLimit).

The table is one aggregate per district (`Classification`, stream `classification:<district>`),
edited by the district's admin: a minor class is added, revised (a new version; the earlier
ones stay readable, because an incident keeps the version it was created under) and retired
(no new incidents; its code is never reused). Rules are checked when a command is given, never
when history is replayed.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Collection, Iterable, Mapping, Sequence

from civicgrid_common.aggregate import Aggregate, applies

from civicgrid_grid.domain.rules import PREFIX, InvalidInput, iso, subject, text, utc
from civicgrid_grid.domain.time_limits import HandlingLimit

CLASS_ADDED = PREFIX + "classification.class_added.v1"
CLASS_REVISED = PREFIX + "classification.class_revised.v1"
CLASS_RETIRED = PREFIX + "classification.class_retired.v1"
EVENT_TYPES = (CLASS_ADDED, CLASS_REVISED, CLASS_RETIRED)

_DEPARTMENT = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_MINOR = re.compile(r"^(?!00)[0-9]{2}$")


class Kind(str, enum.Enum):
    PART = "part"  # 部件
    EVENT = "event"  # 事件


# The major classes of the national scheme: (中文, English).
MAJOR_CLASSES: Mapping[Kind, Mapping[str, tuple[str, str]]] = MappingProxyType({
    Kind.PART: MappingProxyType({
        "01": ("公用设施", "public utilities"),
        "02": ("道路交通", "roads and traffic"),
        "03": ("市容环境", "city appearance"),
        "04": ("园林绿化", "greenery"),
        "05": ("房屋土地", "housing and land"),
        "06": ("其他设施", "other facilities"),
    }),
    Kind.EVENT: MappingProxyType({
        "01": ("市容环境", "city appearance and environment"),
        "02": ("宣传广告", "advertising"),
        "03": ("施工管理", "construction"),
        "04": ("突发事件", "emergencies"),
        "05": ("街面秩序", "street order"),
        "06": ("其他", "other"),
    }),
})


class UnknownClass(InvalidInput):
    """No such minor class in the table, or one retired: the input names what is not there."""


@dataclass(frozen=True, order=True)
class ClassKey:
    """kind + major + minor: e.g. (event, 01, 02), written "event 0102"."""

    kind: Kind
    major: str
    minor: str

    @classmethod
    def parse(cls, kind: Any, major: Any, minor: Any, *, field: str = "classification") -> ClassKey:
        try:
            k = Kind(kind)
        except ValueError:
            raise InvalidInput("unknown_kind", f"kind is part (部件) or event (事件), got {kind!r}",
                               field=f"{field}/kind") from None
        if major not in MAJOR_CLASSES[k]:
            raise InvalidInput("unknown_major_class", f"{k.value} major classes are {', '.join(MAJOR_CLASSES[k])}, "
                               f"got {major!r}", field=f"{field}/major")
        if not isinstance(minor, str) or not _MINOR.match(minor):
            raise InvalidInput("invalid_minor_class", f"a minor class is 2 digits, 01 to 99, got {minor!r}",
                               field=f"{field}/minor")
        return cls(k, major, minor)

    @classmethod
    def from_data(cls, data: Any, field: str = "classification") -> ClassKey:
        if not isinstance(data, Mapping):
            raise InvalidInput("invalid_classification", "a classification is {kind, major, minor}", field=field)
        return cls.parse(data.get("kind"), data.get("major"), data.get("minor"), field=field)

    @property
    def code(self) -> str:
        return self.major + self.minor

    def to_data(self) -> dict[str, str]:
        return {"kind": self.kind.value, "major": self.major, "minor": self.minor}

    def __str__(self) -> str:
        return f"{self.kind.value} {self.code}"


@dataclass(frozen=True)
class MinorClass:
    """One row of the table: what it is, who handles it, within what limit."""

    key: ClassKey
    name_zh: str
    name_en: str
    department: str
    limit: HandlingLimit

    @classmethod
    def from_data(cls, data: Any, field: str = "") -> MinorClass:
        """The JSON form (seed file, admin API, events): {kind, major, minor, name_zh, name_en,
        department, limit}. `field` prefixes the member paths of a refusal."""
        at = f"{field}/" if field else ""
        if not isinstance(data, Mapping):
            raise InvalidInput("invalid_class", "a minor class is an object", field=field or "class")
        key = ClassKey.parse(data.get("kind"), data.get("major"), data.get("minor"), field=field or "class")
        department = data.get("department")
        if not isinstance(department, str) or not _DEPARTMENT.match(department):
            raise InvalidInput("invalid_department", f"{department!r} is not a department code",
                               field=f"{at}department")
        return cls(key, text(data.get("name_zh"), f"{at}name_zh", limit=100),
                   text(data.get("name_en"), f"{at}name_en", limit=100), department,
                   HandlingLimit.from_data(data.get("limit"), f"{at}limit"))

    def to_data(self) -> dict[str, Any]:
        return {**self.key.to_data(), "name_zh": self.name_zh, "name_en": self.name_en,
                "department": self.department, "limit": self.limit.to_data()}

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> MinorClass:
        return cls(ClassKey(Kind(data["kind"]), data["major"], data["minor"]), data["name_zh"], data["name_en"],
                   data["department"], HandlingLimit.from_data(data["limit"]))


@dataclass(frozen=True)
class ClassRevision:
    """A version of a minor class, as an incident keeps it."""

    version: int
    minor_class: MinorClass

    @property
    def key(self) -> ClassKey:
        return self.minor_class.key

    def to_data(self) -> dict[str, Any]:
        return {**self.minor_class.to_data(), "version": self.version}

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> ClassRevision:
        return cls(int(data["version"]), MinorClass.from_stored(data))


@dataclass
class _Row:
    revisions: list[MinorClass] = field(default_factory=list)
    retired_reason: str | None = None


class Classification(Aggregate):
    """A district's table of minor classes (stream `classification:<district>`)."""

    stream_type = "classification"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self._rows: dict[ClassKey, _Row] = {}

    @staticmethod
    def stream_for(district: str) -> str:
        return f"classification:{district}"

    # ------------------------------------------------------------------ commands

    def add_class(self, minor_class: MinorClass, *, known_departments: Collection[str], by: str,
                  at: datetime) -> None:
        at = utc(at)
        if minor_class.key in self._rows:
            state = "retired (codes are never reused)" if self.is_retired(minor_class.key) else "in the table already"
            raise InvalidInput("class_exists", f"{minor_class.key} is {state}", field="minor")
        _check_department(minor_class.department, known_departments)
        self._emit(CLASS_ADDED, {"class": minor_class.to_data(), "version": 1, "by": subject(by), "at": iso(at)})

    def revise_class(self, minor_class: MinorClass, *, reason: str, known_departments: Collection[str], by: str,
                     at: datetime) -> None:
        at = utc(at)
        why = text(reason, "reason", limit=500)
        current = self.current(minor_class.key, field="minor")
        before, after = current.minor_class.to_data(), minor_class.to_data()
        changed = [name for name in after if before[name] != after[name]]
        if not changed:
            raise InvalidInput("nothing_changed", f"{minor_class.key} version {current.version} is the same",
                               field="class")
        _check_department(minor_class.department, known_departments)
        self._emit(CLASS_REVISED, {"class": after, "version": current.version + 1, "changed": changed,
                                   "reason": why, "by": subject(by), "at": iso(at)})

    def retire_class(self, key: ClassKey, *, reason: str, by: str, at: datetime) -> None:
        at = utc(at)
        why = text(reason, "reason", limit=500)
        current = self.current(key, field="minor")
        self._emit(CLASS_RETIRED, {**key.to_data(), "last_version": current.version, "reason": why,
                                   "by": subject(by), "at": iso(at)})

    # ------------------------------------------------------------------ queries

    def current(self, key: ClassKey, *, field: str = "classification") -> ClassRevision:
        """The version new incidents get; unknown and retired classes are refused."""
        row = self._rows.get(key)
        if row is None:
            raise UnknownClass("unknown_class", f"no minor class {key} in the table", field=field)
        if row.retired_reason is not None:
            raise UnknownClass("class_retired", f"{key} is retired: {row.retired_reason}", field=field)
        return ClassRevision(len(row.revisions), row.revisions[-1])

    def revision(self, key: ClassKey, version: int) -> ClassRevision:
        row = self._rows.get(key)
        if row is None or not 1 <= version <= len(row.revisions):
            raise UnknownClass("unknown_class", f"no version {version} of {key}", field="version")
        return ClassRevision(version, row.revisions[version - 1])

    def is_retired(self, key: ClassKey) -> bool:
        row = self._rows.get(key)
        return row is not None and row.retired_reason is not None

    def active(self, kind: Kind | None = None) -> list[ClassRevision]:
        return [ClassRevision(len(r.revisions), r.revisions[-1]) for k, r in sorted(self._rows.items())
                if r.retired_reason is None and (kind is None or k.kind is kind)]

    def keys(self) -> frozenset[ClassKey]:
        return frozenset(self._rows)

    # ------------------------------------------------------------------ appliers

    @applies(CLASS_ADDED, CLASS_REVISED)
    def _class_written(self, d: Mapping[str, Any]) -> None:
        minor_class = MinorClass.from_stored(d["class"])
        self._rows.setdefault(minor_class.key, _Row()).revisions.append(minor_class)

    @applies(CLASS_RETIRED)
    def _class_retired(self, d: Mapping[str, Any]) -> None:
        self._rows[ClassKey(Kind(d["kind"]), d["major"], d["minor"])].retired_reason = d["reason"]


def _check_department(code: str, known: Collection[str]) -> None:
    if code not in known:
        raise InvalidInput("unknown_department", f"{code!r} is no department of contracts/departments.yaml",
                           field="department")


# ---------------------------------------------------------------------------- seeding

SEED_REVISION_REASON = "classification seed updated"


def classes_from_seed(document: Any) -> tuple[MinorClass, ...]:
    """The seed file: {"district": ..., "classes": [minor class JSON, ...]}, each checked as an
    admin's would be, a key listed twice refused."""
    raw = document.get("classes") if isinstance(document, Mapping) else None
    if not isinstance(raw, list):
        raise InvalidInput("invalid_seed", "the seed lists its classes", field="classes")
    classes = tuple(MinorClass.from_data(c, f"classes/{i}") for i, c in enumerate(raw))
    seen: set[ClassKey] = set()
    for i, c in enumerate(classes):
        if c.key in seen:
            raise InvalidInput("class_twice", f"{c.key} appears twice in the seed", field=f"classes/{i}")
        seen.add(c.key)
    return classes


def seed_classification(table: Classification, classes: Iterable[MinorClass], *,
                        known_departments: Collection[str], by: str, at: datetime) -> Sequence[ClassKey]:
    """Bring the table up to the seed through its commands (idempotent): a class equal to the
    seed is left alone, a differing one gets a new version, a retired one stays retired."""
    changed: list[ClassKey] = []
    for c in classes:
        if c.key not in table.keys():
            table.add_class(c, known_departments=known_departments, by=by, at=at)
        elif table.is_retired(c.key) or table.current(c.key).minor_class == c:
            continue
        else:
            table.revise_class(c, reason=SEED_REVISION_REASON, known_departments=known_departments, by=by, at=at)
        changed.append(c.key)
    return changed
