"""The materials checklist of a case: what the catalogue requires, what it accepts when it
applies (optional materials: "if applicable"), what was handed in.

The one-window rule (一次性告知): when something is missing, the applicant is told ONCE
and COMPLETELY what is missing — every missing item in one answer, in the catalogue's
order, never one at a time over several visits. Optional materials are accepted but never
missing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

_MATERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class InvalidMaterials(ValueError):
    pass


def check_material_codes(codes: Iterable[str], what: str) -> tuple[str, ...]:
    result = tuple(codes)
    for code in result:
        if not isinstance(code, str) or not _MATERIAL.match(code):
            raise InvalidMaterials(f"{what}: {code!r} is not a material code (letters, digits, _ . -)")
    if len(set(result)) != len(result):
        raise InvalidMaterials(f"{what}: a material is listed twice")
    return result


@dataclass(frozen=True)
class MaterialsChecklist:
    required: tuple[str, ...]  # the catalogue's list for the affair's version, in its order
    handed_in: frozenset[str]
    optional: tuple[str, ...] = ()  # accepted when handed in, never missing (catalogue order)

    @classmethod
    def start(cls, required: Iterable[str], handed_in: Iterable[str],
              optional: Iterable[str] = ()) -> "MaterialsChecklist":
        """The checklist at registration; refuses materials the affair does not list."""
        required_codes = check_material_codes(required, "materials required")
        optional_codes = check_material_codes(optional, "optional materials")
        if set(required_codes) & set(optional_codes):
            raise InvalidMaterials("a material is either required or optional, not both")
        handed = check_material_codes(handed_in, "materials handed in")
        checklist = cls(required_codes, frozenset(), optional_codes)
        checklist.check_known(handed)
        return cls(required_codes, frozenset(handed), optional_codes)

    @property
    def listed(self) -> tuple[str, ...]:
        """Every material of the affair: the required ones, then the optional ones."""
        return self.required + self.optional

    def check_known(self, codes: Iterable[str]) -> None:
        unknown = [c for c in codes if c not in self.listed]
        if unknown:
            optional = f" (and, if applicable: {', '.join(self.optional)})" if self.optional else ""
            raise InvalidMaterials(f"not on this affair's checklist: {', '.join(unknown)}; it asks for: "
                                   f"{', '.join(self.required)}{optional}")

    @property
    def missing(self) -> tuple[str, ...]:
        """Every item still missing, in the catalogue's order: the once-and-complete answer."""
        return tuple(code for code in self.required if code not in self.handed_in)

    @property
    def complete(self) -> bool:
        return not self.missing

    def with_added(self, codes: Iterable[str]) -> "MaterialsChecklist":
        added = check_material_codes(codes, "materials added")
        if not added:
            raise InvalidMaterials("a supplement hands in at least one material")
        self.check_known(added)
        again = [c for c in added if c in self.handed_in]
        if again:
            raise InvalidMaterials(f"already handed in: {', '.join(again)}")
        return MaterialsChecklist(self.required, self.handed_in | set(added), self.optional)

    def ordered_handed_in(self) -> list[str]:
        return [code for code in self.listed if code in self.handed_in]
