"""The `civicgrid` command installed in the virtualenv: `civicgrid token ...`."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import Depends

from civicgrid_common.identity import Principal, Role
from civicgrid_common.identity.dependencies import require
from civicgrid_common.settings import PlatformSettings
from civicgrid_common.web.app import create_app

CIVICGRID = Path(sys.executable).with_name("civicgrid")


def civicgrid(local_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CIVICGRID.exists(), f"{CIVICGRID} missing: run `.venv/bin/pip install -e libs/common`"
    env = {**os.environ, "CIVICGRID_LOCAL_DIR": str(local_dir)}
    return subprocess.run([str(CIVICGRID), *args], capture_output=True, text=True, env=env, timeout=60)


def test_token_is_signed_with_the_local_key_and_carries_the_claims(tmp_path: Path) -> None:
    done = civicgrid(tmp_path, "token", "--role", "street_reviewer", "--role", "leader",
                     "--jurisdiction", "320104001", "--subject", "li.wei", "--name", "李伟", "--ttl", "600")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    jwks = tmp_path / "keys" / "jwks.json"
    assert jwks.exists(), "the command creates the local key pair on first use"
    key = jwt.PyJWKSet.from_json(jwks.read_text())["civicgrid-local-1"]
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="civicgrid", issuer="civicgrid-local")
    assert claims["sub"] == "li.wei" and claims["name"] == "李伟"
    assert claims["roles"] == ["street_reviewer", "leader"]
    assert claims["jurisdictions"] == ["320104001"]
    assert claims["exp"] - claims["iat"] == 600


async def test_the_token_is_accepted_by_a_service_of_the_local_stack(tmp_path: Path) -> None:
    done = civicgrid(tmp_path, "token", "--role", "department", "--jurisdiction", "320104",
                     "--department", "public-security")
    assert done.returncode == 0, done.stderr
    settings = PlatformSettings(jwks=str(tmp_path / "keys" / "jwks.json"))
    app = create_app(settings, title="t", version="0", idempotency=False)

    @app.get("/streets/{street}/referrals")
    async def referrals(street: str, who: Principal = Depends(require(Role.DEPARTMENT, jurisdiction_param="street"))):
        return {"department": who.department, "street": street}

    headers = {"Authorization": f"Bearer {done.stdout.strip()}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as client:
        r = await client.get("/streets/320104001/referrals", headers=headers)
        outside = await client.get("/streets/320105001/referrals", headers=headers)
    assert r.status_code == 200 and r.json() == {"department": "public-security", "street": "320104001"}
    assert outside.status_code == 403


def test_the_key_is_made_once_and_reused(tmp_path: Path) -> None:
    civicgrid(tmp_path, "token", "--role", "admin", "--jurisdiction", "320104")
    pem = (tmp_path / "keys" / "signing-key.pem").read_bytes()
    civicgrid(tmp_path, "token", "--role", "admin", "--jurisdiction", "320104")
    assert (tmp_path / "keys" / "signing-key.pem").read_bytes() == pem


@pytest.mark.parametrize("args, message", [
    (["--role", "mayor", "--jurisdiction", "320104"], "unknown role 'mayor'"),
    (["--role", "admin", "--jurisdiction", "32010400"], "has 8 digits"),
    (["--role", "admin", "--jurisdiction", "32010x"], "digits only"),
    (["--role", "department", "--jurisdiction", "320104"], "must name its department"),
    (["--role", "admin", "--jurisdiction", "320104", "--ttl", "0"], "ttl must be positive"),
    (["--role", "admin"], "--jurisdiction"),
    (["--jurisdiction", "320104"], "--role"),
])
def test_bad_input_is_a_clear_message_and_status_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = civicgrid(tmp_path, "token", *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert message in done.stderr


def test_without_a_command_it_shows_usage(tmp_path: Path) -> None:
    done = civicgrid(tmp_path)
    assert done.returncode == 2 and "token" in done.stderr
