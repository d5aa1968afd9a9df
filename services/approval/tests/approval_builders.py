"""Builders shared by approval's domain tests: definitions, principals, signers, a clock."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from civicgrid_common.calendar import WorkingCalendar
from civicgrid_common.identity.principal import Principal, Role

from civicgrid_approval.domain.approval import Approval, Subject, approval_id_for
from civicgrid_approval.domain.definition import Definition, expand_defaults, parse_definition
from civicgrid_approval.domain.seals import Ed25519Signer

CASE_ID = "0190f6a2-1b2c-7d3e-8f40-5a6b7c8d9e0f"
STREET = "320104001"
COMMUNITY = "320104001001"
CAL = WorkingCalendar()
# A Monday in China time, a working day.
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))

# One step of every kind: review (community, street), department system, parallel, bureau.
MATRIX_DEFINITION = {
    "affair_code": "test.matrix",
    "department": "civil_affairs",
    "steps": [
        {"id": "community_review", "level": "community", "time_limit_working_days": 5},
        {"id": "income_check", "level": "department", "kind": "department_system", "department": "civil_affairs",
         "actions": ["approve", "refuse"], "time_limit_working_days": 3},
        {"id": "co_opinions", "level": "bureau", "kind": "parallel",
         "branches": [{"id": "finance", "department": "finance"}, {"id": "housing", "department": "housing"}],
         "time_limit_working_days": 3},
        {"id": "bureau_decision", "level": "bureau", "department": "civil_affairs", "time_limit_working_days": 10,
         "may_finish": True},
    ],
}

KEYS: dict[str, Ed25519PrivateKey] = {}


def definition(data: dict | None = None) -> Definition:
    return parse_definition(expand_defaults(data or MATRIX_DEFINITION))


def signer(subject: str) -> Ed25519Signer:
    key = KEYS.setdefault(subject, Ed25519PrivateKey.generate())
    return Ed25519Signer(signer=subject, key_id=f"k-{subject}", private_key=key)


def who(role: Role, jurisdiction: str, subject: str | None = None, department: str | None = None) -> Principal:
    return Principal(subject=subject or f"{role.value}-{jurisdiction}-{department or ''}", roles=frozenset({role}),
                     jurisdictions=(jurisdiction,), department=department, name="测试")


COMMUNITY_REVIEWER = who(Role.COMMUNITY_REVIEWER, COMMUNITY)
STREET_REVIEWER = who(Role.STREET_REVIEWER, STREET)
CIVIL_SYSTEM = who(Role.DEPARTMENT, "320104", "civil-affairs-system", department="civil_affairs")
FINANCE = who(Role.BUREAU_APPROVER, "320104", department="finance")
HOUSING = who(Role.BUREAU_APPROVER, "320104", department="housing")
BUREAU = who(Role.BUREAU_APPROVER, "320104", department="civil_affairs")
LEADER_BUREAU = who(Role.LEADER, "320104", department="civil_affairs")
LEADER_COMMUNITY = who(Role.LEADER, COMMUNITY)

# Who acts at each step of MATRIX_DEFINITION (and with which branch).
ACTORS = {
    "community_review": (COMMUNITY_REVIEWER, None),
    "income_check": (CIVIL_SYSTEM, None),
    "co_opinions": (FINANCE, "finance"),
    "bureau_decision": (BUREAU, None),
}


def started(data: dict | None = None, jurisdiction: str = COMMUNITY) -> Approval:
    a = Approval(approval_id_for(CASE_ID))
    a.start(Subject(CASE_ID, "QH-001", (data or MATRIX_DEFINITION)["affair_code"], jurisdiction,
                    {"kind": "department", "department": "civil_affairs"}),
            definition(data), 1, now=T0, calendar=CAL, actor="intake")
    return a


def act(a: Approval, step_actor: tuple | None = None, action: str = "approve", **kw) -> None:
    from civicgrid_approval.domain.definition import Action

    principal, branch = step_actor or ACTORS[a.step.id]
    kw.setdefault("branch", branch)
    kw.setdefault("now", T0 + timedelta(hours=a.version))
    a.act(principal, Action(action), comment=kw.pop("comment", "审核意见"), signer=signer(principal.subject),
          calendar=CAL, **kw)


def advance_to(a: Approval, step_id: str) -> None:
    while a.step.id != step_id:
        if a.step.kind.value == "parallel":
            for b in a.pending_branches():
                act(a, (FINANCE if b == "finance" else HOUSING, b))
        else:
            act(a)
