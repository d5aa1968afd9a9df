"""The codes of the grid world, as value objects. Pure: no I/O.

Each level's code extends the one above it (docs/domain.md, "Units and jurisdiction codes"):

    district (区)      6   320104             GB/T 2260: province 2 + prefecture 2 + county 2
    street (街道)      9   320104001          + 3
    community (社区)  12   320104001001       + 3
    grid (网格)       15   320104001001001    + 3, numbered west to east, north to south

A building's code is 5 digits within its grid (楼栋编码); its full id is the grid's code and
those 5 digits. A component (部件: a manhole cover, a streetlight) has a 16-digit id: the
district's 6 digits, its class's major (2) and minor (2), and a 6-digit serial.

`parse` refuses with `InvalidCode` (422) naming the field, so that a bad code in a request
is answered where it was written. A segment of all zeros is refused: `000` is nobody's
sequence number, it would name the unit above.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from civicgrid_grid.domain.rules import InvalidInput


class InvalidCode(InvalidInput):
    """A code that is not of its form."""


def _digits(value: Any, length: int, what: str, field: str) -> str:
    if not isinstance(value, str) or len(value) != length or not value.isascii() or not value.isdigit():
        raise InvalidCode(f"invalid_{what.replace(' ', '_')}_code",
                          f"a {what} code is {length} digits, got {value!r}", field=field)
    return value


def _segment(value: str, start: int, end: int, what: str, field: str) -> None:
    if set(value[start:end]) == {"0"}:
        raise InvalidCode(f"invalid_{what.replace(' ', '_')}_code",
                          f"{value!r}: digits {start + 1} to {end} are all zero, which numbers no unit",
                          field=field)


@dataclass(frozen=True, order=True)
class DistrictCode:
    """A county-level division of GB/T 2260 (区): province 11 to 82, then a prefecture and a
    county part that are not 00 (a code ending in 00 names a prefecture or a province)."""

    value: str
    LENGTH: ClassVar[int] = 6

    @classmethod
    def parse(cls, value: Any, field: str = "district") -> Self:
        v = _digits(value, cls.LENGTH, "district", field)
        if not 11 <= int(v[:2]) <= 82:
            raise InvalidCode("invalid_district_code", f"{v!r}: {v[:2]} is no province of GB/T 2260", field=field)
        _segment(v, 2, 4, "district", field)
        _segment(v, 4, 6, "district", field)
        return cls(v)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, order=True)
class StreetCode:
    value: str
    LENGTH: ClassVar[int] = 9

    @classmethod
    def parse(cls, value: Any, field: str = "street") -> Self:
        v = _digits(value, cls.LENGTH, "street", field)
        DistrictCode.parse(v[:6], field)
        _segment(v, 6, 9, "street", field)
        return cls(v)

    @property
    def district(self) -> DistrictCode:
        return DistrictCode(self.value[:6])

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, order=True)
class CommunityCode:
    value: str
    LENGTH: ClassVar[int] = 12

    @classmethod
    def parse(cls, value: Any, field: str = "community") -> Self:
        v = _digits(value, cls.LENGTH, "community", field)
        StreetCode.parse(v[:9], field)
        _segment(v, 9, 12, "community", field)
        return cls(v)

    @property
    def street(self) -> StreetCode:
        return StreetCode(self.value[:9])

    @property
    def district(self) -> DistrictCode:
        return DistrictCode(self.value[:6])

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, order=True)
class GridCode:
    """A unit grid (单元网格): its community's 12 digits and a 3-digit sequence."""

    value: str
    LENGTH: ClassVar[int] = 15

    @classmethod
    def parse(cls, value: Any, field: str = "grid") -> Self:
        v = _digits(value, cls.LENGTH, "grid", field)
        CommunityCode.parse(v[:12], field)
        _segment(v, 12, 15, "grid", field)
        return cls(v)

    @classmethod
    def in_community(cls, value: Any, community: CommunityCode, field: str = "code") -> Self:
        """A grid code that must begin with its community's code (every grid belongs to exactly
        one community, and its code says which)."""
        code = cls.parse(value, field)
        if code.community != community:
            raise InvalidCode("grid_not_in_community",
                              f"grid {code} does not begin with its community's code {community}", field=field)
        return code

    @property
    def community(self) -> CommunityCode:
        return CommunityCode(self.value[:12])

    @property
    def street(self) -> StreetCode:
        return StreetCode(self.value[:9])

    @property
    def sequence(self) -> int:
        return int(self.value[12:])

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, order=True)
class BuildingCode:
    """A building's 5 digits within its grid (00001 to 99999)."""

    value: str
    LENGTH: ClassVar[int] = 5

    @classmethod
    def parse(cls, value: Any, field: str = "building") -> Self:
        v = _digits(value, cls.LENGTH, "building", field)
        _segment(v, 0, 5, "building", field)
        return cls(v)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, order=True)
class BuildingId:
    """A building as the whole city names it: its grid's 15 digits and its own 5."""

    grid: GridCode
    building: BuildingCode

    @classmethod
    def parse(cls, value: Any, field: str = "building") -> Self:
        v = _digits(value, 20, "building id", field)
        return cls(GridCode.parse(v[:15], field), BuildingCode.parse(v[15:], field))

    @property
    def value(self) -> str:
        return self.grid.value + self.building.value

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, order=True)
class ComponentId:
    """A component (部件) of digital urban management: 6 admin + 2 major + 2 minor + 6 serial.

    The major and minor say its class (a manhole cover, a streetlight) in the part (部件)
    half of the classification; the serial numbers it within the district and class."""

    value: str
    LENGTH: ClassVar[int] = 16

    @classmethod
    def parse(cls, value: Any, field: str = "component_id") -> Self:
        v = _digits(value, cls.LENGTH, "component", field)
        DistrictCode.parse(v[:6], field)
        _segment(v, 6, 8, "component", field)
        _segment(v, 8, 10, "component", field)
        _segment(v, 10, 16, "component", field)
        return cls(v)

    @property
    def district(self) -> DistrictCode:
        return DistrictCode(self.value[:6])

    @property
    def major(self) -> str:
        return self.value[6:8]

    @property
    def minor(self) -> str:
        return self.value[8:10]

    @property
    def serial(self) -> str:
        return self.value[10:]

    def __str__(self) -> str:
        return self.value
