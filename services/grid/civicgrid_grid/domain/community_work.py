"""Work that departments push into a community (任务进社区), and the access system (准入) that
decides whether the community takes it. Pure: no I/O.

The district decides access applications in approval (`civicgrid.approval.access`): an
approved one lets a department push one kind of work into named communities between two
dates. grid keeps those grants (adapters) and gives them to `CommunityWork.receive` as values.
Work without a grant in force is refused with the reason, and the refusal is an event too:
leaders count how often departments try (the reform's point is that they stop).

One aggregate per community, stream `community-work:<community>`.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Iterable, Mapping

from civicgrid_common.aggregate import applies
from civicgrid_common.calendar.working_days import local_date

from civicgrid_grid.domain.codes import CommunityCode
from civicgrid_grid.domain.rules import PREFIX, GridAggregate, InvalidInput, iso, subject, text, utc
from civicgrid_grid.domain.rules import client_id as _client_id

_P = PREFIX + "community_work."
ACCEPTED = _P + "accepted.v1"
REFUSED = _P + "refused.v1"
EVENT_TYPES = (ACCEPTED, REFUSED)
_DEPARTMENT = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


class WorkKind(str, enum.Enum):
    """The kinds of work an access application names (approval's access schema)."""

    SIGNBOARD = "signboard"  # 挂牌
    INSPECTION = "inspection"  # 检查评比
    SURVEY = "survey"  # 调查统计
    TRAINING = "training"
    SUBSCRIPTION = "subscription"  # 报刊征订
    OTHER = "other"


@dataclass(frozen=True)
class AccessGrant:
    """An approved access application (准入), as approval decided it."""

    application_id: str
    department: str
    work_kind: WorkKind
    communities: frozenset[str]
    valid_from: date
    valid_until: date

    def covers(self, department: str, kind: WorkKind, community: str, day: date) -> bool:
        return (self.department == department and self.work_kind is kind and community in self.communities
                and self.valid_from <= day <= self.valid_until)


class CommunityWork(GridAggregate):
    stream_type = "community_work"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.community = CommunityCode.parse(self.id.removeprefix("community-work:"), "community")
        self.accepted: dict[str, dict[str, Any]] = {}  # by client id
        self.refused = 0

    @staticmethod
    def stream_for(community: str) -> str:
        return f"community-work:{community}"

    def receive(self, *, department: str, work_kind: str, title: str, description: str | None,
                grants: Iterable[AccessGrant], client_id: str, by: str, at: datetime) -> tuple[bool, str | None]:
        """Take the work if an access grant is in force for this department, kind and community
        today (China's date); else record the refusal. Returns (accepted, the grant's id or the
        reason). Sent again with the same client id: the first answer, recorded once."""
        at = utc(at)
        cid = _client_id(client_id)
        if self._seen(cid, ACCEPTED, REFUSED):
            first = self.accepted.get(cid)
            return (True, first["grant"]) if first else (False, "no_access_grant")
        if not isinstance(department, str) or not _DEPARTMENT.match(department):
            raise InvalidInput("invalid_department", "a department's code", field="department")
        try:
            kind = WorkKind(work_kind)
        except ValueError:
            known = ", ".join(k.value for k in WorkKind)
            raise InvalidInput("unknown_work_kind", f"the kinds of work are {known}", field="work_kind") from None
        day = local_date(at)
        grant = next((g for g in grants if g.covers(department, kind, self.community.value, day)), None)
        data = {"community": self.community.value, "department": department, "work_kind": kind.value,
                "title": text(title, "title", limit=200),
                "description": text(description, "description", required=False), "client_id": cid,
                "by": subject(by), "at": iso(at)}
        if grant is None:
            reason = (f"no access grant (准入) of the district lets {department} push {kind.value} work into "
                      f"community {self.community} on {day}")
            self._emit(REFUSED, {**data, "reason": "no_access_grant", "detail": reason})
            return False, "no_access_grant"
        self._emit(ACCEPTED, {**data, "grant": grant.application_id, "grant_valid_until": grant.valid_until.isoformat()})
        return True, grant.application_id

    @applies(ACCEPTED)
    def _accepted(self, d: Mapping[str, Any]) -> None:
        self.accepted[d["client_id"]] = dict(d)

    @applies(REFUSED)
    def _refused(self, d: Mapping[str, Any]) -> None:
        self.refused += 1
