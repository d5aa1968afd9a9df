"""The gateway's one OpenAPI document (/api/openapi.json) on the running stack, as a front-end
team uses it: it validates as OpenAPI 3.1, holds every route of every service at the path the
gateway serves it, and the TypeScript types openapi-typescript generates from it compile with a
client written against them (tests/typescript_client), while a client that breaks them does not."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.integration

GATEWAY = "http://127.0.0.1:8000"
SERVICES = {"intake": 8001, "approval": 8002, "grid": 8003, "notifications": 8004, "statistics": 8005}
CLIENT = Path(__file__).resolve().parents[1] / "typescript_client"
TSC_OPTIONS = ["--noEmit", "--strict", "--target", "ES2022", "--module", "ESNext", "--moduleResolution", "Bundler",
               "--lib", "ES2022,DOM", "--skipLibCheck"]


def _node_tool(name: str) -> str:
    tool = CLIENT / "node_modules" / ".bin" / name
    if not tool.exists():
        pytest.fail(f"{tool} is missing: `make setup` installs tests/typescript_client's packages", pytrace=False)
    return str(tool)


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=CLIENT, capture_output=True, text=True, timeout=300)


async def test_the_aggregated_document_validates_holds_every_route_and_its_typed_client_compiles():
    async with httpx.AsyncClient(timeout=30) as http:
        try:
            r = await http.get(f"{GATEWAY}/api/openapi.json")
        except httpx.ConnectError:
            pytest.fail("the gateway of the local stack is not running on :8000; run `make up`", pytrace=False)
        assert r.status_code == 200, r.text
        document = r.json()
        own = {name: (await http.get(f"http://127.0.0.1:{port}/openapi.json")).json()
               for name, port in SERVICES.items()}

    assert "x-civicgrid-unavailable" not in document
    validate(document)  # OpenAPI 3.1, every $ref resolving
    for name, spec in own.items():
        for path, item in spec["paths"].items():
            if path in ("/healthz", "/readyz") or path.startswith("/problems"):
                assert path in document["paths"]  # the gateway's own
                continue
            public = path if path.startswith("/open311/") else f"/api/{name}{path}"
            assert set(document["paths"][public]) == set(item), (name, path)
    operation_ids = [op["operationId"] for item in document["paths"].values() for op in item.values()
                     if isinstance(op, dict) and "operationId" in op]
    assert len(operation_ids) == len(set(operation_ids))
    assert document["paths"]["/api/intake/v1/cases"]["post"]["requestBody"]["content"]["application/json"][
        "schema"] == {"$ref": "#/components/schemas/intake.RegistrationIn"}

    (CLIENT / "openapi.json").write_text(json.dumps(document), encoding="utf-8")
    generated = _run(_node_tool("openapi-typescript"), "openapi.json", "--output", "api.d.ts")
    assert generated.returncode == 0, generated.stderr
    compiled = _run(_node_tool("tsc"), *TSC_OPTIONS, "client.ts")
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    refused = _run(_node_tool("tsc"), *TSC_OPTIONS, "wrong.ts")
    assert refused.returncode != 0
    assert "affair_code" in refused.stdout and "no-such-route" in refused.stdout, refused.stdout
