"""The affairs catalogue over HTTP: everyone signed in reads it; a district admin changes it.

GET    /v1/affairs                          the current version of every active entry
GET    /v1/affairs/{code}                   one entry's current version
GET    /v1/affairs/{code}/versions          every version (open cases keep theirs)
POST   /v1/affairs                          add an entry (admin)
PUT    /v1/affairs/{code}                   a new version of an entry (admin, with a reason)
DELETE /v1/affairs/{code}?reason=...        retire an entry (admin)
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from civicgrid_common.identity import Principal, Role
from civicgrid_common.identity.dependencies import require
from civicgrid_common.problems import FORBIDDEN, NotFound, Problem
from civicgrid_common.web.models import RequestBody

from intake.application.catalogue import CatalogueService
from intake.domain.catalogue import AffairRevision, CatalogueRuleViolation, affair_to_data, parse_affair


AffairCode = Annotated[str, Path(max_length=64, description="the affair's code, e.g. civil.minimum_living_allowance")]


class AffairOut(BaseModel):
    """An entry of the catalogue at one version (the affair's fields are those of the seed file)."""

    model_config = {"extra": "allow"}
    code: str
    version: int
    name_zh: str
    name_en: str
    department: str
    level: str


class RevisionIn(RequestBody):
    reason: str = Field(min_length=1, max_length=500, description="why the entry changes (kept in its history)")
    affair: dict[str, Any] = Field(description="the whole entry as it is to read from now on")


def _out(revision: AffairRevision) -> dict[str, Any]:
    return {"version": revision.version, **affair_to_data(revision.affair)}


def _no_such_affair(code: str) -> NotFound:
    return NotFound("affair", code)


def catalogue_router() -> APIRouter:
    router = APIRouter(prefix="/v1/affairs", tags=["affairs catalogue"])

    def service(request: Request) -> CatalogueService:
        return request.app.state.catalogue

    def in_district(principal: Principal, svc: CatalogueService) -> None:
        # An admin of another district (or of one street) does not edit this district's list.
        if svc.district not in principal.jurisdictions:
            raise Problem(FORBIDDEN, f"changing the catalogue needs an admin of district {svc.district}")

    @router.get("", response_model=list[AffairOut])
    async def list_affairs(_: Principal = Depends(require()), svc: CatalogueService = Depends(service)):
        return [_out(r) for r in await svc.active()]

    @router.get("/{code}", response_model=AffairOut)
    async def get_affair(code: AffairCode, _: Principal = Depends(require()), svc: CatalogueService = Depends(service)):
        try:
            return _out(await svc.current(code))
        except CatalogueRuleViolation:
            raise _no_such_affair(code) from None

    @router.get("/{code}/versions", response_model=list[AffairOut])
    async def get_versions(code: AffairCode, _: Principal = Depends(require()), svc: CatalogueService = Depends(service)):
        try:
            return [_out(r) for r in await svc.revisions(code)]
        except CatalogueRuleViolation:
            raise _no_such_affair(code) from None

    @router.post("", response_model=AffairOut, status_code=201)
    async def add_affair(
        affair: dict[str, Any] = Body(description="the entry, in the seed file's form"),
        principal: Principal = Depends(require(Role.ADMIN)),
        svc: CatalogueService = Depends(service),
    ):
        in_district(principal, svc)
        return _out(await svc.add(parse_affair(affair)))

    @router.put("/{code}", response_model=AffairOut)
    async def revise_affair(
        code: AffairCode,
        body: RevisionIn,
        principal: Principal = Depends(require(Role.ADMIN)),
        svc: CatalogueService = Depends(service),
    ):
        in_district(principal, svc)
        try:
            affair = parse_affair(body.affair)
            if affair.code != code:
                raise CatalogueRuleViolation("code", f"the body is for {affair.code}, the path for {code}")
            return _out(await svc.revise(affair, body.reason))
        except CatalogueRuleViolation as e:
            # The entry is the body's `affair` member: point inside it.
            raise CatalogueRuleViolation(f"affair.{e.field}", e.message) from None

    @router.delete("/{code}", status_code=204)
    async def retire_affair(
        code: AffairCode,
        reason: str = Query(min_length=1, max_length=500),
        principal: Principal = Depends(require(Role.ADMIN)),
        svc: CatalogueService = Depends(service),
    ) -> None:
        in_district(principal, svc)
        try:
            await svc.retire(code, reason)
        except CatalogueRuleViolation as e:
            if e.field == "code":
                raise _no_such_affair(code) from None
            raise

    return router
