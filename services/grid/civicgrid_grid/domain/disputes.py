"""Disputes (矛盾纠纷) and their mediation (人民调解), part of the stability work. Pure: no I/O.

    file ──▶ filed ──mediate──▶ mediating ──settle (an agreement reached)──▶ settled ──follow up──▶ …
               │                  │  ▲ mediate again
               └──────────────────┴──refer (to the judicial office 司法所 or the police station 派出所)──▶ referred

- Filed with its nature and urgency in a grid; no personal data (parties are counted, not named).
- Each mediation records who mediated, when, and the outcome; a dispute may be mediated
  more than once.
- Settled only by an agreement: the last mediation's outcome must be `agreed` (调解成功).
- Followed up (回访) after a mediation, to see whether it holds; followed up after settlement too.
- Referred when mediation cannot or must not settle it.

Figures: the mediation rate (mediated ÷ filed) and the mediation success rate (settled by
agreement ÷ mediated), `mediation_rate` and `mediation_success_rate`.
"""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Iterable, Mapping

from civicgrid_common.aggregate import applies

from civicgrid_grid.domain.codes import GridCode
from civicgrid_grid.domain.rates import Rate
from civicgrid_grid.domain.rules import (
    PREFIX, GridAggregate, InvalidInput, StateConflict, instant, iso, subject, text, utc,
)
from civicgrid_grid.domain.rules import client_id as _client_id

_P = PREFIX + "dispute."
FILED = _P + "filed.v1"
MEDIATED = _P + "mediated.v1"
FOLLOWED_UP = _P + "followed_up.v1"
SETTLED = _P + "settled.v1"
REFERRED = _P + "referred.v1"
EVENT_TYPES = (FILED, MEDIATED, FOLLOWED_UP, SETTLED, REFERRED)

MAX_PARTIES = 10_000  # a collective dispute (群体性纠纷) may have hundreds


class Nature(str, enum.Enum):
    NEIGHBOURHOOD = "neighbourhood"  # 邻里纠纷
    FAMILY = "family"  # 婚姻家庭
    PROPERTY_MANAGEMENT = "property_management"  # 物业纠纷
    LABOUR = "labour"  # 劳资纠纷
    LAND_AND_HOUSING = "land_and_housing"  # 土地房屋, 拆迁
    DEBT = "debt"  # 债务
    CONSUMER = "consumer"  # 消费
    OTHER = "other"


class Urgency(str, enum.Enum):
    GENERAL = "general"  # 一般
    URGENT = "urgent"  # 紧急: may escalate (易激化)
    MAJOR = "major"  # 重大: many people or a threat to safety


class Outcome(str, enum.Enum):
    AGREED = "agreed"  # 调解成功, an agreement reached
    PARTIAL = "partial"  # 部分达成
    FAILED = "failed"  # 调解不成


class ReferredTo(str, enum.Enum):
    JUDICIAL_OFFICE = "judicial_office"  # 司法所
    POLICE_STATION = "police_station"  # 派出所


class DisputeState(str, enum.Enum):
    NEW = "new"
    FILED = "filed"
    MEDIATING = "mediating"
    SETTLED = "settled"
    REFERRED = "referred"


