"""Disputes (矛盾纠纷) and the monthly stability sweep, and the work departments push into
communities under the access system (准入).

Disputes are filed, mediated, followed up, settled or referred by grid workers and the
community's staff over the grid; the sweep is the community's (a community or street reviewer).
Department work is the department's to push; whether the community takes it is decided by the
access grants approval issued (`CommunityWork.receive`): a refusal is recorded, counted and
answered 403 with the reason."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.eventstore import AggregateNotFound
from civicgrid_common.identity.principal import Principal
from civicgrid_common.problems import Refusal, RuleViolation
from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_grid.application.ports import Grants, GridNotFound, Locator, check_in, load_or_none
from civicgrid_grid.domain.codes import CommunityCode, GridCode
from civicgrid_grid.domain.community_work import CommunityWork
from civicgrid_grid.domain.disputes import Dispute
from civicgrid_grid.domain.rules import InvalidInput
from civicgrid_grid.domain.stability import StabilitySweep

DISPUTE_NAMESPACE = uuid.UUID("0c8b5d7e-93a4-4f0e-8a61-2d4f6b7c9e13")


def dispute_id_for(reporter: str, client_id: str) -> str:
    return str(uuid.uuid5(DISPUTE_NAMESPACE, f"{reporter}:{client_id}"))


@dataclass(frozen=True)
class DisputeWrite:
    id: str
    state: str
    grid: str
    recorded: bool


class WorkRefused(RuleViolation):
    """Department work without an access grant in force: 403, after the refusal is recorded."""

    refusal = Refusal.FORBIDDEN


class StabilityService:
    def __init__(self, transactions: Transactions, locator: Locator, grants: Grants, *,
                 clock: Clock = utc_now) -> None:
        self.transactions = transactions
        self.locator = locator
        self.grants = grants
        self.clock = clock

    # ------------------------------------------------------------------ disputes

    async def file(self, principal: Principal, grid: str, body: Mapping[str, Any]) -> DisputeWrite:
        code = GridCode.parse(grid, "grid")
        check_in(principal, code.value, "grid")
        if await self.locator.area(code.value) is None:
            raise GridNotFound("grid", code.value)
        dispute_id = dispute_id_for(principal.subject, body["client_id"])
        at = self.clock()

        async def file(uow: UnitOfWork) -> DisputeWrite:
            dispute = await uow.find(Dispute, dispute_id) or uow.add(Dispute(dispute_id))
            recorded = dispute.file(grid=code, nature=body["nature"], urgency=body["urgency"], summary=body["summary"],
                                    parties=body["parties"], by=principal.subject, at=at, client_id=body["client_id"])
            return DisputeWrite(dispute.id, dispute.state.value, code.value, recorded)

        return await self.transactions(file)

    async def act(self, principal: Principal, dispute_id: str, action: str, body: Mapping[str, Any]) -> DisputeWrite:
        """mediate, follow_up, settle or refer (the Dispute's commands of those names)."""
        at = self.clock()
        args = {k: v for k, v in body.items() if v is not None or k == "note"}

        async def act(uow: UnitOfWork) -> DisputeWrite:
            try:
                dispute = await uow.get(Dispute, dispute_id)
            except AggregateNotFound:
                raise GridNotFound("dispute", dispute_id) from None
            if not principal.may_act_in(str(dispute.grid)):
                raise GridNotFound("dispute", dispute_id)
            recorded = getattr(dispute, action)(**args, by=principal.subject, at=at)
            return DisputeWrite(dispute.id, dispute.state.value, str(dispute.grid), recorded)

        return await self.transactions(act)

    async def get(self, principal: Principal, dispute_id: str) -> Dispute:
        dispute = await load_or_none(self.transactions, Dispute, dispute_id)
        if dispute is None or dispute.grid is None or not principal.may_act_in(dispute.grid.value):
            raise GridNotFound("dispute", dispute_id)
        return dispute

    # ------------------------------------------------------------------ the monthly sweep

    async def record_sweep(self, principal: Principal, community: str, month: str,
                           factors: Sequence[Mapping[str, Any]], client_id: str) -> bool:
        code = CommunityCode.parse(community, "community")
        check_in(principal, code.value, "community")
        stream = StabilitySweep.stream_for(code.value, month)
        for i, f in enumerate(factors):
            grid = f.get("grid")
            if isinstance(grid, str) and grid.startswith(code.value) and await self.locator.area(grid) is None:
                raise InvalidInput("unknown_grid", f"{grid!r} is no active grid of community {code}",
                                   field=f"factors/{i}/grid")
        at = self.clock()

        async def record(uow: UnitOfWork) -> bool:
            sweep = await uow.find(StabilitySweep, stream) or uow.add(StabilitySweep(stream))
            return sweep.record(factors, client_id=client_id, by=principal.subject, at=at)

        return await self.transactions(record)

    async def sweep(self, principal: Principal, community: str, month: str) -> StabilitySweep:
        code = CommunityCode.parse(community, "community")
        check_in(principal, code.value, "community")
        sweep = await load_or_none(self.transactions, StabilitySweep, StabilitySweep.stream_for(code.value, month))
        if sweep is None or not sweep.recorded:
            raise GridNotFound("stability sweep", f"{community}/{month}")
        return sweep

    # ------------------------------------------------------------------ department work (准入)

    async def push_work(self, principal: Principal, community: str, body: Mapping[str, Any]) -> tuple[str, bool]:
        """A department pushes work into a community; returns (grant id, recorded now)."""
        code = CommunityCode.parse(community, "community")
        check_in(principal, code.value, "community")
        department = principal.department or ""
        at = self.clock()

        async def push(uow: UnitOfWork) -> tuple[bool, str | None, bool]:
            stream = CommunityWork.stream_for(code.value)
            work = await uow.find(CommunityWork, stream) or uow.add(CommunityWork(stream))
            before = work.version
            grants = await self.grants.in_force(uow.conn, department, code.value)
            accepted, answer = work.receive(department=department, work_kind=body["work_kind"], title=body["title"],
                                            description=body.get("description"), grants=grants,
                                            client_id=body["client_id"], by=principal.subject, at=at)
            return accepted, answer, work.version != before

        accepted, answer, recorded = await self.transactions(push)
        if not accepted:  # the refusal is recorded (committed above), then answered
            raise WorkRefused("no_access_grant", f"community {code} takes no {body['work_kind']} work from "
                              f"{department or 'you'}: the district has granted no access (准入) for it in force "
                              "today; apply for access through approval first", field="work_kind")
        return answer or "", recorded
