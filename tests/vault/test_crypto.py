"""vault/crypto.py: AES-256-GCM blobs bound to their row and field, and the key ring."""

from __future__ import annotations

import base64
from unittest import mock

import pytest
from django.test import override_settings

from tests.conftest import make_pam_user
from vault import crypto
from vault.models import PamUser, SharedFolder

KEY_A = crypto.generate_key()
KEY_B = crypto.generate_key()
AAD = crypto.associated_data("vault.pamuser", "uid-1", "password")


@override_settings(VAULT_ENCRYPTION_KEYS=[KEY_A])
def test_round_trip_returns_the_plaintext():
    blob = crypto.encrypt("S3cret-πassword", aad=AAD)
    assert crypto.decrypt(blob, aad=AAD) == "S3cret-πassword"


@override_settings(VAULT_ENCRYPTION_KEYS=[KEY_A])
def test_ciphertext_does_not_contain_the_plaintext_and_differs_each_time():
    first = crypto.encrypt("S3cret-password", aad=AAD)
    second = crypto.encrypt("S3cret-password", aad=AAD)
    assert "S3cret-password" not in first
    assert first != second  # a fresh nonce per value


@override_settings(VAULT_ENCRYPTION_KEYS=[KEY_A])
def test_blob_names_its_key_and_format():
    version, kid, _ = crypto.encrypt("x", aad=AAD).split(":", 2)
    assert version == "v1"
    assert kid == crypto.key_id(base64.urlsafe_b64decode(KEY_A))


@override_settings(VAULT_ENCRYPTION_KEYS=[KEY_A])
def test_ciphertext_for_another_field_fails_with_a_clear_error():
    blob = crypto.encrypt("x", aad=AAD)
    other_field = crypto.associated_data("vault.pamuser", "uid-1", "other")
    with pytest.raises(crypto.CryptoError, match="belongs to another record"):
        crypto.decrypt(blob, aad=other_field)


@override_settings(VAULT_ENCRYPTION_KEYS=[KEY_A])
def test_tampered_ciphertext_raises():
    version, kid, body = crypto.encrypt("S3cret-password", aad=AAD).split(":", 2)
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[-1] ^= 0x01
    tampered = f"{version}:{kid}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(crypto.CryptoError, match="tampered"):
        crypto.decrypt(tampered, aad=AAD)


@override_settings(VAULT_ENCRYPTION_KEYS=[KEY_A])
def test_garbage_is_not_a_vault_ciphertext():
    with pytest.raises(crypto.CryptoError, match="not a vault ciphertext"):
        crypto.decrypt("plaintext-password", aad=AAD)


def test_unknown_key_id_says_which_key_is_missing():
    with override_settings(VAULT_ENCRYPTION_KEYS=[KEY_A]):
        blob = crypto.encrypt("x", aad=AAD)
    kid = blob.split(":")[1]
    with override_settings(VAULT_ENCRYPTION_KEYS=[KEY_B]):
        with pytest.raises(crypto.CryptoError, match=f"key {kid}.*not in VAULT_ENCRYPTION_KEYS"):
            crypto.decrypt(blob, aad=AAD)


def test_key_ring_decrypts_with_an_old_key_and_encrypts_with_the_first():
    with override_settings(VAULT_ENCRYPTION_KEYS=[KEY_A]):
        old = crypto.encrypt("kept", aad=AAD)
    with override_settings(VAULT_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        assert crypto.decrypt(old, aad=AAD) == "kept"
        assert not crypto.is_current_key(old)
        assert crypto.is_current_key(crypto.encrypt("new", aad=AAD))


@pytest.mark.parametrize(
    "bad_key, message",
    [
        ("not base64!!", "not valid base64|32 bytes"),
        (base64.urlsafe_b64encode(b"short").decode(), "32 bytes"),
    ],
)
def test_a_malformed_key_is_refused_with_a_message(bad_key, message):
    with override_settings(VAULT_ENCRYPTION_KEYS=[bad_key]):
        with pytest.raises(crypto.CryptoError, match=message):
            crypto.encrypt("x", aad=AAD)


def test_no_key_configured_is_a_clear_error():
    with override_settings(VAULT_ENCRYPTION_KEYS=[]):
        with pytest.raises(crypto.CryptoError, match="VAULT_ENCRYPTION_KEYS"):
            crypto.encrypt("x", aad=AAD)


def test_generated_keys_are_32_random_bytes():
    keys = {crypto.generate_key() for _ in range(5)}
    assert len(keys) == 5
    assert all(len(base64.urlsafe_b64decode(k)) == 32 for k in keys)


@pytest.mark.django_db
def test_ciphertext_copied_to_another_row_fails_to_decrypt():
    folder = SharedFolder.objects.create(name="F")
    first = make_pam_user(folder, "Alice", password="Alice-Passw0rd!")
    second = make_pam_user(folder, "Bob", password="Bob-Passw0rd!")
    PamUser.objects.filter(pk=second.pk).update(password_enc=first.password_enc)
    second.refresh_from_db()
    with pytest.raises(crypto.CryptoError, match="belongs to another record"):
        second.get_secret("password")
    assert first.get_secret("password") == "Alice-Passw0rd!"


# --- a secret an instance sealed itself (vault/models.py SecretsMixin) -------------------------


@pytest.mark.django_db
def test_a_secret_the_instance_sealed_is_read_back_without_opening_it_again(monkeypatch):
    record = make_pam_user(SharedFolder.objects.create(name="F"), "Alice")
    record.set_secret("password", "New-Passw0rd!")
    monkeypatch.setattr(crypto, "decrypt", mock.Mock(side_effect=AssertionError("opened")))
    assert record.get_secret("password") == "New-Passw0rd!"


@pytest.mark.django_db
def test_a_column_that_changed_since_is_opened_as_stored():
    folder = SharedFolder.objects.create(name="F")
    record = make_pam_user(folder, "Alice", password="Alice-Passw0rd!")
    other = make_pam_user(folder, "Bob", password="Bob-Passw0rd!")
    record.set_secret("password", "Sealed-Passw0rd!")
    PamUser.objects.filter(pk=record.pk).update(password_enc=other.password_enc)
    record.refresh_from_db()
    with pytest.raises(crypto.CryptoError, match="belongs to another record"):
        record.get_secret("password")  # what the row holds now, not what was sealed


@pytest.mark.django_db
def test_a_pickled_or_copied_instance_carries_no_plaintext():
    import copy
    import pickle

    record = make_pam_user(SharedFolder.objects.create(name="F"), "Alice")
    record.set_secret("password", "Never-Pickled-1!")
    assert b"Never-Pickled-1!" not in pickle.dumps(record)
    assert "_sealed_by_this_instance" not in vars(copy.copy(record))
    assert pickle.loads(pickle.dumps(record)).get_secret("password") == "Never-Pickled-1!"
    assert record.get_secret("password") == "Never-Pickled-1!"
