"""contracts/ as this deployment publishes them, read once at start-up.

Every event's CloudEvents `dataschema` is `<schema_base_url>/events/<type>.schema.json`
(cloudevents.dataschema_for); the gateway serves that document there, with that same URL as
the schema's `$id`, so that what an event names resolves and identifies itself by the name.
The files in contracts/ keep a placeholder `$id` (contracts.civicgrid.invalid): the base URL
is a setting per deployment, not part of the contract. Beside them: the AsyncAPI document, the
departments, and an index of it all at the base URL itself.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from civicgrid_common.cloudevents import dataschema_for
from civicgrid_common.contracts import Contracts

# Paths the gateway already answers: the published contracts may not sit under them.
_TAKEN = ("/api", "/open311", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/problems")


@dataclass(frozen=True)
class Document:
    body: bytes
    media_type: str
    etag: str  # strong: the bytes' digest, so a cache revalidates with If-None-Match


def _document(body: bytes, media_type: str) -> Document:
    return Document(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def mount_path(schema_base_url: str) -> str:
    """The path of the base URL, where the gateway serves the contracts ("/contracts" by default)."""
    path = urlsplit(schema_base_url).path.rstrip("/")
    if not path or any(path == taken or path.startswith(taken + "/") for taken in _TAKEN):
        raise ValueError(f"CIVICGRID_SCHEMA_BASE_URL {schema_base_url!r} must end in a path of its own "
                         f"(e.g. /contracts), not one the gateway serves otherwise ({', '.join(_TAKEN)})")
    return path


class PublishedContracts:
    """The documents by their path under the base URL ("events/<type>.schema.json", ...)."""

    def __init__(self, contracts: Contracts, schema_base_url: str) -> None:
        self.mount = mount_path(schema_base_url)
        base = schema_base_url.rstrip("/")
        documents: dict[str, Document] = {}
        index: dict[str, object] = {"asyncapi": f"{base}/asyncapi.yaml", "departments": f"{base}/departments.yaml",
                                    "events": {}}
        for event_type in contracts.event_types():
            url = dataschema_for(event_type, schema_base_url)
            schema = contracts.schema(event_type)
            schema["$id"] = url
            documents[url[len(base) + 1:]] = _document(_json(schema), "application/schema+json")
            index["events"][event_type] = url  # type: ignore[index]
        for name in ("asyncapi.yaml", "departments.yaml"):
            path = contracts.root / name
            if path.exists():
                documents[name] = _document(path.read_bytes(), "application/yaml")
        documents[""] = _document(_json(index), "application/json")
        self._documents = documents

    def get(self, name: str) -> Document | None:
        return self._documents.get(name)
