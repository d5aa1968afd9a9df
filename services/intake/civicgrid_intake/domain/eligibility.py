"""Who may apply for an affair (申请条件): eligibility rules written as data, and their evaluation.

A small, explicit vocabulary, stored as JSON (`{"rule": "age_at_least", "years": 60}`) so that
an admin can change a catalogue entry's rule without code. A rule is a pre-check at the window,
on facts the clerk has; means tests and the like stay with the reviewers.

The rules are frozen pydantic models forming one union discriminated by `rule` (so OpenAPI
documents each, `all_of` and `any_of` recursively), and `evaluate` judges an applicant's facts
against one. Two ways to read a rule's JSON: `rule_from_data` checks every bound (a command: an
admin's change, the seed), `rule_from_stored` checks nothing (replaying a stored event: a fact,
read under whatever bounds held when it was written; see affair.py).

`Level` is here rather than in affair.py because a rule names one (same street as the
application) and affair.py builds on this module; an affair's decision level is the same enum.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, Mapping, Union

from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter

from civicgrid_common.validation import Items, TagAtMember

MAX_AGE_YEARS = 150
MAX_RULES = 20  # alternatives or conditions in one all_of / any_of


class Level(str, enum.Enum):
    """An administrative level: where an affair is decided, or the unit a rule compares codes in."""

    COMMUNITY = "community"
    STREET = "street"
    DISTRICT = "district"

    @property
    def code_length(self) -> int:
        """Digits of an administrative code at this level (docs/domain.md, "Units and jurisdiction codes")."""
        return {"district": 6, "street": 9, "community": 12}[self.value]


def _tag_required(schema: dict[str, Any]) -> None:
    # The tag has a default (so code can write AgeAtLeast(years=60)), but JSON must carry it:
    # it is the union's discriminator, which OpenAPI requires to be present.
    required = schema.setdefault("required", [])
    if "rule" not in required:
        required.insert(0, "rule")


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_tag_required)


class HouseholdRegisteredIn(_Rule):
    """Household registration (户籍) in the same community / street / district as the application."""

    rule: Literal["household_registered_in"] = "household_registered_in"
    level: Level


class ResidesIn(_Rule):
    """Actual residence (常住地) in the same community / street / district as the application."""

    rule: Literal["resides_in"] = "resides_in"
    level: Level


class EnterpriseRegisteredIn(_Rule):
    """An enterprise whose registered address lies in the same unit as the application."""

    rule: Literal["enterprise_registered_in"] = "enterprise_registered_in"
    level: Level


class AgeAtLeast(_Rule):
    rule: Literal["age_at_least"] = "age_at_least"
    years: StrictInt = Field(ge=0, le=MAX_AGE_YEARS)


class AgeBelow(_Rule):
    rule: Literal["age_below"] = "age_below"
    years: StrictInt = Field(ge=0, le=MAX_AGE_YEARS)


class SexIs(_Rule):
    """Some policies differ by sex (e.g. the "40/50" workers)."""

    rule: Literal["sex"] = "sex"
    sex: Literal["female", "male"]


class RegisteredUnemployed(_Rule):
    """Holds a current unemployment registration (失业登记)."""

    rule: Literal["registered_unemployed"] = "registered_unemployed"


class HoldsDisabilityCertificate(_Rule):
    """Holds a disability certificate (残疾人证)."""

    rule: Literal["holds_disability_certificate"] = "holds_disability_certificate"


class AllOf(_Rule):
    """Every condition holds; none at all: no condition at the window."""

    rule: Literal["all_of"] = "all_of"
    rules: Annotated[tuple[EligibilityRule, ...], Items(max=MAX_RULES)]


class AnyOf(_Rule):
    """At least one alternative holds."""

    rule: Literal["any_of"] = "any_of"
    rules: Annotated[tuple[EligibilityRule, ...], Items(min=2, max=MAX_RULES)]


EligibilityRule = Annotated[
    Union[HouseholdRegisteredIn, ResidesIn, EnterpriseRegisteredIn, AgeAtLeast, AgeBelow, SexIs,
          RegisteredUnemployed, HoldsDisabilityCertificate, AllOf, AnyOf],
    Field(discriminator="rule"),
    TagAtMember("rule"),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()

NO_CONDITION: EligibilityRule = AllOf(rules=())
_RULES = TypeAdapter(EligibilityRule)
_BY_NAME: dict[str, type[_Rule]] = {
    cls.model_fields["rule"].default: cls
    for cls in (HouseholdRegisteredIn, ResidesIn, EnterpriseRegisteredIn, AgeAtLeast, AgeBelow, SexIs,
                RegisteredUnemployed, HoldsDisabilityCertificate, AllOf, AnyOf)
}


# ---------------------------------------------------------------------------- the JSON form


def rule_to_data(rule: EligibilityRule) -> dict[str, Any]:
    """{"rule": name, then its members}: in events, the seed file and problems alike."""
    return rule.model_dump(mode="json")


def rule_from_data(data: Any) -> EligibilityRule:
    """A rule from its JSON form, every bound checked (pydantic's ValidationError names the member)."""
    return _RULES.validate_python(data)


def rule_from_stored(data: Mapping[str, Any]) -> EligibilityRule:
    """A rule as a stored event holds it, not judged again (see the module's note)."""
    cls = _BY_NAME[data["rule"]]
    values: dict[str, Any] = {k: v for k, v in data.items() if k in cls.model_fields}
    if "level" in values:
        values["level"] = Level(values["level"])
    if "rules" in values:
        values["rules"] = tuple(rule_from_stored(sub) for sub in values["rules"])
    return cls.model_construct(**values)


# ---------------------------------------------------------------------------- evaluation


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
    return () if reason is None else (Ineligibility(rule.rule, reason),)


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
