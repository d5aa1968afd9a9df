"""The console as the gateway serves it at /: a screen's path gets index.html (the console routes
in the browser), a fingerprinted asset is cached for a year, a missing asset is 404, every answer
carries the CSP; the API's routes are not shadowed; and without a build, 503 that says how."""
from __future__ import annotations

from pathlib import Path

import httpx

from civicgrid_gateway.config import GatewaySettings
from civicgrid_gateway.entrypoints.main import build_app

INDEX = b"<!doctype html><title>console</title><script type=module src=/assets/index-abc123.js></script>"


def _build(root: Path) -> Path:
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "assets" / "index-abc123.js").write_text("console.log('civicgrid')")
    return root


async def _client(console_dir: Path):
    app = build_app(GatewaySettings(upstreams={}, console_dir=console_dir))
    return app, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test")


async def test_screens_get_the_index_and_assets_are_immutable(tmp_path: Path) -> None:
    app, client = await _client(_build(tmp_path / "dist"))
    async with app.router.lifespan_context(app), client:
        for path in ("/", "/desk", "/desk/receipt/C-2026.0001", "/inbox?task=1"):
            r = await client.get(path)
            assert r.status_code == 200 and r.content == INDEX, path
            assert r.headers["content-type"].startswith("text/html") and r.headers["cache-control"] == "no-cache"
            assert "script-src 'self';" in r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
            assert r.headers["x-content-type-options"] == "nosniff"
        asset = await client.get("/assets/index-abc123.js")
        assert asset.status_code == 200 and asset.text == "console.log('civicgrid')"
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        missing = await client.get("/assets/index-gone.js")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        # a file beside the build is never served, however the path climbs
        (tmp_path / "secret.txt").write_text("not for browsers")
        for climb in ("/%2e%2e/secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"):
            r = await client.get(climb)
            assert b"not for browsers" not in r.content and r.status_code in (200, 404), climb
        # a change is not the console's
        assert (await client.post("/desk")).status_code == 405
        # the gateway's own routes and the API still answer as themselves
        assert (await client.get("/healthz")).json()["status"] == "ok"
        assert (await client.get("/auth/session")).status_code in (401, 404)
        assert (await client.get("/api/nothing/v1/x")).headers["content-type"] == "application/problem+json"


async def test_without_a_build_the_console_says_how_to_build_it_and_the_api_still_answers(tmp_path: Path) -> None:
    app, client = await _client(tmp_path / "not-built")
    async with app.router.lifespan_context(app), client:
        r = await client.get("/desk")
        assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
        assert "make up" in r.json()["detail"] and r.headers["retry-after"] == "60"
        assert (await client.get("/healthz")).status_code == 200
