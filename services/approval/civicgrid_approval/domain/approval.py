"""The Approval aggregate (审批件): one case's (or one access application's) run through its
workflow definition. Pure: command methods decide and emit, `apply` changes state.

A step is entered (a new *task*: the step id and an entry number, so a task sent back and
entered again is a new task); at the current task an entitled principal acts, with a comment:

- approve (同意): sealed; moves to the next step, or concludes approved at the last step or at a
  step that may finish when the reviewer finishes there. At a parallel step each branch gives
  its opinion; the step completes when every branch has.
- escalate (报领导): the task goes to a leader of the same level; only a leader acts on it then.
- request_supplement (补办): the clock stops until intake reports the supplement (resume).
- extend (延办): a reason and a later due date, at most `max_extensions` times per step.
- refuse (退办): ends it, concluded refused with the comment as the reason.
- send_back (退回): to the previous step, entered again as a new task.

Every move is an `acted` event naming who, when, why, from which step to which, with its seal.
"""
from __future__ import annotations

import enum
import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Mapping, Sequence

import rfc8785

from civicgrid_common.aggregate import Aggregate, applies
from civicgrid_common.calendar.working_days import WorkingCalendar, local_date
from civicgrid_common.identity.principal import Principal, Role
from civicgrid_common.problems import Refusal, RuleViolation

from civicgrid_approval.domain.definition import SYSTEM_DEPARTMENTS, Action, Branch, Definition, Level, Step, StepKind
from civicgrid_approval.domain.seals import Signer, seal

STARTED = "civicgrid.approval.approval.started.v1"
ACTED = "civicgrid.approval.approval.acted.v1"
SUPPLEMENT_REQUESTED = "civicgrid.approval.approval.supplement_requested.v1"
RESUMED = "civicgrid.approval.approval.resumed.v1"
PRIORITISED = "civicgrid.approval.approval.prioritised.v1"
CANCELLED = "civicgrid.approval.approval.cancelled.v1"
DEADLINE_WARNED = "civicgrid.approval.approval.deadline_warned.v1"
OVERDUE = "civicgrid.approval.approval.overdue.v1"
CONCLUDED = "civicgrid.approval.approval.concluded.v1"
ACCESS_DECIDED = "civicgrid.approval.access.decided.v1"
ACCESS_AFFAIR = "access.application"


_APPROVAL_NS = uuid.UUID("6f1c2a4e-8b7d-5e3f-9a10-4c2b7d8e9f01")

OUTCOMES = {
    Action.APPROVE: "approved",
    Action.REFUSE: "refused",
    Action.ESCALATE: "escalated",
    Action.REQUEST_SUPPLEMENT: "supplement_requested",
    Action.EXTEND: "extended",
    Action.SEND_BACK: "sent_back",
}


def approval_id_for(source_id: str) -> str:
    """Deterministic: a redelivered routed event cannot start a second approval."""
    return str(uuid.uuid5(_APPROVAL_NS, source_id))


def department_task_type(department: str) -> str:
    return f"civicgrid.approval.{department}_task.issued.v1"


class Status(str, enum.Enum):
    RUNNING = "running"
    SUSPENDED = "suspended"  # waiting for the applicant's supplement: the clock stands still
    APPROVED = "approved"
    REFUSED = "refused"
    CANCELLED = "cancelled"  # the case was withdrawn


FINAL = (Status.APPROVED, Status.REFUSED, Status.CANCELLED)


class RuleKind(str, enum.Enum):
    FORBIDDEN = "forbidden"  # role or jurisdiction: 403
    CONFLICT = "conflict"  # the state does not allow it now: 409
    INVALID = "invalid"  # the input is wrong: 422


_REFUSAL = {RuleKind.FORBIDDEN: Refusal.FORBIDDEN, RuleKind.CONFLICT: Refusal.CONFLICT, RuleKind.INVALID: Refusal.INVALID}
# Decided on a task that is no longer the current one: the reviewer reloads (stale-version).
_STALE = frozenset({"task-not-current"})


class ApprovalRuleViolation(RuleViolation):
    def __init__(self, kind: RuleKind, code: str, message: str, field: str | None = None) -> None:
        self.kind = kind
        super().__init__(code, message, refusal=Refusal.STALE if code in _STALE else _REFUSAL[kind], field=field)


