"""intake's key command (python -m civicgrid_intake.entrypoints.keys init): makes the
personal-data keyring intake loads, where its settings point or where asked, once; never
replaces one; prints the path, never a key. The local stack's default is written by the same code."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from civicgrid_intake.adapters.personal_data import (
    Keyring,
    PersonalDataSettings,
    load_keyring,
    local_keyring_path,
    save_keyring,
)
from civicgrid_intake.entrypoints.keys import main

SERVICE_UID = 10001


def _load(path):
    return load_keyring(PersonalDataSettings(personal_data_keyring=path, environment="kubernetes"))


def _key_values(path) -> list[str]:
    doc = json.loads(path.read_text())
    return [k["key"] for k in doc["encryption_keys"]] + [doc["blind_index_key"], doc["pseudonym_key"]]


def test_init_makes_a_keyring_intake_loads_and_a_second_run_keeps_it(tmp_path, capsys):
    path = tmp_path / "service-keys" / "personal-data-keyring.json"
    assert main(["init", "--file", str(path)]) == 0
    ring = _load(path)
    assert isinstance(ring, Keyring) and path.stat().st_mode & 0o777 == 0o600
    assert main(["init", "--file", str(path)]) == 0
    assert _load(path) == ring
    out = capsys.readouterr().out
    assert out.splitlines() == [f"intake's personal-data keyring: {path} (made now)",
                                f"intake's personal-data keyring: {path} (already there, left as it is)"]
    assert not [value for value in _key_values(path) if value in out], "no key is ever printed"


def test_an_existing_keyring_is_never_replaced(tmp_path):
    path = tmp_path / "keyring.json"
    mine = Keyring.generate().rotated("k2")
    save_keyring(mine, path)
    assert main(["init", "--file", str(path)]) == 0
    assert _load(path) == mine


def test_the_default_file_is_the_one_intakes_settings_name_else_the_local_stacks(tmp_path, monkeypatch):
    monkeypatch.setenv("CIVICGRID_LOCAL_DIR", str(tmp_path / ".local"))
    monkeypatch.setenv("CIVICGRID_PERSONAL_DATA_KEYRING", str(tmp_path / "configured.json"))
    assert main(["init"]) == 0
    assert (tmp_path / "configured.json").is_file() and not (tmp_path / ".local").exists()
    monkeypatch.delenv("CIVICGRID_PERSONAL_DATA_KEYRING")
    assert main(["init"]) == 0
    local = local_keyring_path()
    assert local == tmp_path / ".local" / "keys" / "personal-data-keyring.json" and local.is_file()
    # The local stack's start loads that same ring (made by the same writer, not made again).
    assert load_keyring(PersonalDataSettings(environment="local")) == _load(local)


def test_init_as_compose_runs_it_hands_the_file_to_the_services_uid(tmp_path):
    path = tmp_path / "personal-data-keyring.json"
    run = subprocess.run([sys.executable, "-m", "civicgrid_intake.entrypoints.keys", "init", "--file", str(path),
                          *(["--owner", str(SERVICE_UID)] if os.geteuid() == 0 else [])],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"intake's personal-data keyring: {path} (made now)\n"
    if os.geteuid() == 0:
        st = path.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (SERVICE_UID, SERVICE_UID, 0o400)
    assert isinstance(load_keyring(PersonalDataSettings(personal_data_keyring=path, environment="docker")), Keyring)
