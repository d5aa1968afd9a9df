"""Key material outside the local stack: approval refuses to start without its seal master key
file (before touching anything), and the generated Kubernetes manifests mount a Secret for
approval's master key and intake's personal-data keyring, naming each file in the env var the
service reads, with the Secret's shape (never its content) written in the manifest."""
from __future__ import annotations

import base64
import importlib.util
import secrets

import asyncpg
import pytest

from civicgrid_common.paths import project_root

from civicgrid_approval.adapters.keystore import MasterKeyError, load_master_key
from civicgrid_approval.config import ApprovalSettings
from civicgrid_approval.entrypoints.main import build_app

ROOT = project_root()


def gen_k8s():
    spec = importlib.util.spec_from_file_location("gen_k8s_for_approval_tests", ROOT / "deploy" / "gen_k8s.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_outside_the_local_stack_an_unset_or_missing_master_key_file_is_refused(tmp_path):
    with pytest.raises(MasterKeyError, match="CIVICGRID_SEAL_MASTER_KEY_FILE is not set.*ENVIRONMENT=kubernetes"):
        load_master_key(None, "kubernetes")
    with pytest.raises(MasterKeyError, match="does not exist: mount its Secret"):
        load_master_key(tmp_path / "absent.key", "kubernetes")
    key = secrets.token_bytes(32)
    (tmp_path / "seal-master.key").write_text(base64.urlsafe_b64encode(key).decode())
    assert load_master_key(tmp_path / "seal-master.key", "kubernetes") == key
    assert not (tmp_path / ".local").exists()


async def test_approval_fails_fast_before_it_creates_its_database(settings):
    name = f"t_never_{secrets.token_hex(6)}"
    app = build_app(ApprovalSettings(pg_database=name, environment="kubernetes", outbox_relay=False, consume=False,
                                     timers=False))
    with pytest.raises(MasterKeyError, match="CIVICGRID_SEAL_MASTER_KEY_FILE"):
        async with app.router.lifespan_context(app):
            pass
    conn = await asyncpg.connect(settings.dsn("postgres"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", name) == 0
    finally:
        await conn.close()


def settings_field(service: str, env: dict[str, str], monkeypatch):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    if service == "approval":
        return ApprovalSettings().seal_master_key_file
    from civicgrid_intake.config import IntakeSettings  # read only: which variable intake's settings take
    return IntakeSettings().personal_data_keyring


@pytest.mark.parametrize("service", ["approval", "intake"])
def test_the_manifests_mount_a_secret_for_the_key_file_the_service_reads(service, monkeypatch):
    gen = gen_k8s()
    (svc,) = [s for s in gen.localstack.service_manifest() if s["name"] == service]
    keys = gen.KEY_FILES[service]
    pod = gen.deployment(svc)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    path = env[keys.env]
    # The service's own settings take that variable as the key file's path.
    assert str(settings_field(service, {keys.env: path}, monkeypatch)) == path
    (mount,) = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    secret = volume["secret"]
    assert secret["secretName"] == keys.secret and secret["optional"] is False
    assert [(i["key"], mount["mountPath"] + "/" + i["path"]) for i in secret["items"]] == [(keys.key, path)]
    # The shape of the Secret is written at the top of the manifest (not its content).
    text = gen.render_service(svc)
    head = text.split("apiVersion:", 1)[0]
    assert keys.secret in head and keys.key in head and keys.env in head and "kubectl" in head
