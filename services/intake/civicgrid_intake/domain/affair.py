"""An affair (事项): one kind of matter a resident or enterprise can apply for at the window.

E.g. `civil.minimum_living_allowance` (最低生活保障). Its catalogue entry says who is
responsible, at which level it is decided, which materials the applicant hands in, the
statutory time limit in working days (办理时限), who may apply (eligibility.py's rule), where
the case goes once accepted (routing.py's three rules, plus the approval workflow it runs
through), the fee, and the Open311 service it appears as in the GeoReport services list.

`Affair` is a frozen pydantic model, and every rule of an entry is a constraint or validator
on it, so the admin API takes it as its typed body (OpenAPI documents it, and a refusal is
pydantic's field-by-field ValidationError: one entry per member at fault, located as in the
JSON). `affair_to_data` is its JSON form, in events, the seed file and the admin API alike; it
is the same, byte for byte, as before the model was pydantic (stored events replay).

**Judged on commands, not on replay.** `Affair.model_validate` (a command: an admin's change, the
seed) checks every rule. `affair_from_stored` (replaying a stored event or loading a snapshot)
checks none: it builds the model with `model_construct`, converting only what the model holds
as other types than JSON does (enums, tuples, the rule and the routing objects). A stored event
is a fact; tightening a rule later must not make history unreadable. (A validation context
would not do: pydantic's field constraints, which OpenAPI shows, hold whatever the context.)
"""
from __future__ import annotations

import enum
import re
from typing import Annotated, Any, Literal, Mapping, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from civicgrid_common.validation import Items, TagAtMember

from civicgrid_intake.domain.eligibility import EligibilityRule, Level, rule_from_stored
from civicgrid_intake.domain.routing import (
    DepartmentHandles,
    InvalidRouting,
    LeadWithCoDepartments,
    Routing,
    StreetHandles,
    routing_from_data,
    routing_to_data,
)

