"""pydantic building blocks for domain values read from JSON, so that a refusal names the member
at fault exactly as the JSON has it (a JSON Pointer the web layer answers with). Pure: pydantic
only, so a service's domain may use them.

- `Items(min=..., max=...)`: an array's length, counted before any item is read. pydantic checks
  a tuple's `min_length` and `max_length` after validating every item, against the items that
  validated: a too-long array of bad items was answered item by item, never naming the array,
  after reading all of it, and one bad item of one was also "too short".
- `TagAtMember(tag)`: for a discriminated union (`Field(discriminator=tag)`), errors point into
  the JSON. pydantic puts the chosen member's tag into an error's location
  (`eligibility.all_of.rules` for `{"eligibility": {"rule": "all_of", "rules": ...}}`), which
  names no member of the JSON; a tag that is missing or unknown is placed on the tag member.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

__all__ = ["Items", "TagAtMember"]

_TAG_ERRORS = ("union_tag_invalid", "union_tag_not_found")


@dataclass(frozen=True, kw_only=True)
class Items:
    """`Annotated[tuple[X, ...], Items(min=1, max=20)]`: 1 to 20 items (OpenAPI: minItems,
    maxItems). Instead of `Field(min_length=..., max_length=...)`, which a tuple checks against
    the items that validated (one bad item of one is also "too short")."""

    max: int
    min: int = 0

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self._count, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> Any:
        json_schema = handler(schema)
        if self.min:
            json_schema["minItems"] = self.min
        json_schema["maxItems"] = self.max
        return json_schema

    def _count(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            if len(value) > self.max:
                raise PydanticCustomError("too_long", "at most {max_length} items, not {actual_length}",
                                          {"max_length": self.max, "actual_length": len(value)})
            if len(value) < self.min:
                raise PydanticCustomError("too_short", "at least {min_length} items, not {actual_length}",
                                          {"min_length": self.min, "actual_length": len(value)})
        return value


@dataclass(frozen=True)
class TagAtMember:
    """Put after `Field(discriminator=tag)` in the union's `Annotated[...]`."""

    tag: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_wrap_validator_function(self._untag, handler(source))

    def _untag(self, value: Any, validate: Callable[[Any], Any]) -> Any:
        try:
            return validate(value)
        except ValidationError as exc:
            # Raised again with locations relative to this value; pydantic prefixes the outer ones.
            raise ValidationError.from_exception_data(exc.title, [
                self._relocated(error, value) for error in exc.errors()]) from None

    def _relocated(self, error: Any, value: Any) -> InitErrorDetails:
        loc = tuple(error["loc"])
        if loc:
            loc = loc[1:]  # the chosen member's tag
        elif error["type"] in _TAG_ERRORS and isinstance(value, dict):
            loc = (self.tag,)
        # The message as pydantic wrote it (a known error type would be re-worded from its context).
        return {"type": PydanticCustomError(error["type"], error["msg"]), "loc": loc, "input": error["input"]}
