"""Use cases of complaints and requests (投诉与诉求): file one, route it, respond, answer,
close, record the resident's rating. Each is a thin shell around the Complaint aggregate in a
unit of work: load, decide, and its commit appends the events and updates the read model (the
complaint projector) in ONE transaction, a lost race retried by the service's one policy.

Who may see a complaint is decided here (`may_see`): staff inside its jurisdiction; a
department system only a complaint routed to its department, inside its jurisdiction. One the
caller may not see is answered as no complaint at all (ComplaintNotFound, 404). What a unit may
do to a complaint routed elsewhere is checked here too (`_check_unit`), because every entry
point (staff API, Open311) must obey it. Every department a routing names must exist
(contracts/departments.yaml).

"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable, Callable

from civicgrid_common.contracts import Departments
from civicgrid_common.events import StoredEvent, new_event_id
from civicgrid_common.eventstore import AggregateNotFound
from civicgrid_common.identity.principal import Principal, Role
from civicgrid_common.problems import NotFound, OutsideJurisdiction
from civicgrid_common.unit_of_work import Transactions, UnitOfWork

from civicgrid_intake.domain.applicant import Applicant
from civicgrid_intake.domain.complaint import (
    Category,
    Channel,
    Complaint,
    ComplaintError,
    Location,
    Rating,
    Urgency,
    WorkingDays,
)
from civicgrid_intake.domain.routing import Routing

STREET = "street"  # the `by` of a response given by the street itself


class ComplaintNotFound(NotFound):
    """No such complaint, or none the caller may see (answered alike)."""

    def __init__(self, complaint_id: str) -> None:
        super().__init__("complaint", complaint_id)
        self.complaint_id = complaint_id


def may_see(principal: Principal, complaint: Complaint) -> bool:
    """Staff inside the complaint's jurisdiction; a department system only what was routed to its
    department (the same department code exists in every district: its jurisdiction counts too)."""
    if not principal.may_act_in(complaint.jurisdiction):
        return False
    if principal.roles - {Role.DEPARTMENT}:
        return True
    return complaint.routing is not None and principal.department in complaint.routing.departments()


@dataclass(frozen=True)
class NewComplaint:
    """What a complaint is filed with, by any channel (already parsed to domain values)."""

    category: Category
    channel: Channel
    urgency: Urgency
    jurisdiction: str
    location: Location
    description: str
    anonymous: bool = False
    applicant_id: str | None = None
    open311_service_code: str | None = None
    media_url: str | None = None


def new_complaint_id() -> str:
    # UUIDv7: sorts by filing time (lists order by it within the same second) and is still
    # unguessable enough to show publicly as Open311's service_request_id (74 random bits).
    return f"cp-{new_event_id().hex}"


class ComplaintService:
    def __init__(self, transactions: Transactions, *, calendar: Callable[[], Awaitable[WorkingDays]],
                 clock: Callable[[], datetime], departments: Departments) -> None:
        self.transactions = transactions
        self.departments = departments
        self.calendar = calendar  # loaded per command: an admin's override counts at once
        self.clock = clock

    # ------------------------------------------------------------------ reads

    async def get(self, complaint_id: str, principal: Principal | None = None) -> Complaint:
        """The complaint; with `principal`, only if that caller may see it (None: the system
        itself, e.g. Open311's public view, which shows only what residents published)."""
        try:
            # Replayed from its stream (short: a complaint has at most a dozen events); an id of
            # another kind of stream (a case, an applicant) is no complaint.
            complaint = await self.transactions.load(Complaint, complaint_id)
        except AggregateNotFound:
            raise ComplaintNotFound(complaint_id) from None
        if principal is not None and not may_see(principal, complaint):
            raise ComplaintNotFound(complaint_id)
        return complaint

    async def history(self, complaint_id: str) -> list[StoredEvent]:
        events = await self.transactions.store.read_stream(complaint_id)
        if not events or events[0].stream_type != Complaint.stream_type:
            raise ComplaintNotFound(complaint_id)
        return events

    # ------------------------------------------------------------------ commands

    async def file(self, new: NewComplaint, principal: Principal | None = None) -> Complaint:
        """A complaint comes in, inside the filer's jurisdiction (None: the system itself, e.g.
        Open311's intake, which checks the district); a named one must be an applicant
        registered at the window."""
        if principal is not None and not principal.may_act_in(new.jurisdiction):
            raise OutsideJurisdiction("jurisdiction", f"{new.jurisdiction} is not inside your jurisdiction.",
                                      jurisdiction=new.jurisdiction)
        calendar = await self.calendar()

        async def file(uow: UnitOfWork) -> Complaint:
            if new.applicant_id is not None and await uow.find(Applicant, new.applicant_id) is None:
                raise ComplaintError("complaint.unknown_applicant",
                                     "applicant_id names no registered applicant; register the applicant first")
            return uow.add(Complaint.receive(
                new_complaint_id(),
                category=new.category, channel=new.channel, urgency=new.urgency,
                jurisdiction=new.jurisdiction, location=new.location, description=new.description,
                at=self.clock(), calendar=calendar, anonymous=new.anonymous, applicant_id=new.applicant_id,
                open311_service_code=new.open311_service_code, media_url=new.media_url,
            ))

        return await self.transactions(file)

    async def route(self, complaint_id: str, routing: Routing | None, principal: Principal | None = None) -> Complaint:
        """Route by the given rule, or (None) by the default of the complaint's category."""
        if routing is not None:
            self._check_departments(routing)
        return await self._change(complaint_id, principal, lambda cp, now, _: cp.route(routing, at=now))

    async def respond(self, complaint_id: str, by: str | None, principal: Principal | None = None) -> Complaint:
        """First feedback by `by`: the street or a department routed to (None: the caller's own
        unit, the street for staff, its department for a department system)."""
        def respond(cp: Complaint, now: datetime, _: WorkingDays) -> None:
            unit = feedback_unit(principal, by)
            _check_unit(cp, unit)
            cp.respond(at=now, by=unit)
        return await self._change(complaint_id, principal, respond)

    async def answer(self, complaint_id: str, answer: str, *, resolved: bool, by: str | None,
                     principal: Principal | None = None) -> Complaint:
        def give(cp: Complaint, now: datetime, _: WorkingDays) -> None:
            _check_unit(cp, feedback_unit(principal, by))
            cp.give_answer(answer, resolved=resolved, at=now)
        return await self._change(complaint_id, principal, give)

    async def close(self, complaint_id: str, principal: Principal | None = None) -> Complaint:
        return await self._change(complaint_id, principal, lambda cp, now, _: cp.close(at=now))

    async def rate(self, complaint_id: str, rating: Rating, *, causation_id: str | None = None,
                   principal: Principal | None = None) -> Complaint:
        return await self._change(complaint_id, principal, lambda cp, now, cal: cp.rate(
            rating, at=now, calendar=cal, causation_id=causation_id))

    # ------------------------------------------------------------------ plumbing

    def _check_departments(self, routing: Routing) -> None:
        """Every department the routing names exists; the body member of each unknown one is named."""
        members = [("department", getattr(routing, "department", None)), ("lead", getattr(routing, "lead", None))]
        members += [(f"co_departments/{i}", code) for i, code in enumerate(getattr(routing, "co_departments", ()))]
        unknown = [(member, code) for member, code in members if code is not None and code not in self.departments]
        if unknown:
            raise ComplaintError("complaint.unknown_department",
                                 "no such department: " + ", ".join(code for _, code in unknown),
                                 errors=[{"pointer": "#/" + member, "detail": f"{code!r} is no department "
                                          "(contracts/departments.yaml lists them)"} for member, code in unknown])

    async def _change(self, complaint_id: str, principal: Principal | None,
                      command: Callable[[Complaint, datetime, WorkingDays], Any]) -> Complaint:
        calendar = await self.calendar()

        async def change(uow: UnitOfWork) -> Complaint:
            try:
                complaint = await uow.get(Complaint, complaint_id)
            except AggregateNotFound:
                raise ComplaintNotFound(complaint_id) from None
            if principal is not None and not may_see(principal, complaint):
                raise ComplaintNotFound(complaint_id)
            command(complaint, self.clock(), calendar)
            return complaint

        return await self.transactions(change)


def feedback_unit(principal: Principal | None, asked: str | None) -> str:
    """Who gives the feedback: a department system only for itself; staff (and the system
    itself) for the street or a department."""
    if principal is not None and principal.roles == {Role.DEPARTMENT}:
        if asked not in (None, principal.department):
            raise ComplaintError("complaint.not_own_unit",
                                 f"department {principal.department} answers only for itself", field="by")
        assert principal.department is not None
        return principal.department
    return asked or STREET


def _check_unit(complaint: Complaint, by: str) -> None:
    """Feedback comes from the street (which assists or coordinates under every routing rule)
    or from a department the complaint was routed to."""
    if by == STREET or complaint.routing is None:
        return  # an unrouted complaint is refused by the aggregate itself
    if by not in complaint.routing.departments():
        raise ComplaintError("complaint.unit_not_routed",
                             f"{by!r} is not the street or a department this complaint was routed to")
