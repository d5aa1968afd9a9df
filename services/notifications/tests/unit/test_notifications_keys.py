"""The webhook secrets' key file: made once by the key command, loaded by the service, never
made up outside the local stack; a sealed secret opens only for its own department."""
from __future__ import annotations

import base64
from pathlib import Path

import pytest

from civicgrid_notifications.adapters.endpoints import (SecretBox, SecretsKeyError, UnreadableSecret,
                                                        load_secrets_key)
from civicgrid_notifications.entrypoints.keys import main


def test_the_key_command_makes_the_file_once_and_the_service_loads_it(tmp_path: Path, capsys) -> None:
    path = tmp_path / "keys" / "webhook-secrets.key"
    assert main(["init", "--file", str(path)]) == 0
    key = load_secrets_key(path, "kubernetes")
    assert len(key) == 32 and (path.stat().st_mode & 0o777) == 0o600
    assert main(["init", "--file", str(path)]) == 0  # an existing key is left as it is
    assert load_secrets_key(path, "kubernetes") == key
    assert "left as it is" in capsys.readouterr().out


def test_outside_the_local_stack_a_key_is_never_made_up(tmp_path: Path) -> None:
    with pytest.raises(SecretsKeyError, match="CIVICGRID_WEBHOOK_SECRETS_KEY_FILE is not set"):
        load_secrets_key(None, "kubernetes")
    with pytest.raises(SecretsKeyError, match="does not exist"):
        load_secrets_key(tmp_path / "absent.key", "kubernetes")
    short = tmp_path / "short.key"
    short.write_text(base64.urlsafe_b64encode(b"x" * 16).decode())
    with pytest.raises(SecretsKeyError, match="32 bytes"):
        load_secrets_key(short, "kubernetes")
    junk = tmp_path / "junk.key"
    junk.write_text("not base64 at all!")
    with pytest.raises(SecretsKeyError):
        load_secrets_key(junk, "kubernetes")


def test_a_sealed_secret_opens_only_for_its_department_under_its_key() -> None:
    box, other = SecretBox(b"k" * 32), SecretBox(b"o" * 32)
    sealed = box.seal("civil_affairs", "whsec_abc")
    assert box.open("civil_affairs", sealed) == "whsec_abc"
    assert box.seal("civil_affairs", "whsec_abc") != sealed  # a fresh nonce each time
    for department, opener, value in (("public_security", box, sealed), ("civil_affairs", other, sealed),
                                      ("civil_affairs", box, sealed[:-2] + "AA"), ("civil_affairs", box, "whsec_abc")):
        with pytest.raises(UnreadableSecret):
            opener.open(department, value)
