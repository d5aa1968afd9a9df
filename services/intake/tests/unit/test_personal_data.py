"""Personal data at rest: AES-256-GCM round trip, tampering and copied ciphertexts refused,
key rotation, the blind index, and where the keyring comes from."""
from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from civicgrid_intake.adapters.personal_data import (
    KEYRING_ENV_VAR,
    Keyring,
    KeyringError,
    PersonalDataCipher,
    PersonalDataSettings,
    PersonalField,
    UndecryptableValue,
    ensure_local_keyring,
    load_keyring,
    save_keyring,
)
from civicgrid_intake.domain.applicant import IdentityKind

NUMBER = "11010519491231002X"
ALICE = "ap-" + "a" * 32
BOB = "ap-" + "b" * 32


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate("k1")


@pytest.fixture
def cipher(keyring: Keyring) -> PersonalDataCipher:
    return PersonalDataCipher(keyring)


@pytest.mark.parametrize("field, value", [
    (PersonalField.IDENTITY_NUMBER, NUMBER),
    (PersonalField.PHONE, "13851234567"),
    (PersonalField.NAME, "欧阳娜娜"),
    (PersonalField.LEGAL_REPRESENTATIVE, "李建国"),
])
def test_round_trip(cipher: PersonalDataCipher, field: PersonalField, value: str) -> None:
    token = cipher.encrypt(field, ALICE, value)
    assert value not in token and token.startswith("pd1.k1.")
    assert cipher.decrypt(field, ALICE, token) == value


def test_the_same_value_encrypts_differently_each_time(cipher: PersonalDataCipher) -> None:
    # A fresh nonce per value: equal numbers do not show as equal ciphertexts.
    first, second = (cipher.encrypt(PersonalField.IDENTITY_NUMBER, ALICE, NUMBER) for _ in range(2))
    assert first != second
    nonce = lambda t: base64.urlsafe_b64decode(t.split(".")[2])[:12]  # noqa: E731
    assert nonce(first) != nonce(second)


def _flip(token: str, at: int) -> str:
    prefix, key_id, data = token.split(".")
    blob = bytearray(base64.urlsafe_b64decode(data))
    blob[at] ^= 0x01
    return f"{prefix}.{key_id}.{base64.urlsafe_b64encode(bytes(blob)).decode()}"


@pytest.mark.parametrize("where", [0, 12, -1])  # the nonce, the ciphertext, the tag
def test_tampering_is_detected(cipher: PersonalDataCipher, where: int) -> None:
    token = cipher.encrypt(PersonalField.PHONE, ALICE, "13851234567")
    with pytest.raises(UndecryptableValue, match="authentication failed") as raised:
        cipher.decrypt(PersonalField.PHONE, ALICE, _flip(token, where))
    assert "13851234567" not in str(raised.value)


def test_a_ciphertext_copied_to_another_applicant_or_field_is_refused(cipher: PersonalDataCipher) -> None:
    token = cipher.encrypt(PersonalField.IDENTITY_NUMBER, ALICE, NUMBER)
    with pytest.raises(UndecryptableValue):
        cipher.decrypt(PersonalField.IDENTITY_NUMBER, BOB, token)
    with pytest.raises(UndecryptableValue):
        cipher.decrypt(PersonalField.PHONE, ALICE, token)
    assert cipher.decrypt(PersonalField.IDENTITY_NUMBER, ALICE, token) == NUMBER


def test_relabelling_the_key_id_is_refused(keyring: Keyring) -> None:
    # The key id is bound too: a token cannot be passed off as sealed by another key.
    rotated = keyring.rotated("k2")
    cipher = PersonalDataCipher(rotated)
    token = cipher.encrypt(PersonalField.NAME, ALICE, "张小梅")
    relabelled = token.replace(".k2.", ".k1.")
    with pytest.raises(UndecryptableValue):
        cipher.decrypt(PersonalField.NAME, ALICE, relabelled)


@pytest.mark.parametrize("token", ["", "13851234567", "pd1.k1", "pd2.k1.AAAA", "pd1.k1.!!!!", "pd1.k1.AAAA"])
def test_malformed_tokens_are_refused_clearly(cipher: PersonalDataCipher, token: str) -> None:
    with pytest.raises(UndecryptableValue):
        cipher.decrypt(PersonalField.PHONE, ALICE, token)


