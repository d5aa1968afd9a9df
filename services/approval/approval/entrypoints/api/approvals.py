"""approval over HTTP (JWT, jurisdiction-scoped).

GET  /v1/workflows                        every affair's workflow and its current version
GET  /v1/workflows/{affair_code}          a definition (?version=N for an older one)
PUT  /v1/workflows/{affair_code}          a new version (the owning bureau's leader/approver, or an admin)
GET  /v1/approvals                        approvals in the caller's scope, filtered, paginated
GET  /v1/approvals/inbox                  the tasks the caller may act on now: green channel first,
                                          then oldest first; and the caller's counts of moves
GET  /v1/approvals/{id}                   the approval as it stands, with every move
POST /v1/approvals/{id}/actions           act on the current task (approve, escalate, request_supplement,
                                          extend, refuse, send_back), with a comment
GET  /v1/approvals/{id}/verify            every seal and the hash chain: {"valid": ..., "checks": [...]}
GET  /v1/approvals/{id}/archive           the archive record of a concluded approval and its digest
GET  /v1/seals/keys                       the seals' public keys (JWK Set, OKP/Ed25519, RFC 8037)
POST /v1/access-applications              a department applies for access to communities (准入)
GET  /v1/access-grants                    approved access in force (?community=&department=&on=)

A domain refusal is problem+json with the rule's `code`: 403 role or jurisdiction, 409 the
state does not allow it (a task no longer current, a stale expected_version, an action the
step does not allow), 422 wrong input naming the field. Nothing is changed by a refusal.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from civicgrid_common.eventstore import ConcurrencyConflict
from civicgrid_common.identity import Principal, Role
from civicgrid_common.identity.dependencies import FORBIDDEN, require
from civicgrid_common.web.problems import PROBLEM_TYPE_BASE, VALIDATION_ERROR, Problem

from approval.adapters import views
from approval.entrypoints.api import responses
from approval.application.service import ApprovalNotFound, ApprovalService, Contended, NotAllowed, StaleVersion
from approval.domain.approval import Approval, ApprovalRuleViolation, RuleKind, Status
from approval.domain.definition import Action, InvalidDefinition

APPROVAL_RULE = PROBLEM_TYPE_BASE + "approval-rule"
NOT_FOUND = PROBLEM_TYPE_BASE + "approval-not-found"
STALE = PROBLEM_TYPE_BASE + "stale-version"
CONTENDED = PROBLEM_TYPE_BASE + "contended"

REVIEWERS = (Role.COMMUNITY_REVIEWER, Role.STREET_REVIEWER, Role.BUREAU_APPROVER, Role.LEADER, Role.DEPARTMENT)
READERS = REVIEWERS + (Role.AUDITOR, Role.ADMIN, Role.WINDOW_CLERK)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActionIn(_Body):
    action: Action
    comment: str = Field(min_length=1, max_length=2000, description="why: every move carries a comment")
    expected_version: int | None = Field(None, ge=1, description="the version the reviewer decided on (409 if stale)")
    task: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,63}\.[1-9][0-9]*$",
                             description="the task acted on (409 if it is no longer current)")
    branch: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,63}$", description="parallel steps: the branch")
    finish: bool = Field(False, description="approve and finish here (steps that may finish)")
    new_due_date: date | None = Field(None, description="extend: the new due date")
    materials: list[str] = Field(default_factory=list, max_length=50,
                                 description="request_supplement: the material codes the applicant must bring")


class DocumentIn(_Body):
    name: str = Field(min_length=1, max_length=200)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class AccessApplicationIn(_Body):
    department: str = Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")
    title: str = Field(min_length=1, max_length=200)
    purpose: str = Field(min_length=1, max_length=2000)
    work_kind: Literal["signboard", "inspection", "survey", "training", "subscription", "other"]
    documents: list[DocumentIn] = Field(min_length=1, max_length=50)
    communities: list[str] = Field(min_length=1, max_length=500)
    cost_bearer: str = Field(min_length=1, max_length=200, description="费随事转: who pays")
    valid_from: date
    valid_until: date


def _service(request: Request) -> ApprovalService:
    return request.app.state.approvals


def _rule(exc: ApprovalRuleViolation) -> Problem:
    status = {RuleKind.FORBIDDEN: 403, RuleKind.CONFLICT: 409, RuleKind.INVALID: 422}[exc.kind]
    extra: dict[str, Any] = {"code": exc.code}
    if exc.kind is RuleKind.INVALID:
        extra["errors"] = [{"pointer": f"#/{exc.field or ''}", "detail": str(exc)}]
    return Problem(status, detail=str(exc), type=VALIDATION_ERROR if status == 422 else APPROVAL_RULE, **extra)


def _contended(exc: Contended) -> Problem:
    """Lost to concurrent transactions on every try (deadlocks with the deadline timers): nothing
    was changed; the same request may be sent again."""
    return Problem(503, "Busy", str(exc), type=CONTENDED, attempts=exc.attempts, headers={"Retry-After": "1"})


def _may_read(principal: Principal, a: Approval) -> bool:
    if principal.has_any(Role.AUDITOR, Role.ADMIN) or principal.may_act_in(a.jurisdiction):
        return True
    assert a.definition is not None
    departments = {s.department for s in a.definition.steps} | {
        b.department for s in a.definition.steps for b in s.branches}
    if a.application is not None:
        departments.add(a.application["department"])
    return principal.department is not None and principal.department in departments


async def _readable(service: ApprovalService, principal: Principal, approval_id: str) -> Approval:
    try:
        a = await service.load(approval_id)
    except ApprovalNotFound:
        raise Problem(404, detail=f"no approval {approval_id}", type=NOT_FOUND) from None
    if not _may_read(principal, a):
        raise Problem(403, "Outside your jurisdiction", "This approval is outside your jurisdiction.", type=FORBIDDEN)
    return a


def approval_out(a: Approval) -> dict[str, Any]:
    step = a.step
    return {
        "id": a.id, "version": a.version, "status": a.status.value if a.status else None,
        "case_id": a.case_id, "case_number": a.case_number, "affair_code": a.affair_code,
        "workflow_version": a.workflow_version, "jurisdiction": a.jurisdiction, "routing": a.routing,
        "green_channel": a.green_channel, "started_at": a.started_at,
        "task": None if a.is_final else {
            "key": a.task.key, "step": step.id, "name_zh": step.name_zh, "level": step.level.value,
            "kind": step.kind.value, "actions": [x.value for x in step.actions], "may_finish": step.may_finish,
            "entered_at": a.entered_at, "due_date": a.due_date, "escalated": a.escalated,
            "pending_branches": a.pending_branches() if step.branches else [], "warned": a.warned,
            "overdue": a.overdue, "extensions_used": a.extensions.get(step.id, 0),
            "max_extensions": step.max_extensions,
        },
        "path": a.path, "moves": a.moves, "conclusion": a.concluded, "application": a.application,
    }


def _row_out(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for k, v in out.items():
        if isinstance(v, (date, datetime)):
            out[k] = v.isoformat()
    return out


def approvals_router() -> APIRouter:
    r = APIRouter(tags=["approvals"])

    @r.get("/v1/workflows", response_model=responses.WorkflowList)
    async def list_workflows(request: Request, who: Principal = Depends(require(*READERS))) -> dict[str, Any]:
        service = _service(request)
        items = []
        for code in await service.workflow_codes():
            w = await service.workflow(code)
            assert w.current is not None
            items.append({"affair_code": code, "version": w.current_version, "department": w.current.department,
                          "name_zh": w.current.name_zh})
        return {"items": items}

    @r.get("/v1/workflows/{affair_code}", response_model=responses.WorkflowOut, response_model_exclude_none=True)
    async def get_workflow(affair_code: str, request: Request, version: int | None = Query(None, ge=1),
                           who: Principal = Depends(require(*READERS))) -> dict[str, Any]:
        try:
            w = await _service(request).workflow(affair_code)
        except ApprovalNotFound:
            raise Problem(404, detail=f"no workflow for {affair_code}", type=NOT_FOUND) from None
        v = version or w.current_version
        if v > w.current_version:
            raise Problem(404, detail=f"{affair_code} has {w.current_version} version(s)", type=NOT_FOUND)
        return {"affair_code": affair_code, "version": v, "current_version": w.current_version,
                "definition": w.versions[v - 1].to_data()}

    @r.put("/v1/workflows/{affair_code}", response_model=responses.WorkflowOut, response_model_exclude_none=True)
    async def put_workflow(affair_code: str, body: dict[str, Any], request: Request,
                           who: Principal = Depends(require(Role.LEADER, Role.BUREAU_APPROVER, Role.ADMIN))
                           ) -> dict[str, Any]:
        try:
            w = await _service(request).define_workflow(who, affair_code, body)
        except InvalidDefinition as exc:
            raise Problem(422, "Request is not valid", "The workflow definition does not hold.",
                          type=VALIDATION_ERROR, errors=exc.errors) from None
        except NotAllowed as exc:
            raise Problem(403, detail=str(exc), type=FORBIDDEN) from None
        assert w.current is not None
        return {"affair_code": affair_code, "version": w.current_version, "definition": w.current.to_data()}

    @r.get("/v1/approvals", response_model=responses.ApprovalPage)
    async def list_all(request: Request, status: Status | None = None, affair_code: str | None = None,
                       level: Literal["community", "street", "bureau", "department"] | None = None,
                       overdue: bool | None = None, case_id: str | None = None,
                       limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0),
                       who: Principal = Depends(require(*READERS))) -> dict[str, Any]:
        f = views.ListFilter(status.value if status else None, affair_code, level, overdue, case_id, limit, offset)
        async with request.app.state.pool.acquire() as conn:
            total, rows = await views.list_approvals(conn, who, f, inbox=False)
        return _page(rows, total, limit, offset)

    @r.get("/v1/approvals/inbox", response_model=responses.InboxPage)
    async def inbox(request: Request, affair_code: str | None = None,
                    level: Literal["community", "street", "bureau", "department"] | None = None,
                    overdue: bool | None = None, limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0),
                    who: Principal = Depends(require(*REVIEWERS))) -> dict[str, Any]:
        f = views.ListFilter(None, affair_code, level, overdue, None, limit, offset)
        async with request.app.state.pool.acquire() as conn:
            total, rows = await views.list_approvals(conn, who, f, inbox=True)
            counts = await views.counts(conn, who.subject)
        page = _page(rows, total, limit, offset)
        page["counts"] = {
            "completed": counts.get("approve", 0), "returned": counts.get("refuse", 0),
            "extended": counts.get("extend", 0), "supplemented": counts.get("request_supplement", 0),
            "sent_back": counts.get("send_back", 0), "escalated": counts.get("escalate", 0),
        }
        return page

    @r.get("/v1/approvals/{approval_id}", response_model=responses.ApprovalOut)
    async def get_approval(approval_id: str, request: Request,
                           who: Principal = Depends(require(*READERS))) -> dict[str, Any]:
        return approval_out(await _readable(_service(request), who, approval_id))

    @r.post("/v1/approvals/{approval_id}/actions", response_model=responses.ApprovalOut)
    async def act(approval_id: str, body: ActionIn, request: Request,
                  who: Principal = Depends(require(*REVIEWERS))) -> dict[str, Any]:
        service = _service(request)
        await _readable(service, who, approval_id)
        try:
            a = await service.act(who, approval_id, body.action, comment=body.comment,
                                  expected_version=body.expected_version, task=body.task, branch=body.branch,
                                  finish=body.finish, new_due_date=body.new_due_date, materials=body.materials)
        except ApprovalRuleViolation as exc:
            raise _rule(exc) from None
        except StaleVersion as exc:
            raise Problem(409, "Stale version", str(exc), type=STALE, current_version=exc.actual) from None
        except ConcurrencyConflict:
            raise Problem(409, "Stale version", "Someone acted on this approval at the same time; reload it.",
                          type=STALE) from None
        except Contended as exc:
            raise _contended(exc) from None
        return approval_out(a)

    @r.get("/v1/approvals/{approval_id}/verify", response_model=responses.Verification)
    async def verify(approval_id: str, request: Request, who: Principal = Depends(require(*READERS))) -> dict[str, Any]:
        service = _service(request)
        await _readable(service, who, approval_id)
        return await service.verify(approval_id)

    @r.get("/v1/approvals/{approval_id}/archive", response_model=responses.ArchiveOut)
    async def get_archive(approval_id: str, request: Request,
                          who: Principal = Depends(require(*READERS))) -> dict[str, Any]:
        service = _service(request)
        await _readable(service, who, approval_id)
        async with request.app.state.pool.acquire() as conn:
            found = await views.archive(conn, approval_id)
        if found is None:
            raise Problem(404, detail="the approval is not concluded: no archive yet", type=NOT_FOUND)
        return {"approval_id": approval_id, "digest": found[0], "algorithm": "SHA-256 of RFC 8785 JSON",
                "record": found[1]}

    @r.get("/v1/seals/keys", response_model=responses.KeySet)
    async def seal_keys(request: Request) -> dict[str, Any]:
        """Public: anyone may verify a seal."""
        return await request.app.state.seal_keys.jwks()

    @r.get("/v1/access-grants", response_model=responses.AccessGrantList)
    async def list_access_grants(request: Request, community: str | None = Query(None, pattern=r"^[0-9]{12}$"),
                                 department: str | None = Query(None, pattern=r"^[a-z][a-z0-9_]{1,39}$"),
                                 on: date | None = Query(None, description="in force on this day"),
                                 who: Principal = Depends(require())) -> dict[str, Any]:
        """Approved access in force: a community (or street) checks whether a department's work
        has it before taking the work on; anyone signed in may ask."""
        async with request.app.state.pool.acquire() as conn:
            rows = await views.access_grants(conn, community=community, department=department, on=on)
        return {"items": [_row_out(x) for x in rows]}

    @r.post("/v1/access-applications", status_code=201, response_model=responses.ApprovalOut)
    async def apply_for_access(body: AccessApplicationIn, request: Request,
                               who: Principal = Depends(require(Role.DEPARTMENT, Role.BUREAU_APPROVER, Role.LEADER))
                               ) -> dict[str, Any]:
        errors = [{"pointer": f"#/communities/{i}", "detail": "a community code has 12 digits"}
                  for i, c in enumerate(body.communities) if not (len(c) == 12 and c.isdigit())]
        if body.valid_until < body.valid_from:
            errors.append({"pointer": "#/valid_until", "detail": "valid_until is not before valid_from"})
        if len(set(body.communities)) != len(body.communities):
            errors.append({"pointer": "#/communities", "detail": "each community once"})
        if errors:
            raise Problem(422, "Request is not valid", "The application does not hold.", type=VALIDATION_ERROR,
                          errors=errors)
        try:
            a = await _service(request).start_access(who, str(uuid.uuid4()), body.model_dump(mode="json"))
        except NotAllowed as exc:
            raise Problem(403, detail=str(exc), type=FORBIDDEN) from None
        except ApprovalRuleViolation as exc:
            raise _rule(exc) from None
        except Contended as exc:
            raise _contended(exc) from None
        return approval_out(a)

    return r


def _page(rows: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": [_row_out(x) for x in rows], "total": total, "limit": limit, "offset": offset,
            "next_offset": offset + limit if offset + limit < total else None}
