"""approval's use cases: workflows, starting approvals, acting, verifying, deadlines.

Every command runs in one PostgreSQL transaction: load the aggregate, decide, append its
events (and their outbox rows), bring the read tables up to date and (re)schedule its
deadline timers. The adapters it needs come in through the constructor (this layer imports
none of them).

A command that owns its transaction is retried when PostgreSQL aborts it for a deadlock or a
serialization failure: the timer worker fires a deadline in a transaction that locks the timer
row and then appends to the approval, while a reviewer's command appends to the approval and
then cancels that timer, so the two can lock in opposite orders. A retry re-reads and decides
again (a command is a pure decide-and-append); after `command_attempts` tries it raises
`Contended`, which the API answers with 503 and Retry-After.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, AsyncIterator, Awaitable, Callable, Mapping, Protocol, Sequence

import asyncpg

from civicgrid_common.calendar.working_days import CHINA_TZ, WorkingCalendar
from civicgrid_common.events import StoredEvent
from civicgrid_common.eventstore import AggregateNotFound, ConcurrencyConflict, EventStore, Repository
from civicgrid_common.identity.principal import Principal, Role

from approval.domain.approval import (
    ACTED, ACCESS_AFFAIR, CONCLUDED, Approval, ApprovalRuleViolation, RuleKind, Subject, approval_id_for,
    archive_digest,
)
from approval.domain.definition import (
    Action, Definition, InvalidDefinition, Workflow, expand_defaults, parse_definition, unknown_departments,
)
from approval.domain.seals import Signer, signature_valid

Clock = Callable[[], datetime]
DEPARTMENT_SIGNER = "department:"
# What PostgreSQL aborts a transaction with when it lost to a concurrent one: try again.
TRANSIENT = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Keys(Protocol):
    async def signer_for(self, conn: asyncpg.Connection, owner: str, *, kind: str = "person") -> Signer: ...

    async def public_keys(self) -> dict[str, tuple[str, Any]]: ...


class Tables(Protocol):
    async def project(self, conn: asyncpg.Connection, a: Approval, stored: Sequence[StoredEvent]) -> None: ...

    async def archive(self, conn: asyncpg.Connection, approval_id: str) -> tuple[str, dict[str, Any]] | None: ...


class Deadlines(Protocol):
    """Durable timers: a warning and an overdue timer for the current task of an approval."""

    async def reschedule(self, conn: asyncpg.Connection, a: Approval, *, now: datetime, calendar: WorkingCalendar,
                         before: tuple[str, str] | None = None) -> None: ...


class ApprovalNotFound(LookupError):
    pass


class StaleVersion(Exception):
    def __init__(self, expected: int, actual: int) -> None:
        self.expected, self.actual = expected, actual
        super().__init__(f"the approval is at version {actual}, not {expected}: reload it and decide again")


class NotAllowed(Exception):
    """The caller may not do this (403)."""


class Contended(Exception):
    """A command lost to concurrent transactions (deadlock, serialization failure) on every try."""

    def __init__(self, attempts: int, cause: Exception) -> None:
        self.attempts = attempts
        super().__init__(f"the command lost to concurrent changes {attempts} times "
                         f"({type(cause).__name__}); try again in a moment")


@dataclass(frozen=True)
class CaseStart:
    """What approval learned of a case from intake's events, enough to start its approval."""

    case_id: str
    case_number: str | None
    affair_code: str
    jurisdiction: str
    routing: Mapping[str, Any]
    green_channel: bool = False
    # The affair's checklist (material codes) the case was registered with: what a supplement
    # request may ask for. None: not known (a case registered before approval kept it).
    materials: tuple[str, ...] | None = None


