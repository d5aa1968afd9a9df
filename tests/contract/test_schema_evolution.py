"""The BACKWARD_TRANSITIVE checker itself: it must fail on breaking pairs and pass additive ones.

Fixture pairs live in fixtures/evolution/<case>/{old,new}.schema.json; a case named
`breaking_*` must be reported, a case named `compatible_*` must not. Each pair is laid out
as a real contracts folder (history/<type>/1.schema.json + the current file + AsyncAPI), so
the folder logic and the CLI are exercised too.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from contract_evolution import (
    check_contracts,
    generated_breaks,
    structural_breaks,
)

FIXTURES = Path(__file__).parent / "fixtures" / "evolution"
TOOL = Path(__file__).resolve().parents[2] / "tools" / "contract_evolution.py"
EVENT_TYPE = "civicgrid.test.parcel.registered.v1"
BREAKING = sorted(p.name for p in FIXTURES.iterdir() if p.name.startswith("breaking_"))
COMPATIBLE = sorted(p.name for p in FIXTURES.iterdir() if p.name.startswith("compatible_"))

# The JSON pointer each breaking case must be reported at.
EXPECTED_POINTER = {
    "breaking_removed_field": "/properties/note",
    "breaking_renamed_field": "/properties/note",
    "breaking_new_required_field": "/required",
    "breaking_narrowed_type": "/properties/weight/type",
    "breaking_narrowed_enum": "/properties/status/enum",
    "breaking_tightened_additional_properties": "/additionalProperties",
    "breaking_tightened_min_length": "/properties/parcel_id/minLength",
    "breaking_added_format": "/properties/note/format",
    "breaking_changed_title": "/title",
}
# Cases whose narrowing shows in data (an instance of the old revision the new one rejects);
# a changed title or an added format (not asserted by default in 2020-12) does not.
DATA_VISIBLE = {
    "breaking_removed_field", "breaking_renamed_field", "breaking_new_required_field",
    "breaking_narrowed_type", "breaking_narrowed_enum", "breaking_tightened_additional_properties",
    "breaking_tightened_min_length",
}


def load_pair(case: str) -> tuple[dict, dict]:
    d = FIXTURES / case
    return (json.loads((d / "old.schema.json").read_text("utf-8")),
            json.loads((d / "new.schema.json").read_text("utf-8")))


def contracts_folder(tmp_path: Path, case: str) -> Path:
    """A contracts folder where the pair's old schema is revision 1 and the new one current."""
    root = tmp_path / "contracts"
    history = root / "events" / "history" / EVENT_TYPE
    history.mkdir(parents=True)
    shutil.copy(FIXTURES / case / "old.schema.json", history / "1.schema.json")
    shutil.copy(FIXTURES / case / "new.schema.json", root / "events" / f"{EVENT_TYPE}.schema.json")
    asyncapi = {
        "asyncapi": "3.0.0",
        "info": {"title": "fixture", "version": "1"},
        "components": {"messages": {"parcelRegistered": {
            "name": EVENT_TYPE, "payload": {"$ref": f"./events/{EVENT_TYPE}.schema.json"}}}},
    }
    (root / "asyncapi.yaml").write_text(yaml.safe_dump(asyncapi), "utf-8")
    return root


def test_fixture_cases_cover_the_required_breaks() -> None:
    for must in ("removed_field", "new_required_field", "narrowed_type", "narrowed_enum",
                 "tightened_additional_properties"):
        assert f"breaking_{must}" in BREAKING
    assert "compatible_added_optional_field" in COMPATIBLE
    assert set(BREAKING) == set(EXPECTED_POINTER)


@pytest.mark.parametrize("case", BREAKING)
def test_structural_rules_report_each_breaking_change(case: str) -> None:
    old, new = load_pair(case)
    findings = structural_breaks(EVENT_TYPE, "r1 -> r2 (current)", old, new)
    assert findings, f"{case} was not reported"
    assert EXPECTED_POINTER[case] in {f.pointer for f in findings}
    text = str(findings[0])
    assert EVENT_TYPE in text and "r1 -> r2" in text


@pytest.mark.parametrize("case", sorted(DATA_VISIBLE))
def test_generated_old_data_is_rejected_by_a_breaking_new_revision(case: str) -> None:
    old, new = load_pair(case)
    findings = generated_breaks(EVENT_TYPE, "r1 -> r2", old, new, max_examples=100)
    assert findings, f"no generated instance of {case}'s old revision was rejected by the new one"
    assert "rejected by the newest" in findings[0].message