_AFFAIR_CODE = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
_WORKFLOW_CODE = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$"
# The shape routing.py accepts, so a responsible department can also be routed to.
_DEPARTMENT = r"^[a-z][a-z0-9_]{1,39}$"
_MATERIAL_CODE = r"^[a-z][a-z0-9_]{1,39}$"
_SERVICE_CODE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_CJK = re.compile(r"[\u3400-\u9fff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

MAX_TIME_LIMIT_WORKING_DAYS = 365
MAX_COPIES = 20
MAX_FEE_FEN = 100_000_000
MAX_MATERIALS = 50
MAX_KEYWORDS = 20
MAX_CO_DEPARTMENTS = 20


# ---------------------------------------------------------------------------- texts and codes


def _plain(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("text_empty", "must not be empty")
    if value != value.strip():
        raise PydanticCustomError("text_padded", "must not start or end with spaces")
    if _CONTROL.search(value):
        raise PydanticCustomError("text_control", "must not contain control characters")
    return value


def _in_chinese(value: str) -> str:
    if not _CJK.search(value):
        raise PydanticCustomError("not_chinese", "must be written in Chinese (zh-CN)")
    return value


def _no_comma(value: str) -> str:
    if "," in value:
        # GeoReport lists keywords comma-separated: a comma would split one in two.
        raise PydanticCustomError("keyword_comma", "must not contain a comma")
    return value


def _text(max_length: int) -> Any:
    """Text of 1 to `max_length` characters, not padded with spaces, without control characters."""
    return Annotated[str, Field(min_length=1, max_length=max_length), AfterValidator(_plain)]


ChineseName = Annotated[_text(80), AfterValidator(_in_chinese)]
DepartmentCode = Annotated[str, Field(pattern=_DEPARTMENT, description="a department of contracts/departments.yaml")]
Keyword = Annotated[_text(50), AfterValidator(_no_comma)]


class _Model(BaseModel):
    # Strict where JSON is ambiguous: StrictInt and StrictBool below ("1" is no number, "yes" no
    # boolean); enums and tuples take their JSON form (FastAPI validates in Python mode).
    model_config = ConfigDict(extra="forbid", frozen=True)


def _refusal(message: str, *at: tuple[tuple[str | int, ...], Any]) -> ValidationError:
    """A rule across members, located at each member at fault (`(loc, value)` pairs; pydantic
    prefixes the outer path): a routing that contradicts the responsible department names both,
    since either may be the one to change."""
    return ValidationError.from_exception_data("Affair", [
        {"type": PydanticCustomError("affair_rule", message), "loc": loc, "input": value} for loc, value in at])


# ---------------------------------------------------------------------------- value types


class MaterialForm(str, enum.Enum):
    ORIGINAL = "original"  # 原件 (shown, checked and handed back, or kept)
    COPY = "copy"  # 复印件
    ORIGINAL_AND_COPY = "original_and_copy"  # 原件及复印件: original checked, copy kept


class Open311Type(str, enum.Enum):
    """GeoReport v2 service types."""

    REALTIME = "realtime"
    BATCH = "batch"
    BLACKBOX = "blackbox"


class Material(_Model):
    """One item of the materials list (申请材料)."""

    code: str = Field(pattern=_MATERIAL_CODE, description="lower case letters, digits and _")
    name_zh: ChineseName
    name_en: _text(200)
    form: MaterialForm
    copies: StrictInt = Field(1, ge=1, le=MAX_COPIES)
    # False for materials needed only in some situations ("if applicable"): the window's
    # once-and-complete "what is missing" answer lists only required ones as missing.
    required: StrictBool = Field(True, description="false: only if applicable, never counted as missing")


class Open311Service(_Model):
    """How the affair appears in the GeoReport v2 services list."""

    service_code: str = Field(pattern=_SERVICE_CODE, description="letters, digits, '_', '.', '-' (at most 64)")
    service_name: _text(100)
    description: _text(1000)
    type: Open311Type
    keywords: Annotated[tuple[Keyword, ...], Items(max=MAX_KEYWORDS)]
    group: _text(100)


# ---------------------------------------------------------------------------- routing
#
# routing.py's dataclasses are what an affair holds (cases and complaints share them, and
# routing.py keeps its own rules); these models are only their JSON shape, for OpenAPI and for
# bounds routing.py does not check (types, lengths).


class StreetRouting(_Model):
    """Rule 1: the street's acceptance centre handles the matter itself."""

    kind: Literal["street"]


class DepartmentRouting(_Model):
    """Rule 2: one district department handles it; the street assists."""

    kind: Literal["department"]
    department: DepartmentCode


class LeadRouting(_Model):
    """Rule 3: a lead department with co-departments; the street coordinates."""

    kind: Literal["lead"]
    lead: DepartmentCode
    co_departments: Annotated[tuple[DepartmentCode, ...], Items(min=1, max=MAX_CO_DEPARTMENTS)]


_RoutingShape = Annotated[Union[StreetRouting, DepartmentRouting, LeadRouting],
                          Field(discriminator="kind"), TagAtMember("kind")]
_ROUTING_SHAPE: TypeAdapter[Any] = TypeAdapter(_RoutingShape)


def _routing(value: Any) -> Routing:
    # Built in code or read from JSON, a routing passes the same checks.
    if isinstance(value, (StreetHandles, DepartmentHandles, LeadWithCoDepartments)):
        value = routing_to_data(value)
    shape = _ROUTING_SHAPE.validate_python(value)
    try:
        return routing_from_data(shape.model_dump())
    except InvalidRouting as e:
        raise PydanticCustomError("invalid_routing", str(e)) from None


RoutingField = Annotated[Routing, PlainValidator(_routing, json_schema_input_type=_RoutingShape),
                         PlainSerializer(routing_to_data)]


# ---------------------------------------------------------------------------- the affair


class Affair(_Model):
    """One catalogue entry's content (one version of it)."""

    code: str = Field(max_length=64, pattern=_AFFAIR_CODE,  # cases' event schemas allow 64 characters
                      description="a dotted lower-case code, e.g. civil.minimum_living_allowance")
    name_zh: ChineseName
    name_en: _text(120)
    department: DepartmentCode = Field(description="the responsible department")
    level: Level = Field(description="where it is decided: the community, the street or a district bureau")
    materials: Annotated[tuple[Material, ...], Items(min=1, max=MAX_MATERIALS)]
    time_limit_working_days: StrictInt = Field(ge=1, le=MAX_TIME_LIMIT_WORKING_DAYS,
                                               description="statutory time limit (法定/承诺办理时限)")
    eligibility: EligibilityRule
    routing: RoutingField
    # The approval workflow (in the approval service) a case of this affair runs through,
    # e.g. community → street → bureau for the minimum living allowance; None when the
    # matter is settled without one.
    approval_workflow: str | None = Field(max_length=64, pattern=_WORKFLOW_CODE,
                                          description="the approval service's workflow, null if none")
    fee_fen: StrictInt = Field(ge=0, le=MAX_FEE_FEN, description="the fee in fen (分, 1/100 yuan); most are free")
    open311: Open311Service
    # Where the time limit and materials come from, and what could not be confirmed.
    source_note: str = Field("", max_length=1000)

    def required_materials(self) -> tuple[Material, ...]:
        return tuple(m for m in self.materials if m.required)

    @field_validator("materials")
    @classmethod
    def _materials_hold(cls, materials: tuple[Material, ...]) -> tuple[Material, ...]:
        seen: set[str] = set()
        for i, m in enumerate(materials):
            if m.code in seen:
                raise _refusal(f"material {m.code!r} is listed twice", ((i, "code"), m.code))
            seen.add(m.code)
        if not any(m.required for m in materials):
            raise PydanticCustomError("affair_rule", "at least one material must be required")
        return materials

    @model_validator(mode="after")
    def _routed_to_the_responsible_department(self) -> Affair:
        routing = self.routing
        if isinstance(routing, StreetHandles) and self.level is Level.DISTRICT:
            raise _refusal("a district-level affair cannot be handled by the street alone",
                           (("level",), self.level.value), (("routing", "kind"), routing.kind))
        if isinstance(routing, DepartmentHandles) and routing.department != self.department:
            raise _refusal(f"routed to {routing.department} but the responsible department is {self.department}",
                           (("department",), self.department), (("routing", "department"), routing.department))
        if isinstance(routing, LeadWithCoDepartments) and routing.lead != self.department:
            raise _refusal(f"led by {routing.lead} but the responsible department is {self.department}",
                           (("department",), self.department), (("routing", "lead"), routing.lead))
        return self


def affair_to_data(affair: Affair) -> dict[str, Any]:
    """The JSON form of an affair: in events, the seed file and the admin API alike."""
    return affair.model_dump(mode="json")


def affair_from_stored(data: Mapping[str, Any]) -> Affair:
    """An affair as a stored event or snapshot holds it, not judged again (see the module's note)."""
    open311 = data["open311"]
    return Affair.model_construct(**{
        **data,
        "level": Level(data["level"]),
        "materials": tuple(Material.model_construct(**{**m, "form": MaterialForm(m["form"])})
                           for m in data["materials"]),
        "eligibility": rule_from_stored(data["eligibility"]),
        "routing": routing_from_data(data["routing"]),
        "open311": Open311Service.model_construct(**{
            **open311, "type": Open311Type(open311["type"]), "keywords": tuple(open311["keywords"])}),
    })