def test_rotation_old_values_still_decrypt_new_ones_use_the_newest_key(keyring: Keyring) -> None:
    old_token = PersonalDataCipher(keyring).encrypt(PersonalField.PHONE, ALICE, "13851234567")
    rotated = keyring.rotated("k2")
    cipher = PersonalDataCipher(rotated)
    assert cipher.decrypt(PersonalField.PHONE, ALICE, old_token) == "13851234567"
    new_token = cipher.encrypt(PersonalField.PHONE, ALICE, "13851234567")
    assert new_token.startswith("pd1.k2.")
    assert cipher.needs_reencryption(old_token) and not cipher.needs_reencryption(new_token)
    moved = cipher.reencrypt(PersonalField.PHONE, ALICE, old_token)
    assert moved.startswith("pd1.k2.") and cipher.decrypt(PersonalField.PHONE, ALICE, moved) == "13851234567"
    # The old ring cannot read what the new key wrote, and says which key it lacks.
    with pytest.raises(UndecryptableValue, match="'k2' is not in the keyring"):
        PersonalDataCipher(keyring).decrypt(PersonalField.PHONE, ALICE, new_token)
    with pytest.raises(KeyringError):
        rotated.rotated("k1")


def test_blind_index_is_stable_keyed_and_separate_from_the_pseudonym(keyring: Keyring) -> None:
    cipher = PersonalDataCipher(keyring)
    index = cipher.blind_index(NUMBER, IdentityKind.RESIDENT_ID)
    assert index == cipher.blind_index(NUMBER, IdentityKind.RESIDENT_ID)
    assert index == PersonalDataCipher(keyring.rotated("k2")).blind_index(NUMBER, IdentityKind.RESIDENT_ID)
    assert index == cipher.blind_index(NUMBER.lower(), IdentityKind.RESIDENT_ID)
    assert index != cipher.blind_index("110105194912310010", IdentityKind.RESIDENT_ID)
    assert index != cipher.blind_index(NUMBER, IdentityKind.CREDIT_CODE)
    assert index != PersonalDataCipher(Keyring.generate()).blind_index(NUMBER, IdentityKind.RESIDENT_ID)
    assert len(index) == 64 and NUMBER not in index


def test_keyring_survives_its_file(keyring: Keyring, tmp_path: Path) -> None:
    rotated = keyring.rotated("k2")
    path = tmp_path / "ring.json"
    save_keyring(rotated, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = Keyring.from_json(path.read_text())
    assert loaded == rotated
    token = PersonalDataCipher(rotated).encrypt(PersonalField.NAME, ALICE, "张小梅")
    assert PersonalDataCipher(loaded).decrypt(PersonalField.NAME, ALICE, token) == "张小梅"


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d.update(current="k9"), "current key"),
    (lambda d: d["encryption_keys"][0].update(key=base64.b64encode(b"short").decode()), "32 bytes"),
    (lambda d: d.update(pseudonym_key=d["blind_index_key"]), "must differ"),
    (lambda d: d.pop("blind_index_key"), "not valid"),
    (lambda d: d["encryption_keys"][0].update(id="k 1"), "key id"),
])
def test_a_broken_keyring_is_refused(keyring: Keyring, breakage, message: str) -> None:
    doc = json.loads(keyring.to_json())
    breakage(doc)
    with pytest.raises(KeyringError, match=message):
        Keyring.from_json(json.dumps(doc))


def test_the_local_keyring_is_generated_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVICGRID_LOCAL_DIR", str(tmp_path))
    monkeypatch.delenv(KEYRING_ENV_VAR, raising=False)
    first = load_keyring(PersonalDataSettings())
    path = tmp_path / "keys" / "personal-data-keyring.json"
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keyring(PersonalDataSettings()) == first
    assert ensure_local_keyring(path) == path and Keyring.from_json(path.read_text()) == first


def test_a_configured_keyring_is_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mounted" / "ring.json"
    monkeypatch.setenv(KEYRING_ENV_VAR, str(path))
    with pytest.raises(KeyringError, match="does not exist"):
        load_keyring(PersonalDataSettings())  # never generated: that would orphan stored data
    assert not path.exists()
    path.parent.mkdir()
    ring = Keyring.generate("prod-2026-11")
    save_keyring(ring, path)
    assert load_keyring(PersonalDataSettings()) == ring
