"""Who is calling: roles and jurisdictions, and the pure rules about them.

A jurisdiction is an administrative prefix code (docs/domain.md, "Units and jurisdiction codes"): district
6 digits, street 9, community 12, grid 15. "Inside my jurisdiction" is a prefix test, so a
street reviewer holding `320104001` may act on community `320104001001` and on every grid
under it, but on nothing of street `320104002`.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

# The lengths of a district, street, community and grid code.
JURISDICTION_LENGTHS: tuple[int, ...] = (6, 9, 12, 15)


class Role(str, enum.Enum):
    WINDOW_CLERK = "window_clerk"
    COMMUNITY_REVIEWER = "community_reviewer"
    STREET_REVIEWER = "street_reviewer"
    BUREAU_APPROVER = "bureau_approver"
    LEADER = "leader"
    GRID_WORKER = "grid_worker"
    DEPARTMENT = "department"
    AUDITOR = "auditor"
    ADMIN = "admin"
    # The notifications service's own account: reads the contact of a case's applicant at send
    # time (intake's contact API), nothing else.
    NOTIFIER = "notifier"

    @classmethod
    def parse(cls, value: str) -> "Role":
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(r.value for r in cls)
            raise InvalidPrincipal(f"unknown role {value!r}; known roles: {known}") from None


class InvalidPrincipal(ValueError):
    """Claims that do not describe a valid principal (bad role, bad code, missing department)."""


def validate_jurisdiction(code: str) -> str:
    """Return `code` if it is a district, street, community or grid code, else raise."""
    if not isinstance(code, str) or not code.isascii() or not code.isdigit():
        raise InvalidPrincipal(f"jurisdiction {code!r} must be digits only")
    if len(code) not in JURISDICTION_LENGTHS:
        raise InvalidPrincipal(
            f"jurisdiction {code!r} has {len(code)} digits; expected 6 (district), 9 (street), "
            "12 (community) or 15 (grid)"
        )
    return code


def covers(jurisdiction: str, code: str) -> bool:
    """Whether the unit `code` lies inside `jurisdiction` (itself or anything below it)."""
    return code.startswith(jurisdiction)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a person at a desk or a department's system."""

    subject: str
    roles: frozenset[Role]
    jurisdictions: tuple[str, ...]
    name: str | None = None
    department: str | None = None  # the department's code, for the `department` role
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.subject:
            raise InvalidPrincipal("a principal needs a subject")
        for code in self.jurisdictions:
            validate_jurisdiction(code)
        if Role.DEPARTMENT in self.roles and not self.department:
            # Without it a department system's access could not be limited to its own data.
            raise InvalidPrincipal("a principal with the department role must name its department")

    def has_any(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)

    def may_act_in(self, code: str) -> bool:
        """Whether `code` (a district, street, community or grid) is inside any of ours."""
        return any(covers(j, code) for j in self.jurisdictions)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> "Principal":
        """Build a principal from verified JWT claims (sub, name, roles, jurisdictions, department)."""
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidPrincipal("token has no subject ('sub')")
        roles = _string_list(claims, "roles")
        jurisdictions = _string_list(claims, "jurisdictions")
        department = claims.get("department")
        if department is not None and not isinstance(department, str):
            raise InvalidPrincipal("'department' must be a string")
        name = claims.get("name")
        return cls(
            subject=subject,
            name=name if isinstance(name, str) else None,
            roles=frozenset(Role.parse(r) for r in roles),
            jurisdictions=tuple(jurisdictions),
            department=department or None,
            claims=dict(claims),
        )


def _string_list(claims: Mapping[str, Any], key: str) -> list[str]:
    value = claims.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidPrincipal(f"'{key}' must be a list of strings")
    return value
