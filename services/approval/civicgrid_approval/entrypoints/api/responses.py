"""The shapes approval's HTTP API answers with, so /docs and app.openapi() show them.

Routes build plain dicts (approval_out, views' rows) and FastAPI validates them into these
models; a model that no longer fits what a route answers fails the route's tests.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from civicgrid_approval.domain.approval import Status
from civicgrid_approval.domain.definition import Action, Definition, Level, StepKind

Outcome = Literal["approved", "refused", "escalated", "supplement_requested", "extended", "sent_back"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """A stored event's data: these members and possibly later ones (events evolve by addition)."""

    model_config = ConfigDict(extra="allow")


# ------------------------------------------------------------------ workflows

class WorkflowSummary(_Out):
    affair_code: str
    version: int = Field(description="the current version")
    department: str = Field(description="the bureau that owns the flow")
    name_zh: str | None


class WorkflowList(_Out):
    items: list[WorkflowSummary]


class WorkflowOut(_Out):
    affair_code: str
    version: int = Field(description="the version shown")
    current_version: int | None = Field(None, description="the newest version (GET)")
    definition: Definition


# ------------------------------------------------------------------ approvals

class SealDecision(_Open):
    approval_id: str
    step: str
    branch: str | None
    action: Action
    outcome: Outcome
    time: str
    signer: str = Field(description="the approver's subject or department:<department>")
    key_id: str
    previous: str | None = Field(description="the previous seal's signature: seals chain")


class Seal(_Open):
    decision: SealDecision
    key_id: str
    signature: str = Field(description="Ed25519 over the decision's RFC 8785 JSON, base64url")


class Move(_Open):
    """One move at a step: who, when, why and where it went (the acted event's data)."""

    case_id: str
    task: str
    step: str
    branch: str | None
    action: Action
    outcome: Outcome
    from_step: str
    to_step: str | None
    actor: str
    actor_name: str | None = None
    actor_roles: list[str]
    actor_department: str | None = None
    comment: str
    acted_at: str
    seal: Seal
    step_due_date: str | None = None


class Conclusion(_Open):
    outcome: str
    decided_at: str
    decided_by: str
    reason: str | None = None
    final_seal: dict[str, str] | None = None
    archive_digest: str | None = None


class TaskOut(_Out):
    key: str = Field(description="the task acted on: <step>.<entry>")
    step: str
    name_zh: str | None
    level: Level
    kind: StepKind
    actions: list[Action]
    may_finish: bool
    entered_at: str
    due_date: str
    escalated: bool
    pending_branches: list[str]
    warned: bool
    overdue: bool
    extensions_used: int
    max_extensions: int


class ApprovalOut(_Out):
    id: str
    version: int
    status: Status | None
    case_id: str | None
    case_number: str | None
    affair_code: str
    workflow_version: int
    jurisdiction: str
    routing: dict[str, Any]
    green_channel: bool
    started_at: str
    task: TaskOut | None = Field(description="the current task; null once concluded")
    path: list[str] = Field(description="the steps in order")
    moves: list[Move]
    conclusion: Conclusion | None
    application: dict[str, Any] | None = Field(description="an access application (准入): what was applied for")


class ApprovalRow(_Out):
    """An approval in a list or an inbox."""

    id: str
    version: int
    case_id: str
    case_number: str | None
    affair_code: str
    workflow_version: int
    status: Status
    jurisdiction: str
    step: str
    task: str
    level: Level
    kind: StepKind
    may_act_roles: list[str]
    scope: str
    departments: list[str]
    escalated: bool
    green_channel: bool
    started_at: datetime
    entered_at: datetime
    due_date: date
    warned: bool
    overdue: bool
    outcome: str | None


class ApprovalPage(_Out):
    items: list[ApprovalRow]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class InboxCounts(_Out):
    """The caller's moves so far, per kind."""

    completed: int
    returned: int
    extended: int
    supplemented: int
    sent_back: int
    escalated: int


class InboxPage(ApprovalPage):
    counts: InboxCounts


# ------------------------------------------------------------------ verification, archive, keys

class Check(_Out):
    check: Literal["hash_chain", "seal_matches_event", "seal_signature", "final_seal", "archive"]
    passed: bool
    detail: str
    version: int | None = None
    step: str | None = None
    action: Action | None = None
    key_id: str | None = None


class Verification(_Out):
    approval_id: str
    valid: bool = Field(description="every check passed")
    checks: list[Check]


class ArchiveOut(_Out):
    approval_id: str
    digest: str
    algorithm: str
    record: dict[str, Any] = Field(description="everything from routing to the final decision")


class PublicKey(_Out):
    """An Ed25519 public key as a JWK (RFC 8037)."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    use: Literal["sig"]
    alg: Literal["EdDSA"]
    owner: str = Field(description="the approver's subject or department:<department>")


class KeySet(_Out):
    keys: list[PublicKey]


class AccessGrant(_Out):
    approval_id: str
    department: str
    title: str
    work_kind: str
    communities: list[str]
    cost_bearer: str
    valid_from: date
    valid_until: date
    decided_at: datetime


class AccessGrantList(_Out):
    items: list[AccessGrant]
