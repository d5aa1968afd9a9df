"""The affairs catalogue over HTTP: everyone signed in reads it; a district admin changes it.

GET    /v1/affairs                          the current version of every active entry
GET    /v1/affairs/{code}                   one entry's current version
GET    /v1/affairs/{code}/versions          every version (open cases keep theirs)
POST   /v1/affairs                          add an entry (admin)
PUT    /v1/affairs/{code}                   a new version of an entry (admin, with a reason)
DELETE /v1/affairs/{code}?reason=...        retire an entry (admin)

Bodies are the typed `Affair` (domain/affair.py), so a bad entry is answered field by field by
the platform's validation handler; the service decides who may change the catalogue and
refuses by its rules, answered in one place too (no route catches anything).
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from civicgrid_common.identity import Principal, Role
from civicgrid_common.identity.dependencies import require
from civicgrid_common.web.models import RequestBody

from civicgrid_intake.application.catalogue import CatalogueService
from civicgrid_intake.domain.affair import Affair, affair_to_data
from civicgrid_intake.domain.catalogue import AffairRevision

AffairCode = Annotated[str, Path(max_length=64, description="the affair's code, e.g. civil.minimum_living_allowance")]


class AffairOut(BaseModel):
    """An entry of the catalogue at one version (the affair's fields are those of the seed file)."""

    # Not `Affair` itself: an old version is shown as it was stored, under the rules of its day.
    model_config = {"extra": "allow"}
    code: str
    version: int
    name_zh: str
    name_en: str
    department: str
    level: str


class RevisionIn(RequestBody):
    reason: str = Field(min_length=1, max_length=500, description="why the entry changes (kept in its history)")
    affair: Affair = Field(description="the whole entry as it is to read from now on")


def _out(revision: AffairRevision) -> dict[str, Any]:
    return {"version": revision.version, **affair_to_data(revision.affair)}


def catalogue_router() -> APIRouter:
    router = APIRouter(prefix="/v1/affairs", tags=["affairs catalogue"])

    def service(request: Request) -> CatalogueService:
        return request.app.state.catalogue

    @router.get("", response_model=list[AffairOut])
    async def list_affairs(_: Principal = Depends(require()), svc: CatalogueService = Depends(service)):
        return [_out(r) for r in await svc.active()]

    @router.get("/{code}", response_model=AffairOut)
    async def get_affair(code: AffairCode, _: Principal = Depends(require()), svc: CatalogueService = Depends(service)):
        return _out(await svc.current(code))

    @router.get("/{code}/versions", response_model=list[AffairOut])
    async def get_versions(code: AffairCode, _: Principal = Depends(require()), svc: CatalogueService = Depends(service)):
        return [_out(r) for r in await svc.revisions(code)]

    @router.post("", response_model=AffairOut, status_code=201)
    async def add_affair(
        affair: Affair = Body(description="the entry, in the seed file's form"),
        principal: Principal = Depends(require(Role.ADMIN)),
        svc: CatalogueService = Depends(service),
    ):
        return _out(await svc.add(principal, affair))

    @router.put("/{code}", response_model=AffairOut)
    async def revise_affair(
        code: AffairCode,
        body: RevisionIn,
        principal: Principal = Depends(require(Role.ADMIN)),
        svc: CatalogueService = Depends(service),
    ):
        return _out(await svc.revise(principal, code, body.affair, body.reason))

    @router.delete("/{code}", status_code=204)
    async def retire_affair(
        code: AffairCode,
        reason: str = Query(min_length=1, max_length=500),
        principal: Principal = Depends(require(Role.ADMIN)),
        svc: CatalogueService = Depends(service),
    ) -> None:
        await svc.retire(principal, code, reason)

    return router
