"""The affairs catalogue (事项目录): what the one window accepts, with its rules.

An affair is one kind of matter a resident or enterprise can apply for at the window, e.g.
`civil.minimum_living_allowance` (最低生活保障). Its catalogue entry says who is responsible,
at which level it is decided, which materials the applicant hands in, the statutory time
limit in working days (办理时限), who may apply (an eligibility rule written as data),
where the case goes once accepted (routing.py's three rules, plus the approval workflow it
runs through), the fee, and the Open311 service it appears as in the GeoReport services list.

Entries are versioned: changing an entry makes a new version and the old ones stay readable,
because a case keeps the version it was accepted under. Retiring an entry stops new cases;
its code is never reused, so old cases still name what they were.

Rules are checked when a command is given (add, revise, retire), not when history is
replayed: a stored event is a fact, and tightening a rule later must not make old history
unreadable.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any, Iterable, Mapping, Sequence, Union

from civicgrid_common.aggregate import Aggregate, EventLike
from civicgrid_common.problems import Refusal, RuleViolation, json_pointer

from intake.domain.routing import (
    DepartmentHandles,
    InvalidRouting,
    LeadWithCoDepartments,
    Routing,
    StreetHandles,
    routing_from_data,
    routing_to_data,
)

AFFAIR_ADDED = "civicgrid.intake.affair.added.v1"
AFFAIR_REVISED = "civicgrid.intake.affair.revised.v1"
AFFAIR_RETIRED = "civicgrid.intake.affair.retired.v1"

_AFFAIR_CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_WORKFLOW_CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
# The same shape routing.py accepts, so a responsible department can also be routed to.
_DEPARTMENT = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_MATERIAL_CODE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_SERVICE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CJK = re.compile(r"[\u3400-\u9fff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

MAX_TIME_LIMIT_WORKING_DAYS = 365
MAX_COPIES = 20


class CatalogueRuleViolation(RuleViolation):
    """A catalogue command broke a rule; `field` names the offending field (a JSON-ish path,
    e.g. `materials[0].code`), answered as the JSON pointer `#/materials/0/code`."""

    refusal = Refusal.INVALID

    def __init__(self, field: str, message: str) -> None:
        super().__init__("catalogue_rule", f"{field}: {message}")
        self.field = field
        self.message = message

    def field_errors(self) -> list[dict[str, Any]]:
        return [{"pointer": json_pointer(_path_parts(self.field)), "detail": self.message}]


def _path_parts(path: str) -> list[str]:
    """`materials[0].code` -> ['materials', '0', 'code'] (a seed file's label in parentheses dropped)."""
    return [p for p in re.split(r"[.\[\]]+", re.sub(r" \(.*?\)", "", path)) if p]


# ---------------------------------------------------------------------------- value types


class Level(str, enum.Enum):
    """Where the affair is decided: the community workstation, the street, or a district bureau."""

    COMMUNITY = "community"
    STREET = "street"
    DISTRICT = "district"

    @property
    def code_length(self) -> int:
        """Digits of an administrative code at this level (DOMAIN.md, "Levels and codes")."""
        return {"district": 6, "street": 9, "community": 12}[self.value]


class MaterialForm(str, enum.Enum):
    ORIGINAL = "original"  # 原件 (shown, checked and handed back, or kept)
    COPY = "copy"  # 复印件
    ORIGINAL_AND_COPY = "original_and_copy"  # 原件及复印件: original checked, copy kept


class Open311Type(str, enum.Enum):
    """GeoReport v2 service types."""

    REALTIME = "realtime"
    BATCH = "batch"
    BLACKBOX = "blackbox"


@dataclass(frozen=True)
class Material:
    """One item of the materials list (申请材料)."""

    code: str
    name_zh: str
    name_en: str
    form: MaterialForm
    copies: int = 1
    # False for materials needed only in some situations ("if applicable"): the window's
    # once-and-complete "what is missing" answer lists only required ones as missing.
    required: bool = True


@dataclass(frozen=True)
class Open311Service:
    """How the affair appears in the GeoReport v2 services list."""

    service_code: str
    service_name: str
    description: str
    type: Open311Type
    keywords: tuple[str, ...]
    group: str


# ---------------------------------------------------------------------------- eligibility rules
#
# A small, explicit vocabulary, stored as data ({"rule": "age_at_least", "years": 60}) so an
# admin can change it without code. A rule is a pre-check at the window, on facts the clerk
# has; means tests and the like stay with the reviewers.


@dataclass(frozen=True)
class HouseholdRegisteredIn:
    """Household registration (户籍) in the same community / street / district as the application."""

    level: Level


@dataclass(frozen=True)
class ResidesIn:
    """Actual residence (常住地) in the same community / street / district as the application."""

    level: Level


@dataclass(frozen=True)
class EnterpriseRegisteredIn:
    """An enterprise whose registered address lies in the same unit as the application."""

    level: Level


@dataclass(frozen=True)
class AgeAtLeast:
    years: int


@dataclass(frozen=True)
class AgeBelow:
    years: int


@dataclass(frozen=True)
class SexIs:
    sex: str  # "female" | "male": some policies differ by sex (e.g. the "40/50" workers)


@dataclass(frozen=True)
class RegisteredUnemployed:
    """Holds a current unemployment registration (失业登记)."""


@dataclass(frozen=True)
class HoldsDisabilityCertificate:
    """Holds a disability certificate (残疾人证)."""


@dataclass(frozen=True)
class AllOf:
    rules: tuple["EligibilityRule", ...]  # empty: no condition at the window


@dataclass(frozen=True)
class AnyOf:
    rules: tuple["EligibilityRule", ...]


EligibilityRule = Union[
    HouseholdRegisteredIn, ResidesIn, EnterpriseRegisteredIn, AgeAtLeast, AgeBelow, SexIs,
    RegisteredUnemployed, HoldsDisabilityCertificate, AllOf, AnyOf,
]
NO_CONDITION: EligibilityRule = AllOf(())
SEXES = ("female", "male")
APPLICANT_KINDS = ("resident", "enterprise")


@dataclass(frozen=True)
class ApplicantFacts:
    """What the window knows about an applicant when checking eligibility.

    None means "not known": a rule that needs an unknown fact is not met, and says which
    fact must be established.
    """

    kind: str  # "resident" | "enterprise"
    birth_date: date | None = None
    sex: str | None = None
    household_registration_code: str | None = None
    residence_code: str | None = None
    registered_address_code: str | None = None
    registered_unemployed: bool | None = None
    holds_disability_certificate: bool | None = None


@dataclass(frozen=True)
class Ineligibility:
    """One reason an applicant may not apply: the rule that failed and why, for the clerk."""

    rule: str
    reason: str


def evaluate(rule: EligibilityRule, facts: ApplicantFacts, *, place: str, on: date) -> tuple[Ineligibility, ...]:
    """The reasons `facts` do not satisfy `rule` for an application made at `place` on `on`.

    `place` is the administrative code of the unit applied to (a community, 12 digits, or a
    street, 9 digits). An empty result means eligible.
    """
    if isinstance(rule, AllOf):
        return tuple(reason for sub in rule.rules for reason in evaluate(sub, facts, place=place, on=on))
    if isinstance(rule, AnyOf):
        alternatives = [evaluate(sub, facts, place=place, on=on) for sub in rule.rules]
        if any(not reasons for reasons in alternatives):
            return ()
        summary = " / ".join("; ".join(r.reason for r in reasons) for reasons in alternatives)
        return (Ineligibility("any_of", f"none of the alternatives holds: {summary}"),)
    reason = _single_rule_failure(rule, facts, place=place, on=on)
    return () if reason is None else (Ineligibility(rule_name(rule), reason),)


def _single_rule_failure(rule: EligibilityRule, facts: ApplicantFacts, *, place: str, on: date) -> str | None:
    if isinstance(rule, HouseholdRegisteredIn):
        return _same_unit("household registration", facts.household_registration_code, rule.level, place)
    if isinstance(rule, ResidesIn):
        return _same_unit("residence", facts.residence_code, rule.level, place)
    if isinstance(rule, EnterpriseRegisteredIn):
        if facts.kind != "enterprise":
            return "only an enterprise may apply"
        return _same_unit("registered address", facts.registered_address_code, rule.level, place)
    if isinstance(rule, (AgeAtLeast, AgeBelow)):
        if facts.birth_date is None:
            return "the applicant's birth date is not known"
        age = age_on(facts.birth_date, on)
        if isinstance(rule, AgeAtLeast) and age < rule.years:
            return f"aged {age}, must be at least {rule.years}"
        if isinstance(rule, AgeBelow) and age >= rule.years:
            return f"aged {age}, must be under {rule.years}"
        return None
    if isinstance(rule, SexIs):
        if facts.sex is None:
            return "the applicant's sex is not known"
        return None if facts.sex == rule.sex else f"applies to {rule.sex} applicants only"
    if isinstance(rule, RegisteredUnemployed):
        return _flag(facts.registered_unemployed, "registered as unemployed")
    if isinstance(rule, HoldsDisabilityCertificate):
        return _flag(facts.holds_disability_certificate, "holding a disability certificate")
    raise TypeError(f"not an eligibility rule: {rule!r}")


def _same_unit(what: str, code: str | None, level: Level, place: str) -> str | None:
    n = level.code_length
    if len(place) < n:
        return f"the application is made at {place}, not inside one {level.value}; {what} cannot be checked"
    if code is None:
        return f"the applicant's {what} is not known"
    if code[:n] != place[:n] or len(code) < n:
        return f"{what} {code} is not in {level.value} {place[:n]}"
    return None


def _flag(value: bool | None, what: str) -> str | None:
    if value is None:
        return f"whether the applicant is {what} is not known"
    return None if value else f"the applicant is not {what}"


def age_on(birth_date: date, on: date) -> int:
    """Full years of age on a day (a birthday on 29 February counts from 1 March in other years)."""
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return on.year - birth_date.year - (1 if before_birthday else 0)


_RULE_NAMES: dict[type, str] = {
    HouseholdRegisteredIn: "household_registered_in", ResidesIn: "resides_in",
    EnterpriseRegisteredIn: "enterprise_registered_in", AgeAtLeast: "age_at_least", AgeBelow: "age_below",
    SexIs: "sex", RegisteredUnemployed: "registered_unemployed",
    HoldsDisabilityCertificate: "holds_disability_certificate", AllOf: "all_of", AnyOf: "any_of",
}
_RULES_BY_NAME = {name: cls for cls, name in _RULE_NAMES.items()}


def rule_name(rule: EligibilityRule) -> str:
    return _RULE_NAMES[type(rule)]


def rule_to_data(rule: EligibilityRule) -> dict[str, Any]:
    data: dict[str, Any] = {"rule": rule_name(rule)}
    if isinstance(rule, (AllOf, AnyOf)):
        data["rules"] = [rule_to_data(sub) for sub in rule.rules]
    elif isinstance(rule, (HouseholdRegisteredIn, ResidesIn, EnterpriseRegisteredIn)):
        data["level"] = rule.level.value
    elif isinstance(rule, (AgeAtLeast, AgeBelow)):
        data["years"] = rule.years
    elif isinstance(rule, SexIs):
        data["sex"] = rule.sex
    return data


def rule_from_data(data: Any, path: str = "eligibility") -> EligibilityRule:
    """Parse and check an eligibility rule; errors name the path inside it."""
    obj = _object(data, path)
    name = obj.get("rule")
    cls = _RULES_BY_NAME.get(name) if isinstance(name, str) else None
    if cls is None:
        known = ", ".join(sorted(_RULES_BY_NAME))
        raise CatalogueRuleViolation(f"{path}.rule", f"unknown rule {name!r}; known rules: {known}")
    if cls in (AllOf, AnyOf):
        _only_keys(obj, path, {"rule", "rules"})
        items = _list(obj.get("rules"), f"{path}.rules")
        if cls is AnyOf and len(items) < 2:
            raise CatalogueRuleViolation(f"{path}.rules", "any_of needs at least two alternatives")
        return cls(tuple(rule_from_data(item, f"{path}.rules[{i}]") for i, item in enumerate(items)))
    if cls in (HouseholdRegisteredIn, ResidesIn, EnterpriseRegisteredIn):
        _only_keys(obj, path, {"rule", "level"})
        return cls(_enum(Level, obj.get("level"), f"{path}.level"))
    if cls in (AgeAtLeast, AgeBelow):
        _only_keys(obj, path, {"rule", "years"})
        return cls(_int(obj.get("years"), f"{path}.years", low=0, high=150))
    if cls is SexIs:
        _only_keys(obj, path, {"rule", "sex"})
        sex = obj.get("sex")
        if sex not in SEXES:
            raise CatalogueRuleViolation(f"{path}.sex", f"must be one of {', '.join(SEXES)}, not {sex!r}")
        return SexIs(sex)
    _only_keys(obj, path, {"rule"})
    return cls()


# ---------------------------------------------------------------------------- the affair


@dataclass(frozen=True)
class Affair:
    """One catalogue entry's content (one version of it)."""

    code: str
    name_zh: str
    name_en: str
    department: str  # the responsible department's code
    level: Level
    materials: tuple[Material, ...]
    time_limit_working_days: int  # statutory time limit (法定/承诺办理时限), in working days
    eligibility: EligibilityRule
    routing: Routing
    # The approval workflow (in the approval service) a case of this affair runs through,
    # e.g. community → street → bureau for the minimum living allowance; None when the
    # matter is settled without one.
    approval_workflow: str | None
    fee_fen: int  # the fee in fen (分, 1/100 yuan); most affairs are free
    open311: Open311Service
    # Where the time limit and materials come from, and what could not be confirmed.
    source_note: str = ""

    def required_materials(self) -> tuple[Material, ...]:
        return tuple(m for m in self.materials if m.required)


def affair_to_data(affair: Affair) -> dict[str, Any]:
    """The JSON form of an affair: in events, the seed file and the admin API alike."""
    return {
        "code": affair.code,
        "name_zh": affair.name_zh,
        "name_en": affair.name_en,
        "department": affair.department,
        "level": affair.level.value,
        "materials": [
            {"code": m.code, "name_zh": m.name_zh, "name_en": m.name_en, "form": m.form.value,
             "copies": m.copies, "required": m.required}
            for m in affair.materials
        ],
        "time_limit_working_days": affair.time_limit_working_days,
        "eligibility": rule_to_data(affair.eligibility),
        "routing": routing_to_data(affair.routing),
        "approval_workflow": affair.approval_workflow,
        "fee_fen": affair.fee_fen,
        "open311": {
            "service_code": affair.open311.service_code,
            "service_name": affair.open311.service_name,
            "description": affair.open311.description,
            "type": affair.open311.type.value,
            "keywords": list(affair.open311.keywords),
            "group": affair.open311.group,
        },
        "source_note": affair.source_note,
    }


_AFFAIR_KEYS = {f.name for f in fields(Affair)}
_MATERIAL_KEYS = {f.name for f in fields(Material)}
_OPEN311_KEYS = {f.name for f in fields(Open311Service)}


def affair_from_data(data: Any) -> Affair:
    """Parse an affair from its JSON form and check every rule (CatalogueRuleViolation)."""
    affair = parse_affair(data)
    validate_affair(affair)
    return affair


def parse_affair(data: Any) -> Affair:
    """Types and shapes only: what replaying a stored event needs (see the module's note)."""
    obj = _object(data, "affair")
    _only_keys(obj, "affair", _AFFAIR_KEYS, required=_AFFAIR_KEYS - {"source_note"}, top=True)
    workflow = obj.get("approval_workflow")
    if workflow is not None and not isinstance(workflow, str):
        raise CatalogueRuleViolation("approval_workflow", "must be a workflow code or null")
    try:
        routing = routing_from_data(_object(obj.get("routing"), "routing"))
    except InvalidRouting as e:
        raise CatalogueRuleViolation(f"routing.{e.member}" if e.member else "routing", str(e)) from None
    return Affair(
        code=_str(obj.get("code"), "code"),
        name_zh=_str(obj.get("name_zh"), "name_zh"),
        name_en=_str(obj.get("name_en"), "name_en"),
        department=_str(obj.get("department"), "department"),
        level=_enum(Level, obj.get("level"), "level"),
        materials=tuple(_material(item, f"materials[{i}]")
                        for i, item in enumerate(_list(obj.get("materials"), "materials"))),
        time_limit_working_days=_int(obj.get("time_limit_working_days"), "time_limit_working_days"),
        eligibility=rule_from_data(obj.get("eligibility")),
        routing=routing,
        approval_workflow=workflow,
        fee_fen=_int(obj.get("fee_fen"), "fee_fen"),
        open311=_open311(obj.get("open311")),
        source_note=_str(obj.get("source_note", ""), "source_note"),
    )


def _material(data: Any, path: str) -> Material:
    obj = _object(data, path)
    _only_keys(obj, path, _MATERIAL_KEYS, required=_MATERIAL_KEYS - {"required", "copies"})
    required = obj.get("required", True)
    if not isinstance(required, bool):
        raise CatalogueRuleViolation(f"{path}.required", "must be true or false")
    return Material(
        code=_str(obj.get("code"), f"{path}.code"),
        name_zh=_str(obj.get("name_zh"), f"{path}.name_zh"),
        name_en=_str(obj.get("name_en"), f"{path}.name_en"),
        form=_enum(MaterialForm, obj.get("form"), f"{path}.form"),
        copies=_int(obj.get("copies", 1), f"{path}.copies"),
        required=required,
    )


def _open311(data: Any) -> Open311Service:
    obj = _object(data, "open311")
    _only_keys(obj, "open311", _OPEN311_KEYS, required=_OPEN311_KEYS)
    keywords = _list(obj.get("keywords"), "open311.keywords")
    return Open311Service(
        service_code=_str(obj.get("service_code"), "open311.service_code"),
        service_name=_str(obj.get("service_name"), "open311.service_name"),
        description=_str(obj.get("description"), "open311.description"),
        type=_enum(Open311Type, obj.get("type"), "open311.type"),
        keywords=tuple(_str(k, f"open311.keywords[{i}]") for i, k in enumerate(keywords)),
        group=_str(obj.get("group"), "open311.group"),
    )


def validate_affair(affair: Affair) -> None:
    """Check every rule of an entry; the first broken one is raised, naming its field."""
    _match(_AFFAIR_CODE, affair.code, "code", "a dotted lower-case code such as civil.minimum_living_allowance")
    if len(affair.code) > 64:
        # Cases carry the code in their events, whose schemas allow 64 characters.
        raise CatalogueRuleViolation("code", "must be at most 64 characters")
    _chinese_name(affair.name_zh, "name_zh")
    _text(affair.name_en, "name_en", max_length=120)
    _match(_DEPARTMENT, affair.department, "department", "a department code (lower case letters, digits, _)")
    if not isinstance(affair.level, Level):
        raise CatalogueRuleViolation("level", "must be community, street or district")
    _validate_materials(affair.materials)
    _bounded(affair.time_limit_working_days, "time_limit_working_days", 1, MAX_TIME_LIMIT_WORKING_DAYS)
    _validate_rule(affair.eligibility, "eligibility")
    _validate_routing(affair)
    if affair.approval_workflow is not None:
        _match(_WORKFLOW_CODE, affair.approval_workflow, "approval_workflow", "a workflow code such as civil.minimum_living_allowance")
    _bounded(affair.fee_fen, "fee_fen", 0, 100_000_000)
    _validate_open311(affair.open311)
    if not isinstance(affair.source_note, str) or len(affair.source_note) > 1000:
        raise CatalogueRuleViolation("source_note", "must be text of at most 1000 characters")


def _validate_materials(materials: Sequence[Material]) -> None:
    if not materials:
        raise CatalogueRuleViolation("materials", "at least one material is needed (the applicant's identity document)")
    seen: set[str] = set()
    for i, m in enumerate(materials):
        path = f"materials[{i}]"
        _match(_MATERIAL_CODE, m.code, f"{path}.code", "a material code (lower case letters, digits, _)")
        if m.code in seen:
            raise CatalogueRuleViolation(f"{path}.code", f"material {m.code!r} is listed twice")
        seen.add(m.code)
        _chinese_name(m.name_zh, f"{path}.name_zh")
        _text(m.name_en, f"{path}.name_en", max_length=200)
        if not isinstance(m.form, MaterialForm):
            raise CatalogueRuleViolation(f"{path}.form", "must be original, copy or original_and_copy")
        _bounded(m.copies, f"{path}.copies", 1, MAX_COPIES)
    if not any(m.required for m in materials):
        raise CatalogueRuleViolation("materials", "at least one material must be required")


def _validate_rule(rule: EligibilityRule, path: str) -> None:
    # Entries built in code (not parsed) get the same checks as parsed ones.
    if type(rule) not in _RULE_NAMES:
        raise CatalogueRuleViolation(path, f"not an eligibility rule: {rule!r}")
    if isinstance(rule, (AllOf, AnyOf)):
        for i, sub in enumerate(rule.rules):
            _validate_rule(sub, f"{path}.rules[{i}]")
    rule_from_data(rule_to_data(rule), path)


def _validate_routing(affair: Affair) -> None:
    routing = affair.routing
    if not isinstance(routing, (StreetHandles, DepartmentHandles, LeadWithCoDepartments)):
        raise CatalogueRuleViolation("routing", "must be a street, department or lead routing")
    if isinstance(routing, StreetHandles) and affair.level is Level.DISTRICT:
        raise CatalogueRuleViolation("routing", "a district-level affair cannot be handled by the street alone")
    if isinstance(routing, DepartmentHandles) and routing.department != affair.department:
        raise CatalogueRuleViolation(
            "routing", f"routed to {routing.department} but the responsible department is {affair.department}")
    if isinstance(routing, LeadWithCoDepartments) and routing.lead != affair.department:
        raise CatalogueRuleViolation(
            "routing", f"led by {routing.lead} but the responsible department is {affair.department}")


def _validate_open311(service: Open311Service) -> None:
    _match(_SERVICE_CODE, service.service_code, "open311.service_code", "letters, digits, '_', '.', '-' (at most 64)")
    _text(service.service_name, "open311.service_name", max_length=100)
    _text(service.description, "open311.description", max_length=1000)
    if not isinstance(service.type, Open311Type):
        raise CatalogueRuleViolation("open311.type", "must be realtime, batch or blackbox")
    for i, keyword in enumerate(service.keywords):
        _text(keyword, f"open311.keywords[{i}]", max_length=50)
        if "," in keyword:
            # GeoReport lists keywords comma-separated: a comma would split one in two.
            raise CatalogueRuleViolation(f"open311.keywords[{i}]", "must not contain a comma")
    _text(service.group, "open311.group", max_length=100)


# ---------------------------------------------------------------------------- small checks


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CatalogueRuleViolation(path, "must be an object")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise CatalogueRuleViolation(path, "must be a list")
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise CatalogueRuleViolation(path, "must be a string")
    return value


def _int(value: Any, path: str, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CatalogueRuleViolation(path, "must be a whole number")
    if low is not None and high is not None:
        _bounded(value, path, low, high)
    return value


def _enum(cls: type[enum.Enum], value: Any, path: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in cls)
        raise CatalogueRuleViolation(path, f"must be one of {allowed}, not {value!r}") from None


def _only_keys(obj: Mapping[str, Any], path: str, allowed: set[str], *, required: Iterable[str] = (),
               top: bool = False) -> None:
    def name(key: str) -> str:
        return key if top else f"{path}.{key}"

    missing = sorted(set(required) - set(obj))
    if missing:
        raise CatalogueRuleViolation(name(missing[0]), "is missing")
    unknown = sorted(map(str, set(obj) - allowed))
    if unknown:
        raise CatalogueRuleViolation(name(unknown[0]), "is not a field of this object")


def _bounded(value: Any, path: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CatalogueRuleViolation(path, f"must be a whole number from {low} to {high}, not {value!r}")


def _match(pattern: re.Pattern[str], value: Any, path: str, expected: str) -> None:
    if not isinstance(value, str) or not pattern.match(value):
        raise CatalogueRuleViolation(path, f"{value!r} is not {expected}")


def _text(value: Any, path: str, *, max_length: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise CatalogueRuleViolation(path, "must not be empty")
    if value != value.strip():
        raise CatalogueRuleViolation(path, "must not start or end with spaces")
    if len(value) > max_length:
        raise CatalogueRuleViolation(path, f"must be at most {max_length} characters")
    if _CONTROL.search(value):
        raise CatalogueRuleViolation(path, "must not contain control characters")


def _chinese_name(value: Any, path: str) -> None:
    _text(value, path, max_length=80)
    if not _CJK.search(value):
        raise CatalogueRuleViolation(path, "must be written in Chinese (zh-CN)")


# ---------------------------------------------------------------------------- the aggregate


@dataclass(frozen=True)
class AffairRevision:
    """One version of an entry, as a case refers to it: (code, version)."""

    version: int
    affair: Affair

    @property
    def code(self) -> str:
        return self.affair.code


@dataclass
class _Entry:
    revisions: list[Affair] = field(default_factory=list)
    retired_reason: str | None = None


class Catalogue(Aggregate):
    """A district's affairs catalogue (one stream; its id is the district code, e.g. 320104)."""

    stream_type = "catalogue"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self._entries: dict[str, _Entry] = {}

    # ------------------------------------------------------------------ commands

    def add_affair(self, affair: Affair) -> None:
        validate_affair(affair)
        if affair.code in self._entries:
            state = "retired (codes are never reused)" if self.is_retired(affair.code) else "already in the catalogue"
            raise CatalogueRuleViolation("code", f"affair {affair.code} is {state}")
        self._check_service_code_free(affair)
        self._emit(AFFAIR_ADDED, {"code": affair.code, "version": 1, "affair": affair_to_data(affair)})

    def revise_affair(self, affair: Affair, reason: str) -> None:
        """Publish a new version of an entry; earlier versions stay readable."""
        validate_affair(affair)
        _text(reason, "reason", max_length=500)
        current = self.current(affair.code)  # raises for unknown or retired codes
        changed = changed_fields(current.affair, affair)
        if not changed:
            raise CatalogueRuleViolation("affair", f"nothing changed in {affair.code} version {current.version}")
        self._check_service_code_free(affair)
        self._emit(AFFAIR_REVISED, {
            "code": affair.code, "version": current.version + 1, "affair": affair_to_data(affair),
            "changed_fields": changed, "reason": reason,
        })

    def retire_affair(self, code: str, reason: str) -> None:
        """No new cases of this affair; open cases keep their version."""
        _text(reason, "reason", max_length=500)
        current = self.current(code)
        self._emit(AFFAIR_RETIRED, {"code": code, "last_version": current.version, "reason": reason})

    def _check_service_code_free(self, affair: Affair) -> None:
        for other in self.active():
            if other.code != affair.code and other.affair.open311.service_code == affair.open311.service_code:
                raise CatalogueRuleViolation(
                    "open311.service_code",
                    f"{affair.open311.service_code!r} is already the service of {other.code}")

    # ------------------------------------------------------------------ queries

    def current(self, code: str) -> AffairRevision:
        """The version new cases get. Unknown or retired codes are refused."""
        entry = self._entry(code)
        if entry.retired_reason is not None:
            raise CatalogueRuleViolation("code", f"affair {code} is retired: {entry.retired_reason}")
        return AffairRevision(len(entry.revisions), entry.revisions[-1])

    def revision(self, code: str, version: int) -> AffairRevision:
        """A given version, retired or not: an open case reads the version it started with."""
        entry = self._entry(code)
        if not 1 <= version <= len(entry.revisions):
            raise CatalogueRuleViolation("version", f"affair {code} has versions 1 to {len(entry.revisions)}, not {version}")
        return AffairRevision(version, entry.revisions[version - 1])

    def revisions(self, code: str) -> tuple[AffairRevision, ...]:
        entry = self._entry(code)
        return tuple(AffairRevision(i, a) for i, a in enumerate(entry.revisions, start=1))

    def is_retired(self, code: str) -> bool:
        return self._entry(code).retired_reason is not None

    def codes(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def active(self) -> tuple[AffairRevision, ...]:
        """The current version of every entry that is not retired, in the order they were added."""
        return tuple(self.current(code) for code, e in self._entries.items() if e.retired_reason is None)

    def _entry(self, code: str) -> _Entry:
        entry = self._entries.get(code)
        if entry is None:
            raise CatalogueRuleViolation("code", f"no affair {code!r} in the catalogue")
        return entry

    # ------------------------------------------------------------------ state

    def apply(self, event: EventLike) -> None:
        data = event.data
        if event.type == AFFAIR_ADDED:
            self._entries[data["code"]] = _Entry([parse_affair(data["affair"])])
        elif event.type == AFFAIR_REVISED:
            self._entries[data["code"]].revisions.append(parse_affair(data["affair"]))
        elif event.type == AFFAIR_RETIRED:
            self._entries[data["code"]].retired_reason = data["reason"]
        else:
            super().apply(event)

    def snapshot_state(self) -> Mapping[str, Any]:
        return {"entries": [
            {"code": code, "revisions": [affair_to_data(a) for a in e.revisions], "retired_reason": e.retired_reason}
            for code, e in self._entries.items()
        ]}

    @classmethod
    def from_snapshot(cls, id: str, state: Mapping[str, Any], version: int) -> "Catalogue":
        catalogue = cls(id)
        for item in state["entries"]:
            catalogue._entries[item["code"]] = _Entry(
                [parse_affair(a) for a in item["revisions"]], item["retired_reason"])
        catalogue.version = version
        return catalogue


def changed_fields(before: Affair, after: Affair) -> list[str]:
    """The top-level fields that differ between two versions (for the revision's audit record)."""
    old, new = affair_to_data(before), affair_to_data(after)
    return [name for name in new if old.get(name) != new[name]]


# ---------------------------------------------------------------------------- seeding


def affairs_from_seed(document: Any) -> tuple[Affair, ...]:
    """Parse and check a seed document ({"affairs": [...]}); errors name the entry."""
    obj = _object(document, "seed")
    affairs: list[Affair] = []
    codes: set[str] = set()
    for i, item in enumerate(_list(obj.get("affairs"), "seed.affairs")):
        label = item.get("code", "?") if isinstance(item, Mapping) else "?"
        try:
            affair = affair_from_data(item)
        except CatalogueRuleViolation as e:
            raise CatalogueRuleViolation(f"affairs[{i}] ({label}).{e.field}", e.message) from None
        if affair.code in codes:
            raise CatalogueRuleViolation(f"affairs[{i}].code", f"{affair.code} appears twice in the seed")
        codes.add(affair.code)
        affairs.append(affair)
    return tuple(affairs)


SEED_REVISION_REASON = "catalogue seed updated"


def seed_catalogue(catalogue: Catalogue, affairs: Sequence[Affair]) -> list[str]:
    """Bring the catalogue up to the seed through its commands; returns the codes changed.

    Idempotent: an entry equal to the seed is left alone, a differing one gets a new
    version, and a retired one stays retired (an admin retired it on purpose).
    """
    changed: list[str] = []
    for affair in affairs:
        if affair.code not in catalogue.codes():
            catalogue.add_affair(affair)
        elif catalogue.is_retired(affair.code) or catalogue.current(affair.code).affair == affair:
            continue
        else:
            catalogue.revise_affair(affair, SEED_REVISION_REASON)
        changed.append(affair.code)
    return changed
