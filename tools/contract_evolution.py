"""Schema evolution rules for event contracts: BACKWARD_TRANSITIVE within a major version.

An event type carries its major version in its name (`civicgrid.intake.case.accepted.v1`).
Within one major its JSON Schema may only evolve so that every *newest* reader still accepts
data written under *every earlier* revision: old events stay in the log forever and read
models are rebuilt from it. Anything else needs a new major (`.v2`), published side by side.

Layout (see contracts/README.md):
    contracts/events/<type>.schema.json                  the newest revision (revision N)
    contracts/events/history/<type>/<n>.schema.json      frozen earlier revisions, n = 1..N-1

Two independent checks compare each earlier revision with the newest one:
- `structural_breaks`: a rule-based diff (no property removed or renamed, no new required
  property, types/enums only widened, additionalProperties not tightened, formats, patterns
  and bounds not tightened, `$id` and title stable). Each finding names event type, revision
  and JSON pointer.
- `generated_breaks`: hypothesis-jsonschema generates instances of the earlier revision and
  each must validate against the newest one (catches what the rules do not model).

`check_contracts(contracts_dir)` runs everything over a contracts folder, including schema
validity (draft 2020-12), file name vs `$id`, and agreement with the AsyncAPI document's
messages. `python tools/contract_evolution.py contracts/` prints the findings, exit 1 if any. A tool of the
repository (the contract tests run it), not part of the runtime library.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from civicgrid_common.events import EVENT_TYPE_RE

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_SUFFIX = ".schema.json"

Schema = Mapping[str, Any] | bool


@dataclass(frozen=True)
class Finding:
    """One reason a contract is broken, phrased for the person who changed it."""

    event_type: str
    revision: str  # e.g. "r1 -> r3 (current)", or "current" for single-file problems
    pointer: str  # JSON pointer into the schema ("" = the root)
    message: str

    def __str__(self) -> str:
        return f"{self.event_type} [{self.revision}] at {self.pointer or '/'}: {self.message}"


# --- structural rules -----------------------------------------------------------------

def _ptr(base: str, *parts: str | int) -> str:
    for p in parts:
        base += "/" + str(p).replace("~", "~0").replace("/", "~1")
    return base


def _types(schema: Mapping[str, Any]) -> set[str] | None:
    """The set of JSON types a schema allows, None meaning any."""
    t = schema.get("type")
    if t is None:
        return None
    types = {t} if isinstance(t, str) else set(t)
    if "number" in types:
        types.add("integer")  # every integer is a number: number -> integer is a narrowing
    return types


# (keyword, direction): "min" bounds may not rise, "max" bounds may not fall.
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains")
# Keywords whose every change (or appearance) narrows the accepted data, and that we cannot
# compare for inclusion: a regex or a format name either stays identical or goes away.
_MUST_STAY_OR_GO = ("pattern", "format", "contentMediaType", "contentEncoding")
# Keywords the rules do not model: a change is reported, the property check may say more.
_OPAQUE = ("not", "if", "then", "else", "dependentRequired", "dependentSchemas", "contains",
           "propertyNames", "unevaluatedProperties", "unevaluatedItems", "$dynamicRef")


def _subschema_breaks(old: Schema, new: Schema, ptr: str) -> Iterator[tuple[str, str]]:
    """Yield (pointer, message) for every way `new` accepts less than `old`."""
    if old is False or new is True:
        return
    if old is True or new is False:
        if old != new:
            yield ptr, "schema narrowed from accepting anything (true) to a constrained schema"
        return
    if old == new:
        return
    yield from _type_breaks(old, new, ptr)
    yield from _value_set_breaks(old, new, ptr)
    yield from _bound_breaks(old, new, ptr)
    yield from _object_breaks(old, new, ptr)
    yield from _array_breaks(old, new, ptr)
    yield from _composition_breaks(old, new, ptr)
    if old.get("$ref") != new.get("$ref"):
        yield ptr, f"$ref changed from {old.get('$ref')!r} to {new.get('$ref')!r}"
    for kw in _OPAQUE:
        if old.get(kw) != new.get(kw) and kw in new:
            yield _ptr(ptr, kw), f"'{kw}' changed; this cannot be proven compatible, publish a new major"


def _type_breaks(old: Mapping[str, Any], new: Mapping[str, Any], ptr: str) -> Iterator[tuple[str, str]]:
    old_t, new_t = _types(old), _types(new)
    if new_t is None:
        return
    if old_t is None:
        yield _ptr(ptr, "type"), f"type restricted from any to {sorted(new_t)}"
    elif not old_t <= new_t:
        yield _ptr(ptr, "type"), f"type narrowed: {sorted(old_t - new_t)} no longer allowed"


def _value_set_breaks(old: Mapping[str, Any], new: Mapping[str, Any], ptr: str) -> Iterator[tuple[str, str]]:
    def allowed(s: Mapping[str, Any]) -> list[Any] | None:
        if "const" in s:
            return [s["const"]]
        if "enum" in s:
            return list(s["enum"])
        return None

    old_v, new_v = allowed(old), allowed(new)
    if new_v is None:
        return
    kw = "const" if "const" in new else "enum"
    if old_v is None:
        yield _ptr(ptr, kw), f"{kw} added: values outside {new_v!r} no longer allowed"
        return
    dropped = [v for v in old_v if v not in new_v]
    if dropped:
        yield _ptr(ptr, kw), f"enum narrowed: {dropped!r} no longer allowed"


def _bound_breaks(old: Mapping[str, Any], new: Mapping[str, Any], ptr: str) -> Iterator[tuple[str, str]]:
    for kw in _LOWER_BOUNDS + _UPPER_BOUNDS:
        if kw not in new:
            continue
        if kw not in old:
            yield _ptr(ptr, kw), f"{kw} {new[kw]!r} added"
        elif (kw in _LOWER_BOUNDS and new[kw] > old[kw]) or (kw in _UPPER_BOUNDS and new[kw] < old[kw]):
            yield _ptr(ptr, kw), f"{kw} tightened from {old[kw]!r} to {new[kw]!r}"
    if "multipleOf" in new:
        om, nm = old.get("multipleOf"), new["multipleOf"]
        # still compatible if every old multiple is a new one: old step a multiple of the new
        if om is None or (om / nm) != int(om / nm):
            yield _ptr(ptr, "multipleOf"), f"multipleOf tightened from {om!r} to {nm!r}"
    if new.get("uniqueItems") and not old.get("uniqueItems"):
        yield _ptr(ptr, "uniqueItems"), "uniqueItems added"
    for kw in _MUST_STAY_OR_GO:
        if kw in new and old.get(kw) != new[kw]:
            was = f"{old[kw]!r}" if kw in old else "none"
            yield _ptr(ptr, kw), f"{kw} tightened or changed from {was} to {new[kw]!r}"


def _object_breaks(old: Mapping[str, Any], new: Mapping[str, Any], ptr: str) -> Iterator[tuple[str, str]]:
    old_props: Mapping[str, Any] = old.get("properties", {})
    new_props: Mapping[str, Any] = new.get("properties", {})
    for name, old_sub in old_props.items():
        if name not in new_props:
            yield _ptr(ptr, "properties", name), f"property {name!r} removed or renamed"
        else:
            yield from _subschema_breaks(old_sub, new_props[name], _ptr(ptr, "properties", name))
    newly_required = sorted(set(new.get("required", ())) - set(old.get("required", ())))
    for name in newly_required:
        yield _ptr(ptr, "required"), f"property {name!r} is newly required"
    old_pat: Mapping[str, Any] = old.get("patternProperties", {})
    new_pat: Mapping[str, Any] = new.get("patternProperties", {})
    for rx, old_sub in old_pat.items():
        if rx in new_pat:
            yield from _subschema_breaks(old_sub, new_pat[rx], _ptr(ptr, "patternProperties", rx))
        elif new.get("additionalProperties", True) is not True:
            yield _ptr(ptr, "patternProperties", rx), f"patternProperties {rx!r} removed"
    # `additionalProperties` absent means true.
    old_ap, new_ap = old.get("additionalProperties", True), new.get("additionalProperties", True)
    if old_ap != new_ap:
        yield from (
            (p, f"additionalProperties tightened: {m}")
            for p, m in _subschema_breaks(old_ap, new_ap, _ptr(ptr, "additionalProperties"))
        )
    for kw in ("$defs", "definitions"):
        for name, old_sub in old.get(kw, {}).items():
            if name not in new.get(kw, {}):
                yield _ptr(ptr, kw, name), f"definition {name!r} removed"
            else:
                yield from _subschema_breaks(old_sub, new[kw][name], _ptr(ptr, kw, name))


def _array_breaks(old: Mapping[str, Any], new: Mapping[str, Any], ptr: str) -> Iterator[tuple[str, str]]:
    if "items" in new:
        yield from _subschema_breaks(old.get("items", True), new["items"], _ptr(ptr, "items"))
    old_prefix, new_prefix = old.get("prefixItems", []), new.get("prefixItems", [])
    for i, new_sub in enumerate(new_prefix):
        old_sub = old_prefix[i] if i < len(old_prefix) else old.get("items", True)
        yield from _subschema_breaks(old_sub, new_sub, _ptr(ptr, "prefixItems", i))


def _composition_breaks(old: Mapping[str, Any], new: Mapping[str, Any], ptr: str) -> Iterator[tuple[str, str]]:
    # anyOf/oneOf: every old alternative must still be there (same position); new ones may follow.
    for kw in ("anyOf", "oneOf"):
        if kw not in new:
            continue
        old_alts = old.get(kw)
        if old_alts is None:
            yield _ptr(ptr, kw), f"{kw} added"
            continue
        if len(new[kw]) < len(old_alts):
            yield _ptr(ptr, kw), f"{kw} lost {len(old_alts) - len(new[kw])} alternative(s)"
        for i, (o, n) in enumerate(zip(old_alts, new[kw])):
            yield from _subschema_breaks(o, n, _ptr(ptr, kw, i))
    # allOf: every new conjunct narrows; existing ones may only widen.
    if "allOf" in new:
        old_all = old.get("allOf", [])
        for i, n in enumerate(new["allOf"]):
            if i >= len(old_all):
                yield _ptr(ptr, "allOf", i), "allOf gained a constraint"
            else:
                yield from _subschema_breaks(old_all[i], n, _ptr(ptr, "allOf", i))


def structural_breaks(
    event_type: str, revision: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[Finding]:
    """Every rule-level incompatibility of `new` (the newest revision) with `old`."""
    findings = [
        Finding(event_type, revision, f"/{kw}", f"{kw} changed from {old.get(kw)!r} to {new.get(kw)!r}")
        for kw in ("$id", "title", "$schema")
        if old.get(kw) != new.get(kw)
    ]
    findings += [Finding(event_type, revision, p, m) for p, m in _subschema_breaks(old, new, "")]
    return findings


# --- property-based check ---------------------------------------------------------------

def generated_breaks(
    event_type: str,
    revision: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    max_examples: int = 50,
) -> list[Finding]:
    """Instances generated from `old` that `new` rejects (at most one, shrunk)."""
    # Imported here: only the contract check needs these test-time tools, services do not.
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.errors import HypothesisException
    from hypothesis_jsonschema import from_schema

    reader = Draft202012Validator(new, format_checker=Draft202012Validator.FORMAT_CHECKER)
    rejected: list[tuple[Any, str]] = []

    @settings(
        max_examples=max_examples,
        derandomize=True,  # the same examples on every run: a contract check must not flicker
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    # Formats hypothesis-jsonschema does not know are generated as arbitrary strings, which the
    # reader's format checker then rejects though no earlier writer could have sent them.
    @given(from_schema(dict(old), custom_formats={"uuid": st.uuids().map(str)}))
    def old_data_is_readable(instance: Any) -> None:
        error = next(iter(reader.iter_errors(instance)), None)
        if error is not None:
            rejected[:] = [(instance, f"{error.json_path}: {error.message}")]
            raise AssertionError(error.message)

    try:
        old_data_is_readable()
    except AssertionError:
        instance, why = rejected[-1]
        return [Finding(event_type, revision, "", f"data valid under the earlier revision is rejected by the "
                                                 f"newest: {json.dumps(instance, ensure_ascii=False)} ({why})")]
    except AttributeError as exc:
        # hypothesis-jsonschema uses Hypothesis internals; a too-new Hypothesis breaks it.
        raise RuntimeError(f"hypothesis-jsonschema cannot run with this Hypothesis version ({exc}); "
                           "see the pin in requirements-dev.txt") from exc
    except HypothesisException as exc:
        return [Finding(event_type, revision, "", f"cannot generate data for the earlier revision: {exc}")]
    return []


# --- a contracts folder -----------------------------------------------------------------

def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not readable JSON ({exc})") from exc


def event_type_of(path: Path) -> str:
    return path.name[: -len(SCHEMA_SUFFIX)]


def current_schemas(contracts_dir: Path) -> dict[str, Path]:
    """event type -> path of its newest schema."""
    return {event_type_of(p): p for p in sorted((contracts_dir / "events").glob(f"*{SCHEMA_SUFFIX}"))}


def history_of(contracts_dir: Path, event_type: str) -> list[Path]:
    """The frozen earlier revisions of an event type, oldest first (1.schema.json, 2...)."""
    folder = contracts_dir / "events" / "history" / event_type
    revs = [p for p in folder.glob(f"*{SCHEMA_SUFFIX}")] if folder.is_dir() else []
    return sorted(revs, key=lambda p: int(event_type_of(p)) if event_type_of(p).isdigit() else -1)


def _check_one_schema(event_type: str, revision: str, schema: Any) -> list[Finding]:
    def bad(pointer: str, message: str) -> Finding:
        return Finding(event_type, revision, pointer, message)

    if not EVENT_TYPE_RE.match(event_type):
        return [bad("", "file name is not an event type of the form name.parts.v<major>")]
    if not isinstance(schema, dict):
        return [bad("", "a schema file must hold a JSON object")]
    found: list[Finding] = []
    if schema.get("$schema") != DRAFT_2020_12:
        found.append(bad("/$schema", f"must be {DRAFT_2020_12!r}, is {schema.get('$schema')!r}"))
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        found.append(bad("/" + "/".join(map(str, exc.path)), f"not a valid draft 2020-12 schema: {exc.message}"))
    schema_id = schema.get("$id")
    if not isinstance(schema_id, str) or schema_id.rsplit("/", 1)[-1] != event_type + SCHEMA_SUFFIX:
        found.append(bad("/$id", f"$id {schema_id!r} must end in '/{event_type}{SCHEMA_SUFFIX}'"))
    return found


def check_event_type(
    contracts_dir: Path, event_type: str, *, generated: bool = True, max_examples: int = 50
) -> list[Finding]:
    current_path = current_schemas(contracts_dir).get(event_type)
    if current_path is None:
        return [Finding(event_type, "current", "", "no current schema file in events/")]
    newest = _load_json(current_path)
    history = history_of(contracts_dir, event_type)
    newest_rev = f"r{len(history) + 1} (current)"
    findings = _check_one_schema(event_type, newest_rev, newest)
    names = [event_type_of(p) for p in history]
    if names != [str(n) for n in range(1, len(history) + 1)]:
        findings.append(Finding(event_type, "history", "", f"history revisions must be 1..{len(history)} "
                                                           f"without gaps, found {names}"))
        return findings
    for path in history:
        old = _load_json(path)
        rev = f"r{event_type_of(path)} -> {newest_rev}"
        own = _check_one_schema(event_type, f"r{event_type_of(path)}", old)
        findings += own
        if own or not isinstance(newest, dict):
            continue
        breaks = structural_breaks(event_type, rev, old, newest)
        findings += breaks
        if generated and not breaks:
            findings += generated_breaks(event_type, rev, old, newest, max_examples=max_examples)
    return findings


def asyncapi_event_types(asyncapi: Mapping[str, Any]) -> dict[str, str | None]:
    """Messages of the AsyncAPI document named as event types -> their payload $ref."""
    messages = (asyncapi.get("components") or {}).get("messages") or {}
    out: dict[str, str | None] = {}
    for msg in messages.values():
        name = msg.get("name", "") if isinstance(msg, dict) else ""
        if EVENT_TYPE_RE.match(name):
            out[name] = (msg.get("payload") or {}).get("$ref")
    return out


def check_asyncapi_messages(contracts_dir: Path) -> list[Finding]:
    """Every event type with a schema is an AsyncAPI message, and every such message has one."""
    doc = yaml.safe_load((contracts_dir / "asyncapi.yaml").read_text(encoding="utf-8"))
    declared = asyncapi_event_types(doc)
    schemas = current_schemas(contracts_dir)
    found = [Finding(t, "asyncapi", "/components/messages", "has a schema in events/ but is no AsyncAPI message")
             for t in sorted(set(schemas) - set(declared))]
    for t, ref in sorted(declared.items()):
        expected = f"./events/{t}{SCHEMA_SUFFIX}"
        if t not in schemas:
            found.append(Finding(t, "asyncapi", "/components/messages", f"AsyncAPI message has no schema file {expected}"))
        elif ref != expected:
            found.append(Finding(t, "asyncapi", "/components/messages", f"payload $ref is {ref!r}, must be {expected!r}"))
    return found


def check_contracts(contracts_dir: Path, *, generated: bool = True, max_examples: int = 50) -> list[Finding]:
    """Everything this module checks, over a whole contracts folder."""
    contracts_dir = Path(contracts_dir)
    findings: list[Finding] = []
    for event_type in current_schemas(contracts_dir):
        findings += check_event_type(contracts_dir, event_type, generated=generated, max_examples=max_examples)
    history_root = contracts_dir / "events" / "history"
    if history_root.is_dir():
        for orphan in sorted(p.name for p in history_root.iterdir() if p.name not in current_schemas(contracts_dir)):
            findings.append(Finding(orphan, "history", "", "history without a current schema: a published "
                                                           "event type may not disappear within its major"))
    if (contracts_dir / "asyncapi.yaml").exists():
        findings += check_asyncapi_messages(contracts_dir)
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tools/contract_evolution.py",
        description="Check event schemas in a contracts folder (BACKWARD_TRANSITIVE within a major).",
    )
    parser.add_argument("contracts_dir", type=Path, nargs="?", default=Path("contracts"))
    parser.add_argument("--no-generated", action="store_true", help="structural rules only, no generated data")
    parser.add_argument("--examples", type=int, default=50, help="generated examples per earlier revision")
    args = parser.parse_args(argv)
    if not (args.contracts_dir / "events").is_dir():
        print(f"{args.contracts_dir}: no events/ folder; is this a contracts folder?", file=sys.stderr)
        return 2
    findings = check_contracts(args.contracts_dir, generated=not args.no_generated, max_examples=args.examples)
    for f in findings:
        print(f)
    n = len(current_schemas(args.contracts_dir))
    print(f"{len(findings)} breaking change(s) or error(s) in {n} event type(s)", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