@pytest.mark.parametrize("case", COMPATIBLE)
def test_compatible_changes_pass_both_checks(case: str) -> None:
    old, new = load_pair(case)
    assert structural_breaks(EVENT_TYPE, "r1 -> r2", old, new) == []
    assert generated_breaks(EVENT_TYPE, "r1 -> r2", old, new, max_examples=50) == []


@pytest.mark.parametrize("case", ["breaking_narrowed_enum", "compatible_added_optional_field"])
def test_folder_check_agrees_with_the_pair(tmp_path: Path, case: str) -> None:
    findings = check_contracts(contracts_folder(tmp_path, case), max_examples=30)
    assert bool(findings) == case.startswith("breaking_"), [str(f) for f in findings]


def test_every_earlier_revision_is_checked_not_only_the_last(tmp_path: Path) -> None:
    # r1 has `note`, r2 dropped it (already a mistake), r3 = r2: r1 -> r3 must still fail.
    root = contracts_folder(tmp_path, "breaking_removed_field")
    history = root / "events" / "history" / EVENT_TYPE
    shutil.copy(root / "events" / f"{EVENT_TYPE}.schema.json", history / "2.schema.json")
    findings = check_contracts(root, generated=False)
    assert any(f.revision.startswith("r1 -> r3") and f.pointer == "/properties/note" for f in findings)


def test_history_gaps_and_orphans_are_reported(tmp_path: Path) -> None:
    root = contracts_folder(tmp_path, "compatible_added_optional_field")
    history = root / "events" / "history" / EVENT_TYPE
    (history / "1.schema.json").rename(history / "2.schema.json")
    orphan = root / "events" / "history" / "civicgrid.test.gone.happened.v1"
    orphan.mkdir()
    messages = [str(f) for f in check_contracts(root, generated=False)]
    assert any("without gaps" in m for m in messages)
    assert any("civicgrid.test.gone.happened.v1" in m and "may not disappear" in m for m in messages)


def test_file_name_must_match_id_and_schema_must_be_valid(tmp_path: Path) -> None:
    root = contracts_folder(tmp_path, "compatible_added_optional_field")
    current = root / "events" / f"{EVENT_TYPE}.schema.json"
    schema = json.loads(current.read_text("utf-8"))
    schema["$id"] = "https://contracts.civicgrid.invalid/events/civicgrid.test.other.v1.schema.json"
    schema["properties"]["colour"] = {"type": "colour"}  # not a JSON type: invalid draft 2020-12
    current.write_text(json.dumps(schema), "utf-8")
    pointers = {f.pointer for f in check_contracts(root, generated=False)}
    assert "/$id" in pointers
    assert any(p.startswith("/properties/colour") for p in pointers)


def test_asyncapi_and_schema_files_must_agree(tmp_path: Path) -> None:
    root = contracts_folder(tmp_path, "compatible_added_optional_field")
    doc = yaml.safe_load((root / "asyncapi.yaml").read_text("utf-8"))
    doc["components"]["messages"]["ghost"] = {"name": "civicgrid.test.ghost.appeared.v1",
                                              "payload": {"$ref": "./events/civicgrid.test.ghost.appeared.v1.schema.json"}}
    del doc["components"]["messages"]["parcelRegistered"]
    (root / "asyncapi.yaml").write_text(yaml.safe_dump(doc), "utf-8")
    messages = [str(f) for f in check_contracts(root, generated=False)]
    assert any(EVENT_TYPE in m and "no AsyncAPI message" in m for m in messages)
    assert any("civicgrid.test.ghost.appeared.v1" in m and "no schema file" in m for m in messages)


def run_cli(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), str(folder), "--examples", "20"],
                          capture_output=True, text=True, timeout=300)


def test_cli_exits_non_zero_with_readable_messages(tmp_path: Path) -> None:
    result = run_cli(contracts_folder(tmp_path, "breaking_new_required_field"))
    assert result.returncode == 1
    assert f"{EVENT_TYPE} [r1 -> r2 (current)] at /required: property 'weight' is newly required" in result.stdout


def test_cli_exits_zero_on_compatible_contracts(tmp_path: Path) -> None:
    result = run_cli(contracts_folder(tmp_path, "compatible_added_optional_field"))
    assert result.returncode == 0, result.stdout + result.stderr
