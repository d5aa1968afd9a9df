"""contracts/asyncapi.yaml: valid AsyncAPI 3.0.0 (official schema) and true to our conventions.

Conventions (see contracts/README.md):
- every channel is a Kafka topic with `bindings.kafka` giving partitions and topicConfiguration
  (`make up` creates topics exactly as declared);
- an event topic keeps everything: `retention.ms: -1`;
- every message on a channel names an event type whose schema file exists, except on the
  dead-letter topic, which carries other topics' records unchanged.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

from contract_evolution import SCHEMA_SUFFIX
from civicgrid_common.events import EVENT_TYPE_RE
from civicgrid_common.paths import contracts_dir

CONTRACTS = contracts_dir()
VENDORED = CONTRACTS / "vendor" / "asyncapi-specs" / "asyncapi-3.0.0.schema.json"
VENDORED_SHA256 = "d4571a420e6ffb7fcc7066c95a6db1202f299a3c51daa103d0706bf30f95e626"
DEAD_LETTER_ADDRESS = "civicgrid.deadletter"


@pytest.fixture(scope="module")
def official_schema() -> dict[str, Any]:
    return json.loads(VENDORED.read_text("utf-8"))


@pytest.fixture
def document() -> dict[str, Any]:
    return yaml.safe_load((CONTRACTS / "asyncapi.yaml").read_text("utf-8"))


def spec_errors(schema: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    errors = list(Draft7Validator(schema).iter_errors(doc))
    if not errors:
        return []
    best = best_match(errors)
    return [f"{'/'.join(map(str, best.absolute_path)) or '/'}: {best.message[:300]}"] + [
        f"{'/'.join(map(str, e.absolute_path)) or '/'}: {e.message[:120]}" for e in errors if e is not best]


def resolve(doc: dict[str, Any], node: Any) -> Any:
    """Follow local `$ref`s ('#/components/messages/...') inside the AsyncAPI document."""
    while isinstance(node, dict) and str(node.get("$ref", "")).startswith("#/"):
        node = _walk(doc, node["$ref"])
    return node


def _walk(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def convention_problems(doc: dict[str, Any], contracts: Path) -> list[str]:
    problems: list[str] = []
    for cid, channel in (doc.get("channels") or {}).items():
        kafka = ((channel or {}).get("bindings") or {}).get("kafka") or {}
        for field in ("partitions", "topicConfiguration"):
            if field not in kafka:
                problems.append(f"channel {cid}: bindings.kafka.{field} missing")
        is_dead_letter = channel.get("address") == DEAD_LETTER_ADDRESS
        names = [resolve(doc, m).get("name", "") for m in (channel.get("messages") or {}).values()]
        if is_dead_letter:
            continue
        if not names:
            problems.append(f"channel {cid}: carries no message")
        if (kafka.get("topicConfiguration") or {}).get("retention.ms") != -1:
            problems.append(f"channel {cid}: event topic must keep everything (retention.ms: -1)")
        for name in names:
            if not EVENT_TYPE_RE.match(name):
                problems.append(f"channel {cid}: message {name!r} does not name an event type")
            elif not (contracts / "events" / f"{name}{SCHEMA_SUFFIX}").is_file():
                problems.append(f"channel {cid}: event type {name} has no schema events/{name}{SCHEMA_SUFFIX}")
    return problems


def test_vendored_schema_is_the_noted_release() -> None:
    assert hashlib.sha256(VENDORED.read_bytes()).hexdigest() == VENDORED_SHA256
    assert (VENDORED.parent / "LICENSE").is_file()


def test_asyncapi_document_is_valid_asyncapi_3(official_schema: dict, document: dict) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert spec_errors(official_schema, document) == []


@pytest.mark.parametrize("breakage", ["partitions_not_a_number", "no_info", "unknown_operation_action"])
def test_official_schema_rejects_an_invalid_document(official_schema: dict, document: dict, breakage: str) -> None:
    bad = copy.deepcopy(document)
    if breakage == "partitions_not_a_number":
        next(iter(bad["channels"].values()))["bindings"]["kafka"]["partitions"] = "three"
    elif breakage == "no_info":
        del bad["info"]
    else:
        next(iter(bad["operations"].values()))["action"] = "broadcast"
    assert spec_errors(official_schema, bad)


def test_asyncapi_document_follows_our_conventions(document: dict) -> None:
    assert document.get("channels"), "the AsyncAPI document declares no topic"
    assert convention_problems(document, CONTRACTS) == []


def test_convention_check_catches_violations(document: dict, tmp_path: Path) -> None:
    doc = copy.deepcopy(document)
    doc["channels"]["parcels"] = {
        "address": "civicgrid.test.parcels",
        "bindings": {"kafka": {"partitions": 3, "topicConfiguration": {"retention.ms": 604800000}}},
        "messages": {"registered": {"$ref": "#/components/messages/parcelRegistered"}},
    }
    doc["components"]["messages"]["parcelRegistered"] = {"name": "civicgrid.test.parcel.registered.v1"}
    doc["channels"]["bare"] = {"address": "civicgrid.test.bare", "messages": {}}
    problems = convention_problems(doc, tmp_path)
    assert "channel parcels: event topic must keep everything (retention.ms: -1)" in problems
    assert any("parcels" in p and "has no schema" in p for p in problems)
    assert "channel bare: bindings.kafka.partitions missing" in problems
    assert "channel bare: carries no message" in problems
