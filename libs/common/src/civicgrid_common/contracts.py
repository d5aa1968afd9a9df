"""The contracts folder at run time: event schemas and which topic carries which event.

- `contracts/events/<type>.schema.json`: the JSON Schema (draft 2020-12) of an event type
  and major version. Every event is validated against it before it is stored.
- `contracts/asyncapi.yaml`: every topic as a channel; a channel's messages name the event
  types it carries (`name: <event type>`), which is how the outbox knows where an event goes.
- `contracts/departments.yaml`: the departments and units a case, complaint, workflow or access
  application may name; every such reference is checked against it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import yaml
from jsonschema import Draft202012Validator, FormatChecker


@dataclass(frozen=True)
class FieldError:
    pointer: str  # JSON Pointer into the event data, e.g. "/applicant/id_number"
    message: str


class SchemaViolation(ValueError):
    """The data of an event does not match its schema; nothing was stored."""

    def __init__(self, event_type: str, errors: list[FieldError]) -> None:
        self.event_type = event_type
        self.errors = errors
        detail = "; ".join(f"{e.pointer or '/'}: {e.message}" for e in errors)
        super().__init__(f"{event_type} does not match its schema: {detail}")


class UnknownEventType(LookupError):
    def __init__(self, event_type: str, where: str) -> None:
        self.event_type = event_type
        super().__init__(f"event type {event_type!r} is not declared in {where}")


@dataclass(frozen=True)
class Department:
    code: str
    name_zh: str
    name_en: str
    kind: str  # district_department, district_office, street_unit, community_unit, mass_organisation
    system: bool  # its own system takes tasks and gives opinions on Kafka


class Departments(Mapping[str, Department]):
    """The known departments by code; `unknown(codes)` lists the codes a reference names in vain."""

    def __init__(self, departments: Mapping[str, Department]) -> None:
        self._by_code = dict(departments)

    def __getitem__(self, code: str) -> Department:
        return self._by_code[code]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_code)

    def __len__(self) -> int:
        return len(self._by_code)

    def unknown(self, codes: Any) -> list[str]:
        return [c for c in codes if c not in self._by_code]


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replicas: int
    config: Mapping[str, str]
    event_types: tuple[str, ...]


def _pointer(path: Any) -> str:
    return "".join(f"/{str(p).replace('~', '~0').replace('/', '~1')}" for p in path)


class Contracts:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._validators: dict[str, Draft202012Validator] = {}

    # ----------------------------------------------------------------- schemas

    @property
    def events_dir(self) -> Path:
        return self.root / "events"

    def schema_path(self, event_type: str) -> Path:
        return self.events_dir / f"{event_type}.schema.json"

    def event_types(self) -> list[str]:
        suffix = ".schema.json"
        return sorted(p.name[: -len(suffix)] for p in self.events_dir.glob(f"*{suffix}"))

    def schema(self, event_type: str) -> dict[str, Any]:
        path = self.schema_path(event_type)
        if not path.exists():
            raise UnknownEventType(event_type, str(self.events_dir))
        return json.loads(path.read_text(encoding="utf-8"))

    def validator(self, event_type: str) -> Draft202012Validator:
        v = self._validators.get(event_type)
        if v is None:
            v = Draft202012Validator(self.schema(event_type), format_checker=FormatChecker())
            self._validators[event_type] = v
        return v

    def validate(self, event_type: str, data: Any) -> None:
        """Raise SchemaViolation listing every failing field (not only the first)."""
        errors = sorted(self.validator(event_type).iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            raise SchemaViolation(
                event_type, [FieldError(_pointer(e.absolute_path), e.message) for e in errors]
            )

    def preload(self) -> None:
        """Read and compile everything now (the AsyncAPI document, every schema's validator, the
        departments): some hundred milliseconds of parsing that a service does at start-up, off
        its event loop, rather than in the first request that appends an event."""
        self._topic_by_type  # noqa: B018 - a cached property, computed for its side effect
        self.departments  # noqa: B018
        for event_type in self.event_types():
            self.validator(event_type)

    # ----------------------------------------------------------------- departments

    @cached_property
    def departments(self) -> Departments:
        """The departments of departments.yaml; none for a contracts folder without it (a test's
        own small contracts), where every department reference is then refused."""
        path = self.root / "departments.yaml"
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
        return Departments({code: Department(code=code, name_zh=d["name_zh"], name_en=d["name_en"], kind=d["kind"],
                                             system=bool(d["system"]))
                            for code, d in ((raw or {}).get("departments") or {}).items()})

    # ----------------------------------------------------------------- topics

    @cached_property
    def asyncapi(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / "asyncapi.yaml").read_text(encoding="utf-8")) or {}

    def _resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = node.get("$ref")
        if not ref:
            return node
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported in asyncapi.yaml, got {ref!r}")
        target: Any = self.asyncapi
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return self._resolve(target)

    @cached_property
    def topics(self) -> list[TopicSpec]:
        specs = []
        for channel in (self.asyncapi.get("channels") or {}).values():
            kafka = (channel.get("bindings") or {}).get("kafka") or {}
            config = {
                k: ",".join(map(str, v)) if isinstance(v, list) else str(v)
                for k, v in (kafka.get("topicConfiguration") or {}).items()
            }
            types = tuple(
                str(self._resolve(m).get("name"))
                for m in (channel.get("messages") or {}).values()
            )
            specs.append(
                TopicSpec(
                    name=kafka.get("topic") or channel["address"],
                    partitions=int(kafka.get("partitions", 3)),
                    replicas=int(kafka.get("replicas", 1)),
                    config=config,
                    event_types=types,
                )
            )
        return specs

    @cached_property
    def _topic_by_type(self) -> dict[str, str]:
        mapping: dict[str, str] = {}
        for spec in self.topics:
            for t in spec.event_types:
                if t in mapping and mapping[t] != spec.name:
                    raise ValueError(f"event type {t} is declared on two topics: {mapping[t]}, {spec.name}")
                mapping[t] = spec.name
        return mapping

    def topic_for(self, event_type: str) -> str:
        try:
            return self._topic_by_type[event_type]
        except KeyError:
            raise UnknownEventType(event_type, str(self.root / "asyncapi.yaml")) from None
