"""Workflow definitions (审批流程): the declarative shape of an affair's approval.

A definition is a sequence of steps. Each step has a level (community, street, bureau,
department), a kind (a review by people, a parallel group of co-departments' opinions, or a
department system's opinion), the roles that may act, the actions allowed, a time limit in
working days and whether the approval may be finished there. Who may act follows from the
level: the community of the case, the street of the case, or the district bureau of the
step's department (a principal of that department). Pure: no I/O.

Definitions are versioned as the events of a `Workflow` aggregate (one stream per affair
code): a change is a new version; an approval keeps the version it started with, because its
`started` event carries the whole definition.

`DefinitionIn` is what PUT /v1/workflows/{affair_code} takes as its typed body (the path names
the affair); `Definition` is the same with its affair code. Both fill a review step's roles
from its level when they are left out (`expand_defaults`), before any other check.
"""
from __future__ import annotations

import enum
from typing import Annotated, Any, Container, Mapping

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError, model_validator

from civicgrid_common.aggregate import Aggregate, applies
from civicgrid_common.identity.principal import Role
from civicgrid_common.problems import Refusal, RuleViolation
from civicgrid_common.validation import Items

WORKFLOW_DEFINED = "civicgrid.approval.workflow.defined.v1"

_ID = r"^[a-z][a-z0-9_]{0,63}$"
_DEPARTMENT = r"^[a-z][a-z0-9_]{1,39}$"
_CODE = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class Level(str, enum.Enum):
    COMMUNITY = "community"  # 社区
    STREET = "street"  # 街道
    BUREAU = "bureau"  # 区级部门 (a district bureau's people)
    DEPARTMENT = "department"  # a department's system (部门业务系统)


class StepKind(str, enum.Enum):
    REVIEW = "review"  # one reviewer decides
    PARALLEL = "parallel"  # co-departments each give an opinion (会签)
    DEPARTMENT_SYSTEM = "department_system"  # a department's system answers on Kafka


class Action(str, enum.Enum):
    APPROVE = "approve"  # 同意, signed and sealed
    ESCALATE = "escalate"  # 报领导: send to a leader
    REQUEST_SUPPLEMENT = "request_supplement"  # 补办: the clock stops
    EXTEND = "extend"  # 延办: reason and a new date
    REFUSE = "refuse"  # 退办: ends it, refused
    SEND_BACK = "send_back"  # 退回上一步


# What a step may allow; a department system only gives opinions (approve / refuse).
ALL_ACTIONS = tuple(Action)
SYSTEM_ACTIONS = (Action.APPROVE, Action.REFUSE)
# Department systems with a task topic and an opinion topic in contracts/ (AsyncAPI).
SYSTEM_DEPARTMENTS = ("civil_affairs", "public_security")
PEOPLE_ROLES = (Role.COMMUNITY_REVIEWER, Role.STREET_REVIEWER, Role.BUREAU_APPROVER, Role.LEADER)


MAX_STEPS = 20
MAX_BRANCHES = 20
# Each role and each action at most once (a repeated one is refused below).
Roles = Annotated[tuple[Role, ...], Items(max=len(Role))]
Actions = Annotated[tuple[Action, ...], Items(max=len(Action))]


class _Model(BaseModel):
    # StrictInt and StrictBool: "1" is no number and "yes" no boolean in a definition.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Branch(_Model):
    """One co-department's opinion in a parallel step."""

    id: str = Field(pattern=_ID)
    department: str = Field(pattern=_DEPARTMENT)
    roles: Roles = (Role.BUREAU_APPROVER, Role.LEADER)


