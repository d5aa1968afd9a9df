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
GET  /v1/approvals/{id}/history           auditors: its events as recorded, each hash's every input, and the
                                          chain's verification, to be re-checked without our word
GET  /v1/approvals/{id}/archive           the archive record of a concluded approval and its digest
GET  /v1/seals/keys                       the seals' public keys (JWK Set, OKP/Ed25519, RFC 8037)
POST /v1/access-applications              a department applies for access to communities (准入)
GET  /v1/access-grants                    approved access in force (?community=&department=&on=)

A domain refusal is problem+json with the rule's `code`: 403 role, 404 an approval the caller may
not see (answered like an unknown one), 409 the state does not allow it (an action the step does
not allow) or a stale decision (a task no longer current, a stale expected_version), 422 wrong
input naming the field. Nothing is changed by a refusal.
"""
from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from civicgrid_common.identity import Principal, Role
from civicgrid_common.identity.dependencies import require
from civicgrid_common.problems import NOT_FOUND, Problem
from civicgrid_common.web.history import RecordedEventOut, VerificationOut, recorded_events_out, verification_out
from civicgrid_common.web.models import Day, Flag, QueryFlag, RequestBody, StrictInt

from civicgrid_approval.adapters.approval_views import ApprovalViewReads, ListFilter
from civicgrid_approval.application.service import ApprovalService
from civicgrid_approval.domain.approval import Approval, Status
from civicgrid_approval.domain.definition import Action, DefinitionIn
from civicgrid_approval.entrypoints.api import responses

ApprovalId = Annotated[str, Path(max_length=64, description="the approval's id (a UUID)")]

REVIEWERS = (Role.COMMUNITY_REVIEWER, Role.STREET_REVIEWER, Role.BUREAU_APPROVER, Role.LEADER, Role.DEPARTMENT)
READERS = REVIEWERS + (Role.AUDITOR, Role.ADMIN, Role.WINDOW_CLERK)


class ApprovalHistoryOut(BaseModel):
    approval_id: str
    events: list[RecordedEventOut]
    verification: VerificationOut


class _Body(RequestBody):
    pass


class ActionIn(_Body):
    action: Action
    comment: str = Field(min_length=1, max_length=2000, description="why: every move carries a comment")
    expected_version: StrictInt | None = Field(None, ge=1, le=1_000_000,
                                               description="the version the reviewer decided on (409 if stale)")
    task: str | None = Field(None, max_length=80, pattern=r"^[a-z][a-z0-9_]{0,63}\.[1-9][0-9]*$",
                             description="the task acted on (409 if it is no longer current)")
    branch: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,63}$", description="parallel steps: the branch")
    finish: Flag = Field(False, description="approve and finish here (steps that may finish)")
    new_due_date: Day | None = Field(None, description="extend: the new due date (at most the step's extension "
                                                       "limit of working days after the current one)")
    materials: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=50,
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
    communities: list[Annotated[str, Field(max_length=12)]] = Field(min_length=1, max_length=500)
    cost_bearer: str = Field(min_length=1, max_length=200, description="费随事转: who pays")
    valid_from: Day
    valid_until: Day


def _service(request: Request) -> ApprovalService:
    return request.app.state.approvals


def _views(request: Request) -> ApprovalViewReads:
    return request.app.state.approval_views


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
    out.pop("concerns", None)  # the view's visibility column, not part of the answer
    for k, v in out.items():
        if isinstance(v, (date, datetime)):
            out[k] = v.isoformat()
    return out


def approvals_router() -> APIRouter:
    r = APIRouter(tags=["approvals"])

    @r.get("/v1/workflows", response_model=responses.WorkflowList)
    async def list_workflows(request: Request, who: Principal = Depends(require(*READERS))) -> dict[str, Any]:
        return {"items": [{"affair_code": w.current.affair_code, "version": w.current_version,
                           "department": w.current.department, "name_zh": w.current.name_zh}
                          for w in await _service(request).workflows() if w.current is not None]}

    @r.get("/v1/workflows/{affair_code}", response_model=responses.WorkflowOut, response_model_exclude_none=True)
    async def get_workflow(request: Request, affair_code: str = Path(max_length=64),
                           version: int | None = Query(None, ge=1, le=10_000),
                           who: Principal = Depends(require(*READERS))) -> dict[str, Any]:
        w = await _service(request).workflow(affair_code)
        v = version or w.current_version
        if v > w.current_version:
            raise Problem(NOT_FOUND, f"{affair_code} has {w.current_version} version(s)")
        return {"affair_code": affair_code, "version": v, "current_version": w.current_version,
                "definition": w.versions[v - 1].to_data()}

    @r.put("/v1/workflows/{affair_code}", response_model=responses.WorkflowOut, response_model_exclude_none=True)
    async def put_workflow(body: DefinitionIn, request: Request, affair_code: str = Path(max_length=64),
                           who: Principal = Depends(require(Role.LEADER, Role.BUREAU_APPROVER, Role.ADMIN))
                           ) -> dict[str, Any]:
        w = await _service(request).define_workflow(who, affair_code, body)
        assert w.current is not None
        return {"affair_code": affair_code, "version": w.current_version, "definition": w.current.to_data()}

    @r.get("/v1/approvals", response_model=responses.ApprovalPage)
    async def list_all(request: Request, status: Status | None = None,
                       affair_code: str | None = Query(None, max_length=64),
                       level: Literal["community", "street", "bureau", "department"] | None = None,
                       overdue: QueryFlag | None = None, case_id: str | None = Query(None, max_length=64),
                       limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0, le=100_000),
                       who: Principal = Depends(require(*READERS))) -> dict[str, Any]:
        f = ListFilter(status.value if status else None, affair_code, level, overdue, case_id, limit, offset)
        total, rows = await _views(request).list(who, f, inbox=False)
        return _page(rows, total, limit, offset)

    @r.get("/v1/approvals/inbox", response_model=responses.InboxPage)
    async def inbox(request: Request, affair_code: str | None = Query(None, max_length=64),
                    level: Literal["community", "street", "bureau", "department"] | None = None,
                    overdue: QueryFlag | None = None, limit: int = Query(50, ge=1, le=200),
                    offset: int = Query(0, ge=0, le=100_000),
                    who: Principal = Depends(require(*REVIEWERS))) -> dict[str, Any]:
        f = ListFilter(None, affair_code, level, overdue, None, limit, offset)
        total, rows = await _views(request).list(who, f, inbox=True)
        counts = await _views(request).counts(who.subject)
        page = _page(rows, total, limit, offset)
        page["counts"] = {
            "completed": counts.get("approve", 0), "returned": counts.get("refuse", 0),
            "extended": counts.get("extend", 0), "supplemented": counts.get("request_supplement", 0),
            "sent_back": counts.get("send_back", 0), "escalated": counts.get("escalate", 0),
        }
        return page

    @r.get("/v1/approvals/{approval_id}", response_model=responses.ApprovalOut)
    async def get_approval(request: Request, approval_id: ApprovalId,
                           who: Principal = Depends(require(*READERS))) -> dict[str, Any]:
        return approval_out(await _service(request).get(who, approval_id))

    @r.post("/v1/approvals/{approval_id}/actions", response_model=responses.ApprovalOut)
    async def act(body: ActionIn, request: Request, approval_id: ApprovalId,
                  who: Principal = Depends(require(*REVIEWERS))) -> dict[str, Any]:
        a = await _service(request).act(who, approval_id, body.action, comment=body.comment,
                                        expected_version=body.expected_version, task=body.task, branch=body.branch,
                                        finish=body.finish, new_due_date=body.new_due_date, materials=body.materials)
        return approval_out(a)

    @r.get("/v1/approvals/{approval_id}/verify", response_model=responses.Verification)
    async def verify(request: Request, approval_id: ApprovalId,
                     who: Principal = Depends(require(*READERS))) -> dict[str, Any]:
        return await _service(request).verify(who, approval_id)

    @r.get("/v1/approvals/{approval_id}/history", response_model=ApprovalHistoryOut)
    async def history(request: Request, approval_id: ApprovalId,
                      who: Principal = Depends(require(Role.AUDITOR))) -> ApprovalHistoryOut:
        """Auditors only (its events hold the application as handed in, which the approval's own
        view shows each reader only in part), in their jurisdiction."""
        events, verification = await _service(request).history(who, approval_id)
        return ApprovalHistoryOut(approval_id=approval_id, events=recorded_events_out(events),
                                  verification=verification_out(verification))

    @r.get("/v1/approvals/{approval_id}/archive", response_model=responses.ArchiveOut)
    async def get_archive(request: Request, approval_id: ApprovalId,
                          who: Principal = Depends(require(*READERS))) -> dict[str, Any]:
        digest, record = await _service(request).archive(who, approval_id)
        return {"approval_id": approval_id, "digest": digest, "algorithm": "SHA-256 of RFC 8785 JSON",
                "record": record}

    @r.get("/v1/seals/keys", response_model=responses.KeySet)
    async def seal_keys(request: Request) -> dict[str, Any]:
        """Public: anyone may verify a seal."""
        return await request.app.state.seal_keys.jwks()

    @r.get("/v1/access-grants", response_model=responses.AccessGrantList)
    async def list_access_grants(request: Request, community: str | None = Query(None, pattern=r"^[0-9]{12}$"),
                                 department: str | None = Query(None, pattern=r"^[a-z][a-z0-9_]{1,39}$"),
                                 on: Day | None = Query(None, description="in force on this day"),
                                 who: Principal = Depends(require())) -> dict[str, Any]:
        """Approved access in force: a community (or street) checks whether a department's work
        has it before taking the work on; anyone signed in may ask."""
        rows = await _views(request).access_grants(community=community, department=department, on=on)
        return {"items": [_row_out(x) for x in rows]}

    @r.post("/v1/access-applications", status_code=201, response_model=responses.ApprovalOut)
    async def apply_for_access(body: AccessApplicationIn, request: Request,
                               who: Principal = Depends(require(Role.DEPARTMENT, Role.BUREAU_APPROVER, Role.LEADER))
                               ) -> dict[str, Any]:
        a = await _service(request).start_access(who, str(uuid.uuid4()), body.model_dump(mode="json"))
        return approval_out(a)

    return r


def _page(rows: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": [_row_out(x) for x in rows], "total": total, "limit": limit, "offset": offset,
            "next_offset": offset + limit if offset + limit < total else None}
