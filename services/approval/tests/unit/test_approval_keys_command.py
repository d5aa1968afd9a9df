"""approval's key command (python -m civicgrid_approval.entrypoints.keys init): makes the seal
master key file approval loads, where its settings point or where asked, once; never replaces
one; prints the path, never the key. The local stack's default is written by the same code."""
from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys

from civicgrid_approval.adapters.keystore import ensure_master_key, load_master_key, local_master_key_path
from civicgrid_approval.entrypoints.keys import main

SERVICE_UID = 10001


def test_init_makes_a_master_key_approval_loads_and_a_second_run_keeps_it(tmp_path, capsys):
    path = tmp_path / "service-keys" / "approval-seal-master.key"
    assert main(["init", "--file", str(path)]) == 0
    key = load_master_key(path, "kubernetes")
    assert len(key) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert main(["init", "--file", str(path)]) == 0
    assert load_master_key(path, "kubernetes") == key
    out = capsys.readouterr().out
    assert out.splitlines() == [f"approval's seal master key: {path} (made now)",
                                f"approval's seal master key: {path} (already there, left as it is)"]
    assert path.read_text() not in out, "the key itself is never printed"


def test_an_existing_master_key_is_never_replaced(tmp_path):
    path = tmp_path / "seal-master.key"
    mine = secrets.token_bytes(32)
    path.write_text(base64.urlsafe_b64encode(mine).decode())
    assert main(["init", "--file", str(path)]) == 0
    assert ensure_master_key(path) == path
    assert load_master_key(path, "kubernetes") == mine


def test_the_default_file_is_the_one_approvals_settings_name_else_the_local_stacks(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CIVICGRID_LOCAL_DIR", str(tmp_path / ".local"))
    monkeypatch.setenv("CIVICGRID_SEAL_MASTER_KEY_FILE", str(tmp_path / "configured.key"))
    assert main(["init"]) == 0
    assert (tmp_path / "configured.key").is_file() and not (tmp_path / ".local").exists()
    monkeypatch.delenv("CIVICGRID_SEAL_MASTER_KEY_FILE")
    assert main(["init"]) == 0
    local = local_master_key_path()
    assert local == tmp_path / ".local" / "keys" / "approval-seal-master.key" and local.is_file()
    # The local stack's start loads that same file (made by the same writer, not made again).
    assert load_master_key(None, "local") == load_master_key(local, "kubernetes")


def test_init_as_compose_runs_it_hands_the_file_to_the_services_uid(tmp_path):
    path = tmp_path / "approval-seal-master.key"
    run = subprocess.run([sys.executable, "-m", "civicgrid_approval.entrypoints.keys", "init", "--file", str(path),
                          *(["--owner", str(SERVICE_UID)] if os.geteuid() == 0 else [])],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"approval's seal master key: {path} (made now)\n"
    if os.geteuid() == 0:
        st = path.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (SERVICE_UID, SERVICE_UID, 0o400)
    assert len(load_master_key(path, "docker")) == 32