@dataclass(frozen=True)
class Subject:
    """What an approval is about: a case from intake, or an access application."""

    case_id: str
    case_number: str | None
    affair_code: str
    jurisdiction: str  # the street (9 digits) or community (12 digits); district (6) for access
    routing: Mapping[str, Any]
    green_channel: bool = False
    # An access application (准入) instead of a case: its content, published when decided.
    application: Mapping[str, Any] | None = None
    # The case's checklist: the material codes a supplement request may name (None: unknown).
    materials: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Task:
    step: str
    entry: int  # the how-many-th step entry of this approval: the task's identity

    @property
    def key(self) -> str:
        return f"{self.step}.{self.entry}"


class Approval(Aggregate):
    stream_type = "approval"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.status: Status | None = None
        self.case_id = ""
        self.case_number: str | None = None
        self.affair_code = ""
        self.workflow_version = 0
        self.definition: Definition | None = None
        self.path: list[str] = []
        self.jurisdiction = ""
        self.routing: dict[str, Any] = {}
        self.green_channel = False
        self.started_at = ""
        self.index = 0
        self.entry = 0
        self.entered_at = ""
        self.clock_started_at = ""  # when the current task's clock (re)started: entered or resumed
        self.due_date: str = ""
        self.remaining_working_days: int | None = None
        self.escalated = False
        self.opinions: dict[str, str] = {}
        self.extensions: dict[str, int] = {}
        self.warned = False
        self.overdue = False
        self.last_signature: str | None = None
        self.moves: list[dict[str, Any]] = []
        self.started: dict[str, Any] = {}
        self.concluded: dict[str, Any] | None = None
        self.application: dict[str, Any] | None = None
        self.materials: tuple[str, ...] | None = None

    # ------------------------------------------------------------------ queries

    @property
    def step(self) -> Step:
        assert self.definition is not None
        return self.definition.step(self.path[self.index])

    @property
    def task(self) -> Task:
        return Task(self.path[self.index], self.entry)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    def community(self) -> str | None:
        return self.jurisdiction if len(self.jurisdiction) >= 12 else None

    def street(self) -> str:
        return self.jurisdiction[:9]

    def district(self) -> str:
        return self.jurisdiction[:6]

    def departments(self) -> set[str]:
        """Every department its flow names (steps and branches), and an access application's own."""
        assert self.definition is not None
        found = {s.department for s in self.definition.steps if s.department}
        found |= {b.department for s in self.definition.steps for b in s.branches}
        if self.application is not None:
            found.add(self.application["department"])
        return found

    def may_be_seen_by(self, principal: Principal) -> bool:
        """Inside the principal's jurisdiction; a department system only an approval whose flow
        names its department (a department's code is the same in every district)."""
        if not principal.may_act_in(self.jurisdiction):
            return False
        if principal.roles - {Role.DEPARTMENT}:
            return True
        return principal.department is not None and principal.department in self.departments()

    def pending_branches(self) -> list[str]:
        return [b.id for b in self.step.branches if b.id not in self.opinions]

    def refusal(self, principal: Principal, branch: str | None = None) -> ApprovalRuleViolation | None:
        """Why `principal` may not act on the current task (None: they may)."""
        step = self.step
        if step.kind is StepKind.PARALLEL and branch is None:
            # A move on the whole step (extend, supplement, escalate, send back): any branch's people.
            verdicts = [self.refusal(principal, b.id) for b in step.branches]
            return None if any(v is None for v in verdicts) else verdicts[0]
        if step.kind is StepKind.PARALLEL:
            try:
                chosen = _branch(step, branch)
            except KeyError:
                return ApprovalRuleViolation(RuleKind.INVALID, "unknown-branch",
                                             f"step {step.id} has the branches {[b.id for b in step.branches]}", "branch")
            roles, department = chosen.roles, chosen.department
        else:
            roles, department = step.roles, step.department
        if step.kind is StepKind.DEPARTMENT_SYSTEM:
            if not principal.has_any(Role.DEPARTMENT) or principal.department != department:
                return ApprovalRuleViolation(RuleKind.FORBIDDEN, "not-entitled",
                                             f"step {step.id} is answered by the {department} system")
            return None
        if self.escalated:
            roles = (Role.LEADER,)
        if not principal.has_any(*roles):
            return ApprovalRuleViolation(RuleKind.FORBIDDEN, "not-entitled",
                                         f"step {step.id} is acted on by: {', '.join(r.value for r in roles)}")
        scope = {Level.COMMUNITY: self.community() or self.street(), Level.STREET: self.street()}.get(
            step.level, self.district())
        if not principal.may_act_in(scope):
            return ApprovalRuleViolation(RuleKind.FORBIDDEN, "outside-jurisdiction",
                                         f"step {step.id} belongs to {scope}, outside your jurisdiction")
        if step.level is Level.BUREAU and principal.department != department:
            return ApprovalRuleViolation(RuleKind.FORBIDDEN, "other-department",
                                         f"step {step.id} belongs to the {department} bureau")
        return None

    # ------------------------------------------------------------------ commands

    def start(self, subject: Subject, definition: Definition, workflow_version: int, *, now: datetime,
              calendar: WorkingCalendar, actor: str) -> None:
        if self.status is not None:
            raise ApprovalRuleViolation(RuleKind.CONFLICT, "already-started", f"approval {self.id} has started")
        path = [s.id for s in definition.steps
                if not (s.level is Level.COMMUNITY and len(subject.jurisdiction) < 12)]
        if not path:
            path = [s.id for s in definition.steps]
        first = definition.step(path[0])
        access = {} if subject.application is None else {"subject_kind": "access",
                                                         "application": dict(subject.application)}
        checklist = {} if subject.materials is None else {"materials": list(subject.materials)}
        self._emit(STARTED, {**access, **checklist,
            "case_id": subject.case_id,
            "case_number": subject.case_number,
            "affair_code": subject.affair_code,
            "workflow_version": workflow_version,
            "definition": definition.to_data(),
            "path": path,
            "jurisdiction": subject.jurisdiction,
            "routing": dict(subject.routing),
            "green_channel": subject.green_channel,
            "started_at": _iso(now),
            "started_by": actor,
            "step": first.id,
            "step_due_date": calendar.add_working_days(now, first.time_limit_working_days).isoformat(),
        })
        self._issue_department_task(now)

    def act(self, principal: Principal, action: Action, *, comment: str, signer: Signer, now: datetime,
            calendar: WorkingCalendar, task: str | None = None, branch: str | None = None, finish: bool = False,
            new_due_date: date | None = None, materials: Sequence[str] = ()) -> None:
        self._require_open()
        if self.status is Status.SUSPENDED:
            raise ApprovalRuleViolation(RuleKind.CONFLICT, "waiting-for-supplement",
                                        "the approval waits for the applicant's supplement")
        if task is not None and task != self.task.key:
            raise ApprovalRuleViolation(RuleKind.CONFLICT, "task-not-current",
                                        f"task {task} is no longer current; the current task is {self.task.key}", "task")
        step = self.step
        if action not in step.actions:
            raise ApprovalRuleViolation(RuleKind.CONFLICT, "action-not-allowed",
                                        f"step {step.id} allows {', '.join(a.value for a in step.actions)}", "action")
        if not comment or not comment.strip():
            raise ApprovalRuleViolation(RuleKind.INVALID, "comment-required", "every move needs a comment", "comment")
        if step.kind is not StepKind.PARALLEL and branch is not None:
            raise ApprovalRuleViolation(RuleKind.INVALID, "no-branches", f"step {step.id} has no branches", "branch")
        if step.kind is StepKind.PARALLEL and action in (Action.APPROVE, Action.REFUSE) and branch is None:
            raise ApprovalRuleViolation(RuleKind.INVALID, "branch-required",
                                        "at a parallel step each branch gives its opinion: name the branch", "branch")
        refused = self.refusal(principal, branch)
        if refused is not None:
            raise refused
        if branch is not None and branch in self.opinions and action in (Action.APPROVE, Action.REFUSE):
            raise ApprovalRuleViolation(RuleKind.CONFLICT, "opinion-given", f"branch {branch} has given its opinion")

        if action is Action.REQUEST_SUPPLEMENT and self.materials is not None:
            unknown = [m for m in materials if m not in self.materials]
            if unknown:
                raise ApprovalRuleViolation(RuleKind.INVALID, "unknown-material",
                                            f"not in the case's checklist ({', '.join(self.materials)}): "
                                            f"{', '.join(unknown)}", "materials")
        to_step, conclude, extra = self._decide(action, step, branch, finish, new_due_date, now, calendar)
        move = self._move(principal, action, step, branch, comment, to_step, now, signer, extra)
        if action is Action.REQUEST_SUPPLEMENT:
            self._emit(SUPPLEMENT_REQUESTED, {
                "case_id": self.case_id, "step": step.id, "materials": list(dict.fromkeys(materials)),
                "comment": comment, "requested_at": move["acted_at"], "requested_by": principal.subject,
            })
        if conclude is not None:
            self._conclude(conclude, comment, move)
        elif to_step is not None and to_step != step.id:
            self._issue_department_task(now)

    def _decide(self, action: Action, step: Step, branch: str | None, finish: bool, new_due_date: date | None,
                now: datetime, calendar: WorkingCalendar) -> tuple[str | None, Status | None, dict[str, Any]]:
        """Where the move goes: (to step, conclusion or None, extra fields of the event)."""
        last = self.index == len(self.path) - 1
        nxt = None if last else self.path[self.index + 1]
        extra: dict[str, Any] = {}
        if finish and (action is not Action.APPROVE or not step.may_finish):
            raise ApprovalRuleViolation(RuleKind.CONFLICT, "may-not-finish",
                                        f"step {step.id} cannot finish the approval", "finish")
        if action is Action.APPROVE or (action is Action.REFUSE and step.kind is StepKind.PARALLEL):
            if step.kind is StepKind.PARALLEL:
                opinions = {**self.opinions, branch: OUTCOMES[action]}
                if any(b.id not in opinions for b in step.branches):
                    return step.id, None, extra
                if last:
                    agreed = all(v == "approved" for v in opinions.values())
                    return None, Status.APPROVED if agreed else Status.REFUSED, extra
            if last or finish:
                return None, Status.APPROVED, extra
            return nxt, None, self._entering(nxt, now, calendar)
        if action is Action.REFUSE:
            return None, Status.REFUSED, extra
        if action is Action.ESCALATE:
            if self.escalated:
                raise ApprovalRuleViolation(RuleKind.CONFLICT, "already-escalated", "the task is with a leader already")
            return step.id, None, extra
        if action is Action.REQUEST_SUPPLEMENT:
            today = local_date(now)
            extra["remaining_working_days"] = max(1, calendar.working_days_between(today, date.fromisoformat(self.due_date)))
            return step.id, None, extra
        if action is Action.EXTEND:
            if new_due_date is None:
                raise ApprovalRuleViolation(RuleKind.INVALID, "new-due-date-required", "an extension names the new date",
                                            "new_due_date")
            due = date.fromisoformat(self.due_date)
            if new_due_date <= due:
                raise ApprovalRuleViolation(RuleKind.INVALID, "new-due-date-not-later",
                                            f"the new date must be after {self.due_date}", "new_due_date")
            latest = calendar.nth_working_day_after(due, step.extension_limit)
            if new_due_date > latest:
                raise ApprovalRuleViolation(
                    RuleKind.INVALID, "extension-too-long",
                    f"an extension of step {step.id} adds at most {step.extension_limit} working day(s): "
                    f"the new date is at the latest {latest.isoformat()}", "new_due_date")
            if self.extensions.get(step.id, 0) >= step.max_extensions:
                raise ApprovalRuleViolation(RuleKind.CONFLICT, "extensions-used",
                                            f"step {step.id} may be extended {step.max_extensions} time(s)")
            extra["step_due_date"] = new_due_date.isoformat()
            return step.id, None, extra
        # send back
        if self.index == 0:
            raise ApprovalRuleViolation(RuleKind.CONFLICT, "first-step", "the first step has no previous step")
        previous = self.path[self.index - 1]
        return previous, None, self._entering(previous, now, calendar)

    def _entering(self, step_id: str, now: datetime, calendar: WorkingCalendar) -> dict[str, Any]:
        assert self.definition is not None
        limit = self.definition.step(step_id).time_limit_working_days
        return {"step_due_date": calendar.add_working_days(now, limit).isoformat()}

    def _move(self, principal: Principal, action: Action, step: Step, branch: str | None, comment: str,
              to_step: str | None, now: datetime, signer: Signer, extra: Mapping[str, Any]) -> dict[str, Any]:
        acted_at = _iso(now)
        outcome = OUTCOMES[action]
        data = {
            "case_id": self.case_id,
            "task": self.task.key,
            "step": step.id,
            "branch": branch,
            "action": action.value,
            "outcome": outcome,
            "from_step": step.id,
            "to_step": to_step,
            "actor": principal.subject,
            "actor_name": principal.name,
            "actor_roles": sorted(r.value for r in principal.roles),
            "actor_department": principal.department,
            "comment": comment,
            "acted_at": acted_at,
            "seal": seal(signer, approval_id=self.id, step=step.id, branch=branch, action=action.value,
                         outcome=outcome, time=acted_at, previous=self.last_signature),
            **extra,
        }
        self._emit(ACTED, data)
        return data

    def _conclude(self, outcome: Status, comment: str, move: Mapping[str, Any]) -> None:
        reason = None if outcome is Status.APPROVED else comment
        archive = self.archive_record(outcome=outcome.value, reason=reason)
        final_seal = {"key_id": move["seal"]["key_id"], "signature": move["seal"]["signature"]}
        if self.application is not None:
            self._emit(ACCESS_DECIDED, {
                "application_id": self.case_id, "outcome": outcome.value, "reason": reason,
                "application": self.application, "decided_at": move["acted_at"], "decided_by": move["actor"],
                "final_seal": final_seal, "archive_digest": archive_digest(archive),
            })
            return
        self._emit(CONCLUDED, {
            "case_id": self.case_id,
            "case_number": self.case_number,
            "affair_code": self.affair_code,
            "outcome": outcome.value,
            "reason": None if outcome is Status.APPROVED else comment,
            "decided_at": move["acted_at"],
            "decided_by": move["actor"],
            "final_seal": final_seal,
            "archive_digest": archive_digest(archive),
        })

    def _issue_department_task(self, now: datetime) -> None:
        step = self.step
        if step.kind is not StepKind.DEPARTMENT_SYSTEM or self.is_final:
            return
        assert step.department is not None
        self._emit(department_task_type(step.department), {
            "approval_id": self.id,
            "task": self.task.key,
            "case_id": self.case_id,
            "case_number": self.case_number,
            "affair_code": self.affair_code,
            "step": step.id,
            "department": step.department,
            "jurisdiction": self.jurisdiction,
            "due_date": self.due_date,
            "issued_at": _iso(now),
        })

    def resume(self, *, now: datetime, calendar: WorkingCalendar, actor: str) -> bool:
        """Intake reported the supplement: the clock runs again with the days that were left."""
        if self.status is not Status.SUSPENDED:
            return False
        days = self.remaining_working_days or 1
        self._emit(RESUMED, {
            "case_id": self.case_id, "step": self.step.id, "task": self.task.key, "resumed_at": _iso(now),
            "resumed_by": actor, "step_due_date": calendar.add_working_days(now, days).isoformat(),
        })
        return True

    def prioritise(self, reason: str, *, now: datetime, actor: str) -> bool:
        if self.green_channel or self.is_final:
            return False
        self._emit(PRIORITISED, {"case_id": self.case_id, "reason": reason, "prioritised_at": _iso(now), "actor": actor})
        return True

    def cancel(self, reason: str | None, *, now: datetime, actor: str) -> bool:
        if self.status is None or self.is_final:
            return False
        self._emit(CANCELLED, {"case_id": self.case_id, "reason": reason, "cancelled_at": _iso(now), "actor": actor})
        return True

    def warn(self, task: str, *, now: datetime) -> bool:
        """The warning timer of `task` fired: only an open, running, current task is warned, once."""
        return self._deadline(DEADLINE_WARNED, "warned_at", self.warned, task, now)

    def mark_overdue(self, task: str, *, now: datetime) -> bool:
        return self._deadline(OVERDUE, "overdue_at", self.overdue, task, now)

    def _deadline(self, type: str, at: str, done: bool, task: str, now: datetime) -> bool:
        if self.status is not Status.RUNNING or task != self.task.key or done:
            return False
        self._emit(type, {"case_id": self.case_id, "task": task, "step": self.step.id, "due_date": self.due_date,
                          at: _iso(now)})
        return True

    def _require_open(self) -> None:
        if self.status is None:
            raise ApprovalRuleViolation(RuleKind.CONFLICT, "not-started", "the approval has not started")
        if self.is_final:
            raise ApprovalRuleViolation(RuleKind.CONFLICT, "concluded", f"the approval is {self.status.value}")

    # ------------------------------------------------------------------ archive

    def archive_record(self, *, outcome: str | None = None, reason: str | None = None) -> dict[str, Any]:
        """Everything from routing to the final decision: who, when, why, where, seals."""
        concluded = self.concluded or {}
        return {
            "approval_id": self.id,
            "case_id": self.case_id,
            "case_number": self.case_number,
            "affair_code": self.affair_code,
            "workflow_version": self.workflow_version,
            "jurisdiction": self.jurisdiction,
            "routing": self.routing,
            "started_at": self.started.get("started_at"),
            "green_channel": self.green_channel,
            "moves": [dict(m) for m in self.moves],
            "outcome": outcome or concluded.get("outcome"),
            "reason": reason if outcome else concluded.get("reason"),
            **({"application": self.application} if self.application is not None else {}),
        }

    # ------------------------------------------------------------------ state

    @applies(STARTED)
    def _started(self, d: Mapping[str, Any]) -> None:
        self.status = Status.RUNNING
        self.started = dict(d)
        self.case_id = d["case_id"]
        self.case_number = d["case_number"]
        self.affair_code = d["affair_code"]
        self.workflow_version = d["workflow_version"]
        self.definition = Definition.model_validate(d["definition"])
        self.path = list(d["path"])
        self.jurisdiction = d["jurisdiction"]
        self.routing = dict(d["routing"])
        self.green_channel = d["green_channel"]
        self.started_at = d["started_at"]
        self.application = dict(d["application"]) if "application" in d else None
        self.materials = tuple(d["materials"]) if "materials" in d else None
        self._enter(0, d["started_at"], d["step_due_date"])

    @applies(ACTED)
    def _acted(self, d: Mapping[str, Any]) -> None:
        self.moves.append(dict(d))
        self.last_signature = d["seal"]["signature"]
        action = Action(d["action"])
        if d["branch"] is not None and action in (Action.APPROVE, Action.REFUSE):
            self.opinions[d["branch"]] = d["outcome"]
        if action is Action.ESCALATE:
            self.escalated = True
        elif action is Action.EXTEND:
            self.extensions[d["step"]] = self.extensions.get(d["step"], 0) + 1
            self.due_date = d["step_due_date"]
            self.warned = self.overdue = False
        elif action is Action.REQUEST_SUPPLEMENT:
            self.status = Status.SUSPENDED
            self.remaining_working_days = d["remaining_working_days"]
        elif d["to_step"] is not None and d["to_step"] != d["step"]:
            self._enter(self.path.index(d["to_step"]), d["acted_at"], d["step_due_date"])

    @applies(RESUMED)
    def _resumed(self, d: Mapping[str, Any]) -> None:
        self.status = Status.RUNNING
        self.remaining_working_days = None
        self.due_date = d["step_due_date"]
        self.clock_started_at = d["resumed_at"]
        self.warned = self.overdue = False

    @applies(PRIORITISED)
    def _prioritised(self, _: Mapping[str, Any]) -> None:
        self.green_channel = True

    @applies(CANCELLED)
    def _cancelled(self, _: Mapping[str, Any]) -> None:
        self.status = Status.CANCELLED

    @applies(DEADLINE_WARNED)
    def _deadline_warned(self, _: Mapping[str, Any]) -> None:
        self.warned = True

    @applies(OVERDUE)
    def _overdue(self, _: Mapping[str, Any]) -> None:
        self.overdue = True

    @applies(CONCLUDED, ACCESS_DECIDED)
    def _concluded(self, d: Mapping[str, Any]) -> None:
        self.status = Status(d["outcome"])
        self.concluded = dict(d)

    # Facts for others (intake's window, the department systems): they change nothing here.
    @applies(SUPPLEMENT_REQUESTED, *(department_task_type(d) for d in SYSTEM_DEPARTMENTS))
    def _told_others(self, _: Mapping[str, Any]) -> None:
        pass

    def _enter(self, index: int, at: str, due: str) -> None:
        self.index = index
        self.entry += 1
        self.entered_at = at
        self.clock_started_at = at
        self.due_date = due
        self.escalated = False
        self.opinions = {}
        self.warned = self.overdue = False


def _branch(step: Step, branch: str | None) -> Branch:
    for b in step.branches:
        if b.id == branch:
            return b
    raise KeyError(branch)


def _iso(t: datetime) -> str:
    if t.tzinfo is None:
        raise ValueError("times are timezone-aware")
    return t.isoformat()


def archive_digest(archive: Mapping[str, Any]) -> str:
    return hashlib.sha256(rfc8785.dumps(dict(archive))).hexdigest()
