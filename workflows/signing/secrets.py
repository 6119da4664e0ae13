"""Encrypt key material at rest (uploaded PKCS#12 files, their passphrases) with AES-GCM."""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import SecretError

_VERSION = b"\x01"
_NONCE_SIZE = 12


def generate_master_key() -> str:
    """Return a new random 256-bit master key, base64-encoded for configuration."""
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")


def load_master_key(value: str | bytes) -> bytes:
    """Turn a configured master key (raw 32 bytes or base64 text) into key bytes."""
    if isinstance(value, bytes) and len(value) == 32:
        return value
    text = value.decode("ascii") if isinstance(value, bytes) else value
    try:
        key = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError) as exc:
        raise SecretError("Khóa chủ (master key) không hợp lệ.") from exc
    if len(key) != 32:
        raise SecretError("Khóa chủ (master key) phải dài 32 byte.")
    return key


def encrypt_secret(master_key: str | bytes, data: bytes, *, context: bytes = b"") -> bytes:
    """Encrypt data under the master key; context is authenticated (e.g. the owner id)."""
    key = load_master_key(master_key)
    nonce = os.urandom(_NONCE_SIZE)
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, data, _VERSION + context)


def decrypt_secret(master_key: str | bytes, blob: bytes, *, context: bytes = b"") -> bytes:
    """Decrypt a blob made by encrypt_secret with the same master key and context."""
    key = load_master_key(master_key)
    if len(blob) < 1 + _NONCE_SIZE + 16 or blob[:1] != _VERSION:
        raise SecretError()
    nonce, ciphertext = blob[1 : 1 + _NONCE_SIZE], blob[1 + _NONCE_SIZE :]
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, _VERSION + context)
    except InvalidTag as exc:
        raise SecretError() from exc
