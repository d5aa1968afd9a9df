"""intake fails fast without its personal-data keyring outside the local stack: no keyring file
configured (or the file missing) refuses to start with a clear message before the database is
touched; on the local stack the .local/keys ring is made if missing, as before."""
from __future__ import annotations

import secrets

import asyncpg
import pytest

from civicgrid_intake.adapters.personal_data import Keyring, KeyringError, PersonalDataSettings, load_keyring, save_keyring
from civicgrid_intake.config import IntakeSettings
from civicgrid_intake.entrypoints.main import build_app


def test_outside_the_local_stack_an_unset_or_missing_keyring_is_refused_and_a_mounted_one_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("CIVICGRID_LOCAL_DIR", str(tmp_path / ".local"))
    with pytest.raises(KeyringError, match="CIVICGRID_PERSONAL_DATA_KEYRING is not set.*ENVIRONMENT=docker"):
        load_keyring(PersonalDataSettings(environment="docker"))
    with pytest.raises(KeyringError, match="does not exist: mount its Secret"):
        load_keyring(PersonalDataSettings(personal_data_keyring=tmp_path / "absent.json", environment="kubernetes"))
    assert not (tmp_path / ".local").exists(), "nothing is made up outside the local stack"
    ring = Keyring.generate()
    save_keyring(ring, tmp_path / "keyring.json")
    assert load_keyring(PersonalDataSettings(personal_data_keyring=tmp_path / "keyring.json",
                                             environment="kubernetes")) == ring


def test_on_the_local_stack_an_unset_keyring_is_made_once_in_local_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("CIVICGRID_LOCAL_DIR", str(tmp_path / ".local"))
    first = load_keyring(PersonalDataSettings(environment="local"))
    assert (tmp_path / ".local" / "keys" / "personal-data-keyring.json").is_file()
    assert load_keyring(PersonalDataSettings()) == first


async def _database_exists(settings, name: str) -> bool:
    conn = await asyncpg.connect(settings.dsn("postgres"))
    try:
        return await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name) == 1
    finally:
        await conn.close()


@pytest.mark.parametrize("keyring", [None, "absent.json"])
async def test_intake_fails_fast_before_it_creates_its_database(settings, tmp_path, keyring):
    name = f"t_never_{secrets.token_hex(6)}"
    app = build_app(IntakeSettings(pg_database=name, environment="docker", outbox_relay=False,
                                   approval_consumer=False,
                                   personal_data_keyring=tmp_path / keyring if keyring else None))
    with pytest.raises(KeyringError, match="CIVICGRID_PERSONAL_DATA_KEYRING"):
        async with app.router.lifespan_context(app):
            pass
    assert not await _database_exists(settings, name)


async def test_intake_starts_outside_the_local_stack_with_its_mounted_keyring(settings, tmp_path):
    name = f"t_keyring_{secrets.token_hex(6)}"
    save_keyring(Keyring.generate(), tmp_path / "keyring.json")
    app = build_app(IntakeSettings(pg_database=name, environment="docker", outbox_relay=False,
                                   approval_consumer=False, personal_data_keyring=tmp_path / "keyring.json"))
    try:
        async with app.router.lifespan_context(app):
            assert app.state.applicants is not None
        assert await _database_exists(settings, name)
    finally:
        conn = await asyncpg.connect(settings.dsn("postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
