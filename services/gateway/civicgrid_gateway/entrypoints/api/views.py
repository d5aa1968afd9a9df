"""The views that join several services, for screens that show one affair whole.

GET /api/views/cases/{case_id}: the case (intake) with its approvals, each with its moves and
their seals and its verification (approval); asked of both services at once with the caller's
token, so that each service decides what the caller may see, as it does for its own routes."""
from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from civicgrid_common.identity.principal import Principal
from civicgrid_common.problems import UNAVAILABLE, Problem

from civicgrid_gateway.adapters.proxy import Upstreams
from civicgrid_gateway.domain.case_file import MAX_APPROVALS, Answer, approval_ids, case_file
from civicgrid_gateway.entrypoints.api.sign_in import caller
from civicgrid_gateway.entrypoints.edge import limit_principal, trace_headers

CaseId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
                             description="the case's id, as intake names it")]


class ApprovalFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approval: dict[str, Any] = Field(description="approval's GET /v1/approvals/{id}: its moves, each with its seal, "
                                                 "and its conclusion")
    verification: dict[str, Any] | None = Field(description="approval's GET /v1/approvals/{id}/verify: the hash "
                                                            "chain, every seal's signature, the archive; null if "
                                                            "it could not be had (see missing)")


class MissingPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    part: str = Field(description="what is missing: approvals, approvals/<id> or approvals/<id>/verification")
    service: str
    status: int | None = Field(description="the service's answer, null if it did not answer")
    detail: str


class CaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_id: str
    case: dict[str, Any] = Field(description="intake's GET /v1/cases/{id}, as it answered")
    approvals: list[ApprovalFile] | None = Field(
        description=f"the case's approvals (at most {MAX_APPROVALS}), newest first; null if approval could not "
                    "be asked or does not show them to this caller (see missing)")
    missing: list[MissingPart] = Field(description="what could not be had, and why; empty when the view is whole")


def _headers(request: Request) -> list[tuple[str, str]]:
    """What the services are told: the caller's token (its session's, for a signed-in browser)
    and language, this request's id, the trace."""
    headers = [("authorization", request.state.authorization)]
    headers += [("accept-language", v) for v in request.headers.getlist("accept-language")[:1]]
    headers.append(("x-request-id", request.state.request_id))
    return headers + trace_headers(request)


async def case_view(case_id: CaseId, request: Request, response: Response,
                    principal: Principal = Depends(caller)) -> Any:
    await limit_principal(request, principal.subject)
    if request.state.renewed_session is not None:
        response.headers.append("set-cookie", request.state.renewed_session)
    upstreams: Upstreams = request.app.state.upstreams
    headers = _headers(request)
    # Both at once: approval checks the caller itself, and what it answers is shown only if
    # intake shows the case.
    case, listing = await asyncio.gather(
        upstreams.get_json("intake", f"/v1/cases/{quote(case_id, safe='')}", "", headers),
        upstreams.get_json("approval", "/v1/approvals",
                           urlencode({"case_id": case_id, "limit": MAX_APPROVALS}), headers))
    if case.status is None:
        raise Problem(UNAVAILABLE, f"The intake service is not answering ({case.reason}); the case cannot be shown.",
                      upstream="intake", headers={"Retry-After": "5"})
    if not case.ok:
        # intake's own refusal (401, 403, 404, ...) as it gave it.
        return JSONResponse(case.body, status_code=case.status, media_type="application/problem+json") \
            if isinstance(case.body, dict) else Response(status_code=case.status)
    ids = approval_ids(listing, case_id)

    async def both(approval_id: str) -> tuple[str, Answer, Answer]:
        path = f"/v1/approvals/{quote(approval_id, safe='')}"
        approval, verification = await asyncio.gather(upstreams.get_json("approval", path, "", headers),
                                                      upstreams.get_json("approval", path + "/verify", "", headers))
        return approval_id, approval, verification

    approvals = await asyncio.gather(*(both(i) for i in ids))
    return case_file(case_id, case.body, listing, approvals)
