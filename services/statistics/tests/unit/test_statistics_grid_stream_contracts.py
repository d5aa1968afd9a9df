"""The grid KPI tests' generated stream speaks the grid service's contracts: every event of a
type contracts/ knows validates against its schema, so the figures are tested on the data the
grid service really publishes (the two deliberate odd ones out are a type of another major and
a sweep made up for "counts for nothing")."""
from __future__ import annotations

from civicgrid_common.contracts import Contracts, SchemaViolation
from civicgrid_common.paths import contracts_dir

from statistics_grid_stream import generate_grid


def test_every_generated_grid_event_of_a_contracted_type_is_valid() -> None:
    contracts = Contracts(contracts_dir())
    known = set(contracts.event_types())
    faults, checked = [], 0
    for e in generate_grid(incidents=60, disputes=24).events:
        if e.type.endswith(".v2") or "stability_sweep" in e.type:
            continue
        if e.type not in known:
            faults.append(f"{e.type}: no schema")
            continue
        try:
            contracts.validate(e.type, e.data)
            checked += 1
        except SchemaViolation as exc:
            faults.append(f"{e.type}: {exc}")
    assert checked > 100
    assert not faults, "\n".join(faults[:20])
