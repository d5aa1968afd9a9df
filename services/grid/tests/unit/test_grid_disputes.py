"""Disputes: filed, mediated (who, when, outcome), followed up, settled by an agreement or
referred; the mediation rate and the mediation success rate."""
from __future__ import annotations

from datetime import timedelta

import pytest

from civicgrid_grid.domain.codes import GridCode
from civicgrid_grid.domain.disputes import (
    FILED, FOLLOWED_UP, MEDIATED, REFERRED, SETTLED, Dispute, DisputeState, ReferredTo, mediation_rate,
    mediation_success_rate,
)
from civicgrid_grid.domain.rules import InvalidInput, StateConflict

from grid_builders import china, grid_code, replayed, state

GRID = GridCode(grid_code(2))
T = china(2026, 3, 2, 10, 0)
H = timedelta(hours=1)
WORKER, MEDIATOR = "gw-0031", "mediator-0004"


def filed(id: str = "dsp-1", urgency: str = "general") -> Dispute:
    d = Dispute(id)
    d.file(grid=GRID, nature="neighbourhood", urgency=urgency, summary="water leaking into the flat below",
           parties=2, by=WORKER, at=T, client_id=f"c-{id}")
    return d


def test_a_dispute_mediated_to_an_agreement_settled_and_followed_up() -> None:
    d = filed()
    d.mediate(mediator=MEDIATOR, outcome="failed", note="upstairs refuses to open the door", by=WORKER, at=T + H)
    with pytest.raises(StateConflict) as refused:
        d.settle(by=WORKER, at=T + 2 * H)
    assert refused.value.code == "no_agreement"
    d.follow_up(note="both calm", holding=True, by=WORKER, at=T + 3 * H)
    d.mediate(mediator=MEDIATOR, outcome="agreed", note="plumber at shared cost", by=WORKER, at=T + 24 * H)
    d.settle(note="agreement signed", by=WORKER, at=T + 25 * H)
    d.follow_up(note="leak fixed, agreement kept", holding=True, by=WORKER, at=T + 24 * 7 * H)
    assert [e.type for e in d.pending_events] == [FILED, MEDIATED, FOLLOWED_UP, MEDIATED, SETTLED, FOLLOWED_UP]
    assert FILED == "civicgrid.grid.dispute.filed.v1"
    assert d.state is DisputeState.SETTLED and d.mediation_succeeded and d.follow_ups == 2
    assert [(m["mediator"], m["outcome"]) for m in d.mediations] == [(MEDIATOR, "failed"), (MEDIATOR, "agreed")]
    assert d.mediations[1]["at"] == (T + 24 * H).isoformat()
    assert state(replayed(d)) == state(d)


def test_a_dispute_referred_to_the_police_station() -> None:
    d = filed(urgency="urgent")
    d.refer(to="police_station", reason="threats of violence", by=WORKER, at=T + H)
    assert d.state is DisputeState.REFERRED and d.referred_to is ReferredTo.POLICE_STATION
    assert d.pending_events[-1].type == REFERRED and d.pending_events[-1].data["mediated"] is False
    for command in (lambda: d.mediate(mediator=MEDIATOR, outcome="agreed", by=WORKER, at=T + 2 * H),
                    lambda: d.settle(by=WORKER, at=T + 2 * H),
                    lambda: d.refer(to="judicial_office", reason="x", by=WORKER, at=T + 2 * H)):
        with pytest.raises(StateConflict) as refused:
            command()
        assert refused.value.code == "illegal_transition"


def test_a_follow_up_comes_after_a_mediation() -> None:
    with pytest.raises(StateConflict):
        filed().follow_up(note="x", holding=True, by=WORKER, at=T + H)


@pytest.mark.parametrize("kwargs, field", [
    ({"nature": "gossip"}, "nature"), ({"urgency": "whenever"}, "urgency"), ({"parties": 1}, "parties"),
    ({"summary": ""}, "summary"),
])
def test_a_filing_that_does_not_hold_is_refused_naming_the_field(kwargs: dict, field: str) -> None:
    d = Dispute("dsp-bad")
    with pytest.raises(InvalidInput) as refused:
        d.file(**{"grid": GRID, "nature": "family", "urgency": "general", "summary": "s", "parties": 2, "by": WORKER,
                  "at": T, "client_id": "c", **kwargs})
    assert refused.value.field == field and d.version == 0


def test_mediation_outcome_and_referral_target_are_checked() -> None:
    d = filed()
    with pytest.raises(InvalidInput) as refused:
        d.mediate(mediator=MEDIATOR, outcome="maybe", by=WORKER, at=T + H)
    assert refused.value.field == "outcome"
    with pytest.raises(InvalidInput) as refused:
        d.refer(to="the_press", reason="x", by=WORKER, at=T + H)
    assert refused.value.field == "to"


def test_filing_twice_from_the_same_phone_is_recorded_once() -> None:
    d = filed()
    assert d.file(grid=GRID, nature="neighbourhood", urgency="general", summary="again", parties=2, by=WORKER, at=T,
                  client_id="c-dsp-1") is False
    with pytest.raises(StateConflict):
        d.file(grid=GRID, nature="neighbourhood", urgency="general", summary="again", parties=2, by=WORKER, at=T,
               client_id="c-other")
    assert d.version == 1


def test_mediation_rate_and_mediation_success_rate() -> None:
    settled_1, settled_2, failed_referred, never_mediated = (filed(f"dsp-{n}") for n in range(4))
    for d in (settled_1, settled_2):
        d.mediate(mediator=MEDIATOR, outcome="agreed", by=WORKER, at=T + H)
        d.settle(by=WORKER, at=T + 2 * H)
    failed_referred.mediate(mediator=MEDIATOR, outcome="failed", by=WORKER, at=T + H)
    failed_referred.refer(to="judicial_office", reason="needs a court", by=WORKER, at=T + 2 * H)
    never_mediated.refer(to="police_station", reason="a crime", by=WORKER, at=T + H)
    disputes = [settled_1, settled_2, failed_referred, never_mediated, Dispute("never-filed")]
    rate = mediation_rate(disputes)
    assert (rate.numerator, rate.denominator) == (3, 4) and rate.value == 0.75
    success = mediation_success_rate(disputes)
    assert (success.numerator, success.denominator) == (2, 3)
    assert mediation_rate([]).value is None and mediation_success_rate([never_mediated]).value is None
