"""Where a matter goes once it is accepted: the three routing rules of the one window.

1. The street handles it itself (its acceptance centre, within the street's own duties).
2. A district department handles it, the street assisting.
3. Several departments: a lead department proposes a plan agreed with the street and
   organises the work (牵头), co-departments each do their part (协办), while the street
   coordinates and supervises.

Affairs (from the catalogue) and complaints (by category) are routed by the same rules.
Department codes are the catalogue's, e.g. "civil_affairs", "public_security".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

_DEPARTMENT = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


class InvalidRouting(ValueError):
    """A routing that does not hold; `member` names the member at fault, when one is."""

    def __init__(self, message: str, member: str | None = None) -> None:
        super().__init__(message)
        self.member = member


def _check_department(code: str) -> str:
    if not _DEPARTMENT.match(code):
        raise InvalidRouting(f"{code!r} is not a department code (lower case letters, digits, _)")
    return code


@dataclass(frozen=True)
class StreetHandles:
    """Rule 1: the street's acceptance centre handles the matter itself."""

    kind: str = field(default="street", init=False)

    def departments(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class DepartmentHandles:
    """Rule 2: one district department handles it; the street assists."""

    department: str
    kind: str = field(default="department", init=False)

    def __post_init__(self) -> None:
        _check_department(self.department)

    def departments(self) -> tuple[str, ...]:
        return (self.department,)


@dataclass(frozen=True)
class LeadWithCoDepartments:
    """Rule 3: a lead department with co-departments; the street coordinates."""

    lead: str
    co_departments: tuple[str, ...]
    kind: str = field(default="lead", init=False)

    def __post_init__(self) -> None:
        _check_department(self.lead)
        if not self.co_departments:
            raise InvalidRouting("a lead department needs at least one co-department")
        for code in self.co_departments:
            _check_department(code)
        if self.lead in self.co_departments or len(set(self.co_departments)) != len(self.co_departments):
            raise InvalidRouting("the lead and co-departments must all be different departments")

    def departments(self) -> tuple[str, ...]:
        return (self.lead, *self.co_departments)


Routing = Union[StreetHandles, DepartmentHandles, LeadWithCoDepartments]


def routing_to_data(routing: Routing) -> dict[str, Any]:
    """The JSON form used in events and the catalogue."""
    if isinstance(routing, StreetHandles):
        return {"kind": "street"}
    if isinstance(routing, DepartmentHandles):
        return {"kind": "department", "department": routing.department}
    return {"kind": "lead", "lead": routing.lead, "co_departments": list(routing.co_departments)}


_MEMBERS = {"street": {"kind"}, "department": {"kind", "department"}, "lead": {"kind", "lead", "co_departments"}}


def routing_from_data(data: Mapping[str, Any]) -> Routing:
    kind = data.get("kind")
    unknown = sorted(set(data) - _MEMBERS.get(kind, set(data)))
    if unknown:
        raise InvalidRouting(f"a {kind} routing has no member {unknown[0]!r}", member=unknown[0])
    if kind == "street":
        return StreetHandles()
    if kind == "department":
        return DepartmentHandles(str(data.get("department", "")))
    if kind == "lead":
        return LeadWithCoDepartments(str(data.get("lead", "")), tuple(data.get("co_departments") or ()))
    raise InvalidRouting(f"unknown routing kind {kind!r}; expected street, department or lead")
