"""The monthly sweep of unstable factors (矛盾纠纷和不稳定因素排查) of a community. Pure: no I/O.

Once a month each community goes through its grids for what could turn into a conflict: a
wage arrears dispute brewing, a demolition, a family feud, a petitioner. The sweep records
what was found (or that nothing was), each factor with its level and grid; one aggregate per
community and month, stream `stability-sweep:<community>:<YYYY-MM>`, recorded once.
"""
from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Any, Mapping, Sequence

from civicgrid_common.aggregate import applies
from civicgrid_common.calendar.working_days import local_date

from civicgrid_grid.domain.codes import CommunityCode, GridCode
from civicgrid_grid.domain.rules import (
    PREFIX, GridAggregate, InvalidInput, InvalidParameter, StateConflict, iso, subject, text, utc,
)
from civicgrid_grid.domain.rules import client_id as _client_id

RECORDED = PREFIX + "stability_sweep.recorded.v1"
EVENT_TYPES = (RECORDED,)
MAX_FACTORS = 200
_MONTH = re.compile(r"^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])$")


class FactorCategory(str, enum.Enum):
    LABOUR = "labour"  # 劳资纠纷, wage arrears
    LAND_AND_HOUSING = "land_and_housing"  # 征地拆迁, property
    NEIGHBOURHOOD = "neighbourhood"  # 邻里纠纷
    FAMILY = "family"  # 婚姻家庭
    PETITION = "petition"  # 信访
    SAFETY = "safety"  # 安全隐患
    OTHER = "other"


class FactorLevel(str, enum.Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class StabilitySweep(GridAggregate):
    stream_type = "stability_sweep"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        _, community, month = self.id.split(":")
        self.community = CommunityCode.parse(community, "community")
        self.month = month
        self.factors: list[dict[str, Any]] = []
        self.recorded = False

    @staticmethod
    def stream_for(community: str, month: str) -> str:
        if not isinstance(month, str) or not _MONTH.match(month):
            raise InvalidParameter("invalid_month", "a month is YYYY-MM", parameter=("month", "path"))
        return f"stability-sweep:{community}:{month}"

    def record(self, factors: Sequence[Mapping[str, Any]], *, client_id: str, by: str, at: datetime) -> bool:
        at = utc(at)
        cid = _client_id(client_id)
        if self.recorded:
            if self._seen(cid, RECORDED):
                return False
            raise StateConflict("sweep_recorded", f"the sweep of {self.community} for {self.month} is recorded")
        if local_date(at).isoformat()[:7] < self.month:  # China's month, not UTC's
            raise InvalidParameter("month_in_future", f"{self.month} has not begun", parameter=("month", "path"))
        if not isinstance(factors, (list, tuple)) or len(factors) > MAX_FACTORS:
            raise InvalidInput("invalid_factors", f"at most {MAX_FACTORS} factors", field="factors")
        found = []
        for i, f in enumerate(factors):
            at_ = f"factors/{i}"
            try:
                category = FactorCategory(f.get("category"))
            except ValueError:
                raise InvalidInput("unknown_category", "see FactorCategory", field=f"{at_}/category") from None
            try:
                level = FactorLevel(f.get("level"))
            except ValueError:
                raise InvalidInput("unknown_level", "low, medium or high", field=f"{at_}/level") from None
            grid = GridCode.in_community(f.get("grid"), self.community, f"{at_}/grid")
            found.append({"category": category.value, "level": level.value, "grid": grid.value,
                          "summary": text(f.get("summary"), f"{at_}/summary", limit=500)})
        self._emit(RECORDED, {"community": self.community.value, "month": self.month, "factors": found,
                              "client_id": cid, "by": subject(by), "at": iso(at)})
        return True

    @applies(RECORDED)
    def _recorded(self, d: Mapping[str, Any]) -> None:
        self.recorded = True
        self.factors = list(d["factors"])
