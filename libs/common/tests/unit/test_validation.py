"""civicgrid_common.validation: a too-long array is refused as a whole before its items are read,
and an error inside a discriminated union points at the JSON member, not at pydantic's tag."""
from __future__ import annotations

from typing import Annotated, Literal, Union

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from civicgrid_common.validation import Items, TagAtMember


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Leaf(_Model):
    kind: Literal["leaf"]
    size: int = Field(ge=0, le=9)


class Branch(_Model):
    kind: Literal["branch"]
    parts: Annotated[tuple["Node", ...], Items(min=1, max=3)]


Node = Annotated[Union[Leaf, Branch], Field(discriminator="kind"), TagAtMember("kind")]
Branch.model_rebuild()


class Tree(_Model):
    root: Node


def _locations(data: object) -> list[tuple]:
    with pytest.raises(ValidationError) as raised:
        Tree.model_validate({"root": data})
    return [e["loc"] for e in raised.value.errors()]


def test_too_many_or_too_few_items_name_the_array_not_each_item():
    assert _locations({"kind": "branch", "parts": [7] * 4}) == [("root", "parts")]
    assert _locations({"kind": "branch", "parts": []}) == [("root", "parts")]
    # One bad item of one is that item's fault only (pydantic's own min_length would add "too short").
    assert _locations({"kind": "branch", "parts": [7]}) == [("root", "parts", 0)]
    schema = Tree.model_json_schema()["$defs"]["Branch"]["properties"]["parts"]
    assert (schema["minItems"], schema["maxItems"]) == (1, 3)


def test_errors_inside_a_union_point_at_json_members():
    assert _locations({"kind": "leaf", "size": 10}) == [("root", "size")]
    assert _locations({"kind": "branch", "parts": [{"kind": "leaf", "size": -1}]}) == [("root", "parts", 0, "size")]
    assert _locations({"kind": "branch", "parts": [{"kind": "tree"}]}) == [("root", "parts", 0, "kind")]
    assert _locations({"size": 1}) == [("root", "kind")]
    assert _locations(7) == [("root",)]


def test_a_message_is_kept_as_pydantic_wrote_it():
    with pytest.raises(ValidationError) as raised:
        Tree.model_validate({"root": {"kind": "leaf", "size": 10, "colour": "red"}})
    assert {(e["type"], e["msg"]) for e in raised.value.errors()} == {
        ("less_than_equal", "Input should be less than or equal to 9"),
        ("extra_forbidden", "Extra inputs are not permitted")}
