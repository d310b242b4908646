"""The only module that encrypts and decrypts secrets.

A blob is text: ``v1:<key id>:<urlsafe base64 of nonce || ciphertext+tag>``. AES-256-GCM with a
random 96-bit nonce per value. The associated data names the row and field the value belongs to
(``<model>:<uid>:<field>``), so a ciphertext copied to another row or field does not decrypt.

Keys come from ``VAULT_ENCRYPTION_KEYS`` (a key ring: the first key encrypts, every key decrypts).
A key is 32 random bytes in urlsafe base64; its id is derived from the key itself, so the blob
names the key without revealing it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import sys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"
NONCE_BYTES = 12


class CryptoError(Exception):
    """A secret could not be encrypted or decrypted; the message says why."""


def generate_key() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()


def _parse_key(text: str) -> tuple[bytes | None, str]:
    """(the raw key, "") or (None, what is wrong with it). The one parser of a configured key,
    used by the ring and by the start-up check, so the check refuses exactly what a first
    encryption would. The problem never quotes the key."""
    stripped = text.strip()
    if not stripped:
        return None, "is empty"
    try:
        raw = base64.urlsafe_b64decode(stripped.encode())
    except (binascii.Error, ValueError):  # UnicodeEncodeError is a ValueError too
        return None, "is not valid base64"
    if len(raw) != 32:
        return None, f"is {len(raw)} bytes, not 32"
    return raw, ""


def _decode_key(text: str) -> bytes:
    raw, problem = _parse_key(text)
    if raw is None:
        raise CryptoError(f"an encryption key {problem} (a key is 32 bytes: use `pam genkey`)")
    return raw


def key_ring_problems(keys: Sequence[str]) -> list[str]:
    """What is wrong with the key ring, one line per bad key, named by its position (never by
    its value): what would otherwise surface only when the first secret is read or written."""
    if not keys:
        return ["no encryption key configured"]
    problems = []
    for position, text in enumerate(keys, start=1):
        _, problem = _parse_key(text)
        if problem:
            problems.append(f"key {position} of {len(keys)} {problem}")
    return problems


def key_id(raw_key: bytes) -> str:
    return hashlib.sha256(b"vault-key-id:" + raw_key).hexdigest()[:12]


@lru_cache(maxsize=8)
def _ring(keys: tuple[str, ...]) -> tuple[tuple[str, AESGCM], dict[str, AESGCM]]:
    if not keys:
        raise CryptoError("no encryption key configured (VAULT_ENCRYPTION_KEYS)")
    ciphers = [(key_id(raw), AESGCM(raw)) for raw in (_decode_key(k) for k in keys)]
    return ciphers[0], dict(ciphers)


def _current_ring() -> tuple[tuple[str, AESGCM], dict[str, AESGCM]]:
    from django.conf import settings

    return _ring(tuple(settings.VAULT_ENCRYPTION_KEYS))


def associated_data(model_label: str, uid: str, field: str) -> bytes:
    return f"{model_label}:{uid}:{field}".encode()


def encrypt(plaintext: str, *, aad: bytes) -> str:
    (kid, cipher), _ = _current_ring()
    nonce = os.urandom(NONCE_BYTES)
    sealed = cipher.encrypt(nonce, plaintext.encode("utf-8"), aad)
    return f"{VERSION}:{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(blob: str, *, aad: bytes) -> str:
    try:
        version, kid, body = blob.split(":", 2)
        payload = base64.urlsafe_b64decode(body.encode())
    except (ValueError, binascii.Error) as exc:
        raise CryptoError("stored secret is not a vault ciphertext") from exc
    if version != VERSION:
        raise CryptoError(f"stored secret has unknown format {version!r}")
    _, ring = _current_ring()
    cipher = ring.get(kid)
    if cipher is None:
        raise CryptoError(
            f"stored secret was encrypted with key {kid}, which is not in VAULT_ENCRYPTION_KEYS"
        )
    try:
        plain = cipher.decrypt(payload[:NONCE_BYTES], payload[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise CryptoError(
            "stored secret failed authentication: it was tampered with or belongs to another record"
        ) from exc
    return plain.decode("utf-8")


def is_current_key(blob: str) -> bool:
    """True when the blob is already encrypted under the first (encrypting) key."""
    (kid, _), _ = _current_ring()
    return blob.split(":", 2)[1:2] == [kid]


def load_or_create_key_file(path: Path) -> str:
    """Read the local key file, creating it (mode 0600) on first use. Development only."""
    if path.exists():
        return path.read_text().strip()
    key = generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    sys.stderr.write(
        f"vault: WARNING created a new local encryption key in {path} (mode 0600). "
        "Back it up: without it no stored secret can be read. "
        "In production set VAULT_ENCRYPTION_KEYS instead.\n"
    )
    return key
