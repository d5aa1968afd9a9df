"""The project's own contracts/ folder passes the compatibility check (BACKWARD_TRANSITIVE).

This is the gate for every schema change: a pull request that narrows a published schema
within its major version fails here with the event type, revision and JSON pointer.
"""
from __future__ import annotations

from contract_evolution import check_contracts, current_schemas
from civicgrid_common.paths import contracts_dir


def test_contracts_folder_has_no_breaking_change() -> None:
    findings = check_contracts(contracts_dir(), max_examples=50)
    assert not findings, "\n" + "\n".join(map(str, findings))


def test_no_schema_file_hides_from_the_check() -> None:
    # The check reads events/<type>.schema.json and events/history/<type>/<n>.schema.json only;
    # a JSON file anywhere else under events/ would go unchecked.
    events = contracts_dir() / "events"
    checked = set(current_schemas(contracts_dir()).values())
    checked |= set(events.glob("history/*/*.schema.json"))
    assert sorted(p for p in events.rglob("*.json") if p not in checked) == []