class Step(_Model):
    id: str = Field(pattern=_ID)
    name_zh: str | None = Field(None, max_length=100)
    level: Level
    kind: StepKind = StepKind.REVIEW
    roles: Roles = Field((), description="who may act; a review step without them: its level's reviewers")
    department: str | None = Field(None, pattern=_DEPARTMENT, description="bureau and department steps: whose")
    branches: Annotated[tuple[Branch, ...], Items(max=MAX_BRANCHES)] = ()
    actions: Actions = ALL_ACTIONS
    time_limit_working_days: StrictInt = Field(ge=1, le=365)
    may_finish: StrictBool = False
    max_extensions: StrictInt = Field(1, ge=0, le=5)
    max_extension_working_days: StrictInt | None = Field(
        None, ge=1, le=60, description="how far one extension (延办) may move the due date, in working days; "
        "default: the step's own time limit (an extension at most doubles it)")

    @property
    def extension_limit(self) -> int:
        """The working days one extension may add. Chinese administrative time limits are
        extended by at most the order of the original limit, with the organ head's approval
        (e.g. Administrative Licensing Law art. 42: twenty days, extendable once by ten), so an
        extension adds at most the step's own limit unless the definition says less."""
        return self.max_extension_working_days or self.time_limit_working_days

    @model_validator(mode="after")
    def _consistent(self) -> "Step":
        problems: list[str] = []
        if self.kind is StepKind.REVIEW:
            if not self.roles:
                problems.append("a review step names the roles that may act")
            if any(r not in PEOPLE_ROLES for r in self.roles):
                problems.append("a review step's roles are reviewers, approvers or leaders")
            if self.branches:
                problems.append("only a parallel step has branches")
            if self.level is Level.DEPARTMENT:
                problems.append("a review step is at community, street or bureau level")
            if self.level is Level.BUREAU and not self.department:
                problems.append("a bureau step names its department")
        elif self.kind is StepKind.PARALLEL:
            if len(self.branches) < 1:
                problems.append("a parallel step has at least one branch")
            if len({b.id for b in self.branches}) != len(self.branches):
                problems.append("branch ids are unique within a step")
            if self.level is not Level.BUREAU:
                problems.append("a parallel step of co-departments is at bureau level")
        else:
            if self.level is not Level.DEPARTMENT or not self.department:
                problems.append("a department-system step is at department level and names its department")
            elif self.department not in SYSTEM_DEPARTMENTS:
                problems.append(f"department systems on Kafka: {', '.join(SYSTEM_DEPARTMENTS)}")
            if any(a not in SYSTEM_ACTIONS for a in self.actions):
                problems.append("a department system may only approve or refuse (its opinion)")
        if len(set(self.actions)) != len(self.actions):
            problems.append("actions are listed once each")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class DefinitionIn(_Model):
    """A definition as PUT /v1/workflows/{affair_code} takes it: the path names the affair."""

    affair_code: str | None = Field(None, pattern=_CODE, description="if given, the path's affair code")
    name_zh: str | None = Field(None, max_length=200)
    department: str = Field(pattern=_DEPARTMENT, description="the bureau that owns the flow and may change it")
    steps: Annotated[tuple[Step, ...], Items(min=1, max=MAX_STEPS)]

    @model_validator(mode="before")
    @classmethod
    def _with_defaults(cls, data: Any) -> Any:
        return expand_defaults(data) if isinstance(data, Mapping) else data

    @model_validator(mode="after")
    def _consistent(self) -> "DefinitionIn":
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("step ids are unique")
        if not self.steps[-1].may_finish:
            raise ValueError("the last step may finish the approval (may_finish: true)")
        return self

    def for_affair(self, affair_code: str) -> "Definition":
        """The definition of `affair_code` (the path's); a body naming another affair is refused."""
        if self.affair_code is not None and self.affair_code != affair_code:
            raise InvalidDefinition([{"pointer": "#/affair_code",
                                      "detail": f"the body is for {self.affair_code}, the path for {affair_code}"}])
        return parse_definition({**self.model_dump(), "affair_code": affair_code})


class Definition(DefinitionIn):
    """One affair's workflow definition (one version of it)."""

    # Keeps its place as the first member (pydantic keeps an inherited field's position), so the
    # JSON form in events is as before.
    affair_code: str = Field(pattern=_CODE)

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def to_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class InvalidDefinition(RuleViolation):
    """A definition that does not hold; `errors` are field-by-field (JSON Pointer, detail)."""

    refusal = Refusal.INVALID

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("invalid_definition", "The workflow definition does not hold.", errors=errors)


LEVEL_ROLES = {
    Level.COMMUNITY: (Role.COMMUNITY_REVIEWER,),
    Level.STREET: (Role.STREET_REVIEWER,),
    Level.BUREAU: (Role.BUREAU_APPROVER, Role.LEADER),
}


def expand_defaults(data: Mapping[str, Any]) -> dict[str, Any]:
    """A review step without `roles` takes its level's reviewers (a leader may always act on
    a task escalated to them)."""
    out = dict(data)
    steps = []
    for raw in data.get("steps") or []:
        step = dict(raw) if isinstance(raw, Mapping) else raw
        if isinstance(step, dict) and step.get("kind", "review") == "review" and "roles" not in step:
            try:
                step["roles"] = [r.value for r in LEVEL_ROLES[Level(step.get("level"))]]
            except (ValueError, KeyError):
                pass
        steps.append(step)
    if "steps" in data:
        out["steps"] = steps
    return out


def unknown_departments(definition: Definition, known: Container[str]) -> list[tuple[str, str]]:
    """(JSON pointer, code) of every department the definition names that `known` does not hold."""
    named = [("#/department", definition.department)]
    for i, step in enumerate(definition.steps):
        if step.department:
            named.append((f"#/steps/{i}/department", step.department))
        named += [(f"#/steps/{i}/branches/{j}/department", b.department) for j, b in enumerate(step.branches)]
    return [(pointer, code) for pointer, code in named if code not in known]


def parse_definition(data: Mapping[str, Any]) -> Definition:
    try:
        return Definition.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"pointer": "#" + "".join(f"/{p}" for p in err["loc"]), "detail": err["msg"]}
            for err in exc.errors()
        ]
        raise InvalidDefinition(errors) from None


class Workflow(Aggregate):
    """The versions of one affair's definition; stream id = `workflow:<affair code>`."""

    stream_type = "workflow"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.versions: list[Definition] = []

    @staticmethod
    def stream_for(affair_code: str) -> str:
        return f"workflow:{affair_code}"

    @property
    def current(self) -> Definition | None:
        return self.versions[-1] if self.versions else None

    @property
    def current_version(self) -> int:
        return len(self.versions)

    def define(self, definition: Definition, *, by: str, at: str) -> bool:
        """A new version, unless it equals the current one (then nothing happens)."""
        if self.current is not None and self.current == definition:
            return False
        self._emit(WORKFLOW_DEFINED, {
            "affair_code": definition.affair_code,
            "version": self.current_version + 1,
            "definition": definition.to_data(),
            "defined_at": at,
            "defined_by": by,
        })
        return True

    @applies(WORKFLOW_DEFINED)
    def _workflow_defined(self, d: Mapping[str, Any]) -> None:
        self.versions.append(Definition.model_validate(d["definition"]))
