"""Use cases of the district's working-day calendar, which intake owns: an admin of the district
sets an override or confirms a year's schedule; the unit of work appends the event (published
on civicgrid.intake.calendar for approval and statistics) and applies it to intake's own copy
(civicgrid_common.calendar.sync.CalendarProjector) in one transaction."""
from __future__ import annotations

from datetime import date

from civicgrid_common.calendar.overrides import Override, Schedule, list_overrides
from civicgrid_common.clock import Clock, utc_now
from civicgrid_common.identity.principal import Principal
from civicgrid_common.problems import Refusal, RuleViolation
from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_intake.domain.calendar import DistrictCalendar


class NotTheDistrictsAdmin(RuleViolation):
    refusal = Refusal.FORBIDDEN

    def __init__(self, district: str) -> None:
        super().__init__("not_the_districts_admin",
                         f"changing the working-day calendar needs an admin of {district}: it moves every due date in it")


class CalendarService:
    def __init__(self, transactions: Transactions, district: str, *, clock: Clock = utc_now) -> None:
        self.transactions = transactions
        self.district = district
        self.clock = clock

    def _check(self, principal: Principal) -> None:
        if not principal.may_act_in(self.district):
            raise NotTheDistrictsAdmin(self.district)

    async def _calendar(self, uow: UnitOfWork) -> DistrictCalendar:
        stream = DistrictCalendar.stream_for(self.district)
        return await uow.find(DistrictCalendar, stream) or uow.add(DistrictCalendar(stream))

    async def set_override(self, principal: Principal, day: date, is_working_day: bool, reason: str) -> Override:
        self._check(principal)
        at = self.clock()

        async def set_override(uow: UnitOfWork) -> None:
            (await self._calendar(uow)).set_override(day, is_working_day, reason=reason, by=principal.subject, at=at)

        await self.transactions(set_override)
        return Override(day, is_working_day, reason.strip(), principal.subject, at)

    async def confirm_schedule(self, principal: Principal, year: int, source: str) -> Schedule:
        self._check(principal)
        at = self.clock()

        async def confirm(uow: UnitOfWork) -> None:
            (await self._calendar(uow)).confirm_schedule(year, source=source, by=principal.subject, at=at)

        await self.transactions(confirm)
        return Schedule(year, source.strip(), principal.subject, at)

    async def adopt_earlier_overrides(self) -> int:
        """Overrides set before the calendar was an aggregate (rows of intake's table with no
        event behind them) become events once, so the other services receive them too."""
        async def adopt(uow: UnitOfWork) -> int:
            calendar = await self._calendar(uow)
            existing = await list_overrides(uow.conn)  # read in the same transaction as the events
            if calendar.version > 0 or not existing:
                return 0
            for o in existing:
                calendar.set_override(o.day, o.is_working_day, reason=o.reason, by=o.set_by, at=o.set_at)
            return len(existing)

        return await self.transactions(adopt)
