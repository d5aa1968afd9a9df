"""The project's own contracts/ folder passes the compatibility check (BACKWARD_TRANSITIVE).

This is the gate for every schema change: a pull request that narrows a published schema
within its major version fails here with the event type, revision and JSON pointer.
"""
from __future__ import annotations

from civicgrid_common.compat import check_contracts, current_schemas
from civicgrid_common.paths import contracts_dir


def test_contracts_folder_has_no_breaking_change() -> None:
    findings = check_contracts(contracts_dir(), max_examples=50)
    assert not findings, "\n" + "\n".join(map(str, findings))


def test_every_schema_file_is_found_by_the_check() -> None:
    # The check walks events/*.schema.json; a schema placed elsewhere would go unchecked.
    stray = [p for p in (contracts_dir() / "events").rglob("*.json")
             if p.parent.name != "events" and "history" not in p.relative_to(contracts_dir()).parts]
    assert stray == []
    assert set(current_schemas(contracts_dir())) == {
        p.name.removesuffix(".schema.json") for p in (contracts_dir() / "events").glob("*.schema.json")}