def _enum(kind: type[enum.Enum], value: Any, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(str(m.value) for m in kind)
        raise InvalidInput(f"unknown_{field}", f"{field} is one of {known}", field=field) from None


class Dispute(GridAggregate):
    stream_type = "dispute"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.state = DisputeState.NEW
        self.grid: GridCode | None = None
        self.nature: Nature | None = None
        self.urgency: Urgency | None = None
        self.mediations: list[dict[str, Any]] = []  # who, when, outcome
        self.follow_ups = 0
        self.referred_to: ReferredTo | None = None
        self.filed_at: datetime | None = None

    @property
    def mediated(self) -> bool:
        return bool(self.mediations)

    @property
    def mediation_succeeded(self) -> bool:
        return self.state is DisputeState.SETTLED

    # ------------------------------------------------------------------ commands

    def file(self, *, grid: GridCode, nature: str, urgency: str, summary: str, parties: int, by: str,
             at: datetime, client_id: str) -> bool:
        if self.state is not DisputeState.NEW:
            if self._seen(client_id, FILED):
                return False
            raise StateConflict("already_filed", f"dispute {self.id} is filed already")
        at = utc(at)
        if isinstance(parties, bool) or not isinstance(parties, int) or not 2 <= parties <= MAX_PARTIES:
            raise InvalidInput("invalid_parties", f"a dispute has 2 to {MAX_PARTIES} parties", field="parties")
        self._emit(FILED, {"grid": grid.value, "nature": _enum(Nature, nature, "nature").value,
                           "urgency": _enum(Urgency, urgency, "urgency").value, "summary": text(summary, "summary"),
                           "parties": parties, "client_id": _client_id(client_id), "by": subject(by),
                           "at": iso(at)})
        return True

    def mediate(self, *, mediator: str, outcome: str, note: str | None = None, by: str, at: datetime,
                client_id: str | None = None) -> bool:
        if self._seen(client_id, MEDIATED):
            return False
        at = self._at(at)
        self._require((DisputeState.FILED, DisputeState.MEDIATING), "mediate")
        self._emit(MEDIATED, {"mediator": subject(mediator, "mediator"),
                              "outcome": _enum(Outcome, outcome, "outcome").value,
                              "note": text(note, "note", required=False), "client_id": client_id,
                              "by": subject(by), "at": iso(at)})
        return True

    def follow_up(self, *, note: str, holding: bool, by: str, at: datetime, client_id: str | None = None) -> bool:
        """回访: is the agreement holding, is the dispute calming down?"""
        if self._seen(client_id, FOLLOWED_UP):
            return False
        at = self._at(at)
        self._require((DisputeState.MEDIATING, DisputeState.SETTLED), "follow up")
        if not isinstance(holding, bool):
            raise InvalidInput("invalid_flag", "holding is true or false", field="holding")
        self._emit(FOLLOWED_UP, {"note": text(note, "note"), "holding": holding, "client_id": client_id,
                                 "by": subject(by), "at": iso(at)})
        return True

    def settle(self, *, note: str | None = None, by: str, at: datetime, client_id: str | None = None) -> bool:
        if self._seen(client_id, SETTLED):
            return False
        at = self._at(at)
        self._require(DisputeState.MEDIATING, "settle")
        if self.mediations[-1]["outcome"] != Outcome.AGREED.value:
            raise StateConflict("no_agreement", f"dispute {self.id}'s last mediation reached no agreement: "
                                "mediate again or refer it")
        self._emit(SETTLED, {"mediations": len(self.mediations), "note": text(note, "note", required=False),
                             "client_id": client_id, "by": subject(by), "at": iso(at)})
        return True

    def refer(self, *, to: str, reason: str, by: str, at: datetime, client_id: str | None = None) -> bool:
        if self._seen(client_id, REFERRED):
            return False
        at = self._at(at)
        self._require((DisputeState.FILED, DisputeState.MEDIATING), "refer")
        self._emit(REFERRED, {"to": _enum(ReferredTo, to, "to").value, "reason": text(reason, "reason", limit=500),
                              "mediated": self.mediated, "client_id": client_id, "by": subject(by),
                              "at": iso(at)})
        return True

    # ------------------------------------------------------------------ rules

    def _at(self, at: datetime) -> datetime:
        at = utc(at)
        self._not_before_last(at)
        return at

    def _require(self, states: DisputeState | tuple[DisputeState, ...], what: str) -> None:
        allowed = states if isinstance(states, tuple) else (states,)
        if self.state not in allowed:
            raise StateConflict("illegal_transition", f"cannot {what} dispute {self.id}: it is {self.state.value}",
                                state=self.state.value)

    # ------------------------------------------------------------------ appliers

    @applies(FILED)
    def _filed(self, d: Mapping[str, Any]) -> None:
        self.state = DisputeState.FILED
        self.grid = GridCode(d["grid"])
        self.nature = Nature(d["nature"])
        self.urgency = Urgency(d["urgency"])
        self.filed_at = instant(d["at"])

    @applies(MEDIATED)
    def _mediated(self, d: Mapping[str, Any]) -> None:
        self.state = DisputeState.MEDIATING
        self.mediations.append({"mediator": d["mediator"], "at": d["at"], "outcome": d["outcome"]})

    @applies(FOLLOWED_UP)
    def _followed_up(self, d: Mapping[str, Any]) -> None:
        self.follow_ups += 1

    @applies(SETTLED)
    def _settled(self, d: Mapping[str, Any]) -> None:
        self.state = DisputeState.SETTLED

    @applies(REFERRED)
    def _referred(self, d: Mapping[str, Any]) -> None:
        self.state = DisputeState.REFERRED
        self.referred_to = ReferredTo(d["to"])


def mediation_rate(disputes: Iterable[Dispute]) -> Rate:
    """调解率: disputes mediated at least once ÷ disputes filed."""
    filed = [d for d in disputes if d.state is not DisputeState.NEW]
    return Rate(sum(d.mediated for d in filed), len(filed))


def mediation_success_rate(disputes: Iterable[Dispute]) -> Rate:
    """调解成功率: disputes settled by an agreement ÷ disputes mediated."""
    mediated = [d for d in disputes if d.mediated]
    return Rate(sum(d.mediation_succeeded for d in mediated), len(mediated))
