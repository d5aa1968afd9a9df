"""Verifying against a JWKS served over HTTP (an OIDC jwks_uri), from a server on 127.0.0.1."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from fastapi import Depends

from civicgrid_common.identity import InvalidToken, JwksUnavailable, Principal, TokenVerifier, mint_token
from civicgrid_common.identity.dependencies import require
from civicgrid_common.settings import PlatformSettings
from civicgrid_common.web.app import create_app
from civicgrid_common.identity.localkeys import ensure_local_keys, private_key_path

ISSUER, AUDIENCE = "https://idp.qinhuai.test", "civicgrid"


class JwksServer:
    """Serves one JWKS document at /jwks and counts how often it was fetched."""

    def __init__(self, document: bytes) -> None:
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != "/jwks":
                    self.send_error(404)
                    return
                outer.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "JwksServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    keys_dir = tmp_path_factory.mktemp("keys")
    jwks = ensure_local_keys(keys_dir)
    return private_key_path(keys_dir).read_bytes(), jwks


@pytest.fixture
def jwks_server(keys) -> Iterator[JwksServer]:
    with JwksServer(keys[1].read_bytes()) as server:
        yield server


def test_token_verifies_against_a_jwks_url_fetched_once(keys, jwks_server: JwksServer) -> None:
    verifier = TokenVerifier(jwks_server.url, issuer=ISSUER, audience=AUDIENCE)
    for subject in ("clerk-1", "clerk-2", "clerk-3"):
        token = mint_token(keys[0], "window_clerk", "320104001001", subject=subject,
                           issuer=ISSUER, audience=AUDIENCE)
        assert verifier.verify(token).subject == subject
    assert jwks_server.fetches == 1  # cached, not fetched per request


def test_offline_verification_waits_for_the_first_fetch_and_never_fetches(keys, jwks_server: JwksServer) -> None:
    verifier = TokenVerifier(jwks_server.url, issuer=ISSUER, audience=AUDIENCE)
    token = mint_token(keys[0], "window_clerk", "320104001001", subject="clerk-1", issuer=ISSUER, audience=AUDIENCE)
    assert verifier.verify_offline(token) is None  # the key is not at hand yet: no fetch on the loop
    assert jwks_server.fetches == 0
    assert verifier.verify(token).subject == "clerk-1"
    assert verifier.verify_offline(token).subject == "clerk-1"
    rotated = mint_token(keys[0], "admin", "320104", key_id="published-later", issuer=ISSUER, audience=AUDIENCE)
    assert verifier.verify_offline(rotated) is None  # a new kid goes to `verify`, which may fetch
    assert jwks_server.fetches == 1


def test_unknown_kid_from_a_jwks_url_is_an_invalid_token(keys, jwks_server: JwksServer) -> None:
    verifier = TokenVerifier(jwks_server.url, issuer=ISSUER, audience=AUDIENCE)
    token = mint_token(keys[0], "admin", "320104", key_id="not-published", issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(InvalidToken, match="not-published"):
        verifier.verify(token)


def test_unreachable_jwks_url_is_unavailable_not_invalid(keys) -> None:
    with JwksServer(b"{}") as gone:
        url = gone.url
    verifier = TokenVerifier(url, issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(JwksUnavailable, match="cannot be fetched"):
        verifier.verify(mint_token(keys[0], "admin", "320104", issuer=ISSUER, audience=AUDIENCE))



async def test_service_accepts_a_token_verified_against_its_jwks_url(keys, jwks_server: JwksServer) -> None:
    settings = PlatformSettings(jwks=jwks_server.url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    app = create_app(settings, title="jwks-url", version="0", idempotency=False)

    @app.get("/whoami")
    async def whoami(who: Principal = Depends(require())) -> dict[str, str]:
        return {"subject": who.subject}

    token = mint_token(keys[0], "auditor", "320104", subject="auditor-7", issuer=ISSUER, audience=AUDIENCE)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        ok = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json() == {"subject": "auditor-7"}
    assert jwks_server.fetches == 1