class ApprovalService:
    def __init__(self, pool: asyncpg.Pool, store: EventStore, keys: Keys, tables: Tables, *,
                 calendar: Callable[[], Awaitable[WorkingCalendar]], clock: Clock = utc_now,
                 deadlines: Deadlines | None = None, command_attempts: int = 3) -> None:
        if command_attempts < 1:
            raise ValueError("command_attempts is at least 1")
        self.pool = pool
        self.command_attempts = command_attempts
        self.retried = 0  # commands tried again after a deadlock or serialization failure
        self.store = store
        self.keys = keys
        self.tables = tables
        self.calendar = calendar
        self.clock = clock
        self.deadlines = deadlines
        self.approvals: Repository[Approval] = Repository(store, Approval)
        self.workflows: Repository[Workflow] = Repository(store, Workflow)

    @contextlib.asynccontextmanager
    async def _tx(self, conn: asyncpg.Connection | None) -> AsyncIterator[asyncpg.Connection]:
        if conn is not None:
            yield conn
            return
        async with self.pool.acquire() as own, own.transaction():
            yield own

    async def _command(self, conn: asyncpg.Connection | None,
                       run: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        """Run a command in its own transaction (or the caller's), retried on a deadlock or
        serialization failure when the transaction is its own (the caller's is aborted)."""
        if conn is not None:
            return await run(conn)
        for attempt in range(1, self.command_attempts + 1):
            try:
                async with self._tx(None) as tx:
                    return await run(tx)
            except (*TRANSIENT, ConcurrencyConflict) as exc:
                # A first-try conflict is someone else's decision: the caller reloads (409). A
                # conflict on a retry is with the transaction that won the deadlock, which had
                # not committed yet when this one re-read: read again.
                if isinstance(exc, ConcurrencyConflict) and attempt == 1:
                    raise
                if attempt == self.command_attempts:
                    raise Contended(attempt, exc) from exc
                self.retried += 1
                log.warning("command lost to a concurrent transaction (%s), attempt %d of %d: trying again",
                            type(exc).__name__, attempt, self.command_attempts)
                await asyncio.sleep(random.uniform(0, 0.05 * attempt))  # let the winner commit
        raise AssertionError("unreachable")

    def now(self) -> datetime:
        return self.clock().astimezone(CHINA_TZ)

    # ------------------------------------------------------------------ workflows

    async def seed_if_empty(self, definitions: Sequence[Definition]) -> int:
        made = 0
        for d in definitions:
            async with self._tx(None) as conn:
                try:
                    await self.workflows.load(Workflow.stream_for(d.affair_code), conn=conn)
                    continue
                except AggregateNotFound:
                    pass
                w = Workflow(Workflow.stream_for(d.affair_code))
                w.define(d, by="seed", at=self.now().isoformat())
                with contextlib.suppress(ConcurrencyConflict):  # another replica seeded it
                    await self.workflows.save(w, conn=conn)
                    made += 1
        return made

    async def workflow(self, affair_code: str, *, conn: asyncpg.Connection | None = None) -> Workflow:
        try:
            return await self.workflows.load(Workflow.stream_for(affair_code), conn=conn)
        except AggregateNotFound:
            raise ApprovalNotFound(f"no workflow for {affair_code}") from None

    async def workflow_codes(self) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT DISTINCT stream_id FROM events WHERE stream_type = 'workflow' ORDER BY stream_id")
        return [r["stream_id"].removeprefix("workflow:") for r in rows]

    async def define_workflow(self, principal: Principal, affair_code: str, data: Mapping[str, Any]) -> Workflow:
        """A leader or bureau approver of the owning department (or an admin) sets a new version."""
        definition = parse_definition(expand_defaults({**data, "affair_code": affair_code}))
        unknown = unknown_departments(definition, self.store.contracts.departments)
        if unknown:
            raise InvalidDefinition([{"pointer": pointer, "detail": f"{code!r} is no department "
                                      "(contracts/departments.yaml lists them)"} for pointer, code in unknown])
        async with self._tx(None) as conn:
            try:
                w = await self.workflows.load(Workflow.stream_for(affair_code), conn=conn)
            except AggregateNotFound:
                w = Workflow(Workflow.stream_for(affair_code))
            owners = {definition.department} | ({w.current.department} if w.current else set())
            if not principal.has_any(Role.ADMIN):
                if not principal.has_any(Role.LEADER, Role.BUREAU_APPROVER) or principal.department not in owners \
                        or len(owners) > 1 and principal.department != (w.current.department if w.current else None):
                    raise NotAllowed(f"the {affair_code} workflow is changed by the {' / '.join(sorted(owners))} "
                                     "bureau's leaders or approvers, or an admin")
            w.define(definition, by=principal.subject, at=self.now().isoformat())
            await self.workflows.save(w, conn=conn)
        return w

    # ------------------------------------------------------------------ starting

    async def start_for_case(self, conn: asyncpg.Connection, case: CaseStart, *, actor: str) -> Approval | None:
        """Start the case's approval (deterministic id: a second start is a no-op)."""
        approval_id = approval_id_for(case.case_id)
        if await self.store.stream_version(approval_id, conn=conn) > 0:
            return None
        subject = Subject(case.case_id, case.case_number, case.affair_code, case.jurisdiction, case.routing,
                          case.green_channel, materials=case.materials)
        return await self._start(conn, approval_id, subject, actor)

    async def start_access(self, principal: Principal, application_id: str,
                           application: Mapping[str, Any]) -> Approval:
        """A department's access application (准入) starts an approval of the access workflow."""
        if not principal.has_any(Role.DEPARTMENT, Role.BUREAU_APPROVER, Role.LEADER) or \
                principal.department != application["department"] or not principal.jurisdictions:
            raise NotAllowed("a department applies for its own access (department system, approver or leader)")
        approval_id = approval_id_for(f"access:{application_id}")
        async def run(conn: asyncpg.Connection) -> Approval:
            if await self.store.stream_version(approval_id, conn=conn) > 0:
                raise ApprovalRuleViolation(RuleKind.CONFLICT, "already-applied", "this application was submitted")
            subject = Subject(application_id, None, ACCESS_AFFAIR, principal.jurisdictions[0][:6],
                              {"kind": "access"}, application=application)
            return await self._start(conn, approval_id, subject, principal.subject)

        return await self._command(None, run)

    async def _start(self, conn: asyncpg.Connection, approval_id: str, subject: Subject, actor: str) -> Approval:
        w = await self.workflow(subject.affair_code, conn=conn)
        assert w.current is not None
        a = Approval(approval_id)
        now = self.now()
        a.start(subject, w.current, w.current_version, now=now, calendar=await self.calendar(), actor=actor)
        await self._save(conn, a, now)
        return a

    async def _save(self, conn: asyncpg.Connection, a: Approval, now: datetime,
                    before: tuple[str, str] | None = None) -> list[StoredEvent]:
        """Append, update the tables and the deadline timers; `before` is the (task, due date)
        the command found, whose timers go if they no longer apply."""
        stored = await self.approvals.save(a, conn=conn)
        await self.tables.project(conn, a, stored)
        if self.deadlines is not None:
            await self.deadlines.reschedule(conn, a, now=now, calendar=await self.calendar(), before=before)
        return stored

    @staticmethod
    def _deadline_of(a: Approval) -> tuple[str, str] | None:
        return None if a.status is None or a.is_final else (a.task.key, a.due_date)

    # ------------------------------------------------------------------ acting

    async def load(self, approval_id: str, *, conn: asyncpg.Connection | None = None) -> Approval:
        try:
            return await self.approvals.load(approval_id, conn=conn)
        except AggregateNotFound:
            raise ApprovalNotFound(approval_id) from None

    async def act(self, principal: Principal, approval_id: str, action: Action, *, comment: str,
                  expected_version: int | None = None, task: str | None = None, branch: str | None = None,
                  finish: bool = False, new_due_date: date | None = None, materials: Sequence[str] = (),
                  conn: asyncpg.Connection | None = None) -> Approval:
        async def run(tx: asyncpg.Connection) -> Approval:
            a = await self.load(approval_id, conn=tx)
            if expected_version is not None and expected_version != a.version:
                raise StaleVersion(expected_version, a.version)
            if principal.has_any(Role.DEPARTMENT) and principal.department:
                signer = await self.keys.signer_for(tx, DEPARTMENT_SIGNER + principal.department, kind="department")
            else:
                signer = await self.keys.signer_for(tx, principal.subject)
            now = self.now()
            before = self._deadline_of(a)
            a.act(principal, action, comment=comment, signer=signer, now=now, calendar=await self.calendar(),
                  task=task, branch=branch, finish=finish, new_due_date=new_due_date, materials=materials)
            await self._save(tx, a, now, before)
            return a

        return await self._command(conn, run)

    async def _apply(self, conn: asyncpg.Connection, approval_id: str,
                     decide: Callable[[Approval, datetime, WorkingCalendar], bool]) -> bool:
        """Run a system decision (resume, green channel, cancel, a timer) if the approval exists."""
        if await self.store.stream_version(approval_id, conn=conn) == 0:
            return False
        a = await self.load(approval_id, conn=conn)
        now = self.now()
        before = self._deadline_of(a)
        if not decide(a, now, await self.calendar()):
            return False
        await self._save(conn, a, now, before)
        return True

    async def resume(self, conn: asyncpg.Connection, case_id: str, *, actor: str) -> bool:
        return await self._apply(conn, approval_id_for(case_id),
                                 lambda a, now, cal: a.resume(now=now, calendar=cal, actor=actor))

    async def prioritise(self, conn: asyncpg.Connection, case_id: str, reason: str, *, actor: str) -> bool:
        return await self._apply(conn, approval_id_for(case_id), lambda a, now, cal: a.prioritise(reason, now=now, actor=actor))

    async def cancel(self, conn: asyncpg.Connection, case_id: str, reason: str | None, *, actor: str) -> bool:
        return await self._apply(conn, approval_id_for(case_id), lambda a, now, cal: a.cancel(reason, now=now, actor=actor))

    async def deadline_reached(self, conn: asyncpg.Connection, approval_id: str, task: str, kind: str) -> bool:
        """A timer fired: warn or mark overdue, if that task is still the current one."""
        if kind == "warning":
            return await self._apply(conn, approval_id, lambda a, now, cal: a.warn(task, now=now))
        return await self._apply(conn, approval_id, lambda a, now, cal: a.mark_overdue(task, now=now))

    # ------------------------------------------------------------------ verification

    async def verify(self, approval_id: str) -> dict[str, Any]:
        """Every seal (its decision equals the event, the signature, the chain, the key's owner),
        the final seal and archive digest, and the event store's hash chain."""
        events = await self.store.read_stream(approval_id)
        if not events:
            raise ApprovalNotFound(approval_id)
        keys = await self.keys.public_keys()
        checks: list[dict[str, Any]] = []

        def check(name: str, ok: bool, detail: str, **where: Any) -> None:
            checks.append({"check": name, "passed": ok, "detail": detail, **where})

        chain = await self.store.verify_stream(approval_id)
        check("hash_chain", chain.valid,
              f"{chain.checked} stored events re-hashed" if chain.valid else
              "; ".join(f"version {f.version}: {f.reason}" for f in chain.failures))
        previous: str | None = None
        last_seal: dict[str, Any] | None = None
        for e in events:
            if e.type != ACTED:
                continue
            d, s = e.data, e.data["seal"]
            decision = s["decision"]
            signer_ok = decision["signer"] in (d["actor"], DEPARTMENT_SIGNER + str(d.get("actor_department")))
            expected = {"approval_id": approval_id, "step": d["step"], "branch": d["branch"], "action": d["action"],
                        "outcome": d["outcome"], "time": d["acted_at"], "signer": decision["signer"],
                        "key_id": s["key_id"], "previous": previous}
            mismatched = sorted(k for k in expected if decision.get(k) != expected[k])
            if not signer_ok:
                mismatched.append("signer")
            check("seal_matches_event", not mismatched,
                  "the sealed decision is this event's" if not mismatched else
                  f"the sealed decision differs from the event in: {', '.join(mismatched)}",
                  version=e.version, step=d["step"], action=d["action"])
            known = keys.get(s["key_id"])
            if known is None:
                check("seal_signature", False, f"unknown key {s['key_id']}", version=e.version)
            else:
                owner, public = known
                ok = owner == decision["signer"] and signature_valid(public, decision, s["signature"])
                check("seal_signature", ok, "Ed25519 signature valid" if ok else
                      "the signature does not verify with the signer's key", version=e.version, key_id=s["key_id"])
            previous = s["signature"]
            last_seal = s
        concluded = next((e for e in events if e.type == CONCLUDED or e.type.endswith("access.decided.v1")), None)
        if concluded is not None:
            final = concluded.data["final_seal"]
            ok = last_seal is not None and final == {"key_id": last_seal["key_id"], "signature": last_seal["signature"]}
            check("final_seal", ok, "the conclusion carries the last decision's seal" if ok else
                  "the conclusion's seal is not the last decision's", version=concluded.version)
            replayed = Approval.replay(approval_id, events)
            digest = archive_digest(replayed.archive_record())
            async with self.pool.acquire() as conn:
                stored = await self.tables.archive(conn, approval_id)
            ok = concluded.data["archive_digest"] == digest and stored is not None and stored[0] == digest \
                and archive_digest(stored[1]) == digest
            check("archive", ok, "the archive record hashes to the digest the conclusion carries" if ok else
                  "the archive record does not match the digest the conclusion carries")
        return {"approval_id": approval_id, "valid": all(c["passed"] for c in checks), "checks": checks}
