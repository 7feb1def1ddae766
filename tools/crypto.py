"""Encryption of integration credentials at rest: AES-256-GCM with named keys.

SECURITY: keys come from ``STAFFER_CREDENTIAL_KEYS`` (a setting or environment
variable): ``"<key id>:<base64 of 32 bytes>,<key id>:<…>"``. The first key
encrypts; every listed key decrypts, so a key can be rotated by putting a new
one first and running ``manage.py credentials_reencrypt``. Without the
variable, a development key is derived from ``SECRET_KEY`` only when DEBUG is on
or the test settings are loaded; anywhere else using a credential is refused.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

NONCE_BYTES = 12
DEV_KEY_ID = "dev"


class CredentialDecryptError(Exception):
    """The ciphertext does not decrypt: wrong key, tampered row or moved row."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]
    primary: str

    def encrypt(self, plaintext: bytes, *, associated_data: bytes) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(self.keys[self.primary]).encrypt(nonce, plaintext, associated_data)
        return Sealed(key_id=self.primary, nonce=nonce, ciphertext=ciphertext)

    def decrypt(self, sealed: Sealed, *, associated_data: bytes) -> bytes:
        key = self.keys.get(sealed.key_id)
        if key is None:
            raise CredentialDecryptError(f"no key with id {sealed.key_id!r} is configured")
        try:
            return AESGCM(key).decrypt(bytes(sealed.nonce), bytes(sealed.ciphertext), associated_data)
        except InvalidTag as exc:
            raise CredentialDecryptError("the credential does not decrypt (tampered, moved or wrong key)") from exc


def parse_keys(spec: str) -> Keyring:
    """Parse ``"kid:base64,kid2:base64"``; the first key is the primary."""
    keys: dict[str, bytes] = {}
    order: list[str] = []
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not key_id or len(key_id) > 40:
            raise ImproperlyConfigured("STAFFER_CREDENTIAL_KEYS entries look like '<key id>:<base64 of 32 bytes>'")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImproperlyConfigured(f"credential key {key_id!r} is not base64") from exc
        if len(key) != 32:
            raise ImproperlyConfigured(f"credential key {key_id!r} must be 32 bytes (AES-256), not {len(key)}")
        if key_id in keys:
            raise ImproperlyConfigured(f"credential key id {key_id!r} is listed twice")
        keys[key_id] = key
        order.append(key_id)
    if not keys:
        raise ImproperlyConfigured("STAFFER_CREDENTIAL_KEYS lists no key")
    return Keyring(keys=keys, primary=order[0])


def _dev_key_allowed() -> bool:
    module = getattr(settings, "SETTINGS_MODULE", "") or os.environ.get("DJANGO_SETTINGS_MODULE", "")
    return bool(settings.DEBUG) or module.endswith(".test")


def _dev_keyring() -> Keyring:
    secret = settings.SECRET_KEY.encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"staffer-credentials", info=b"dev-key").derive(secret)
    return Keyring(keys={DEV_KEY_ID: key}, primary=DEV_KEY_ID)


def keyring() -> Keyring:
    """The configured keyring (read on each call, so a test can override the setting)."""
    spec = getattr(settings, "STAFFER_CREDENTIAL_KEYS", "") or os.environ.get("STAFFER_CREDENTIAL_KEYS", "")
    if spec:
        return parse_keys(spec)
    if _dev_key_allowed():
        return _dev_keyring()
    raise ImproperlyConfigured("set STAFFER_CREDENTIAL_KEYS to store integration credentials")


def generate_key_spec(key_id: str) -> str:
    """A fresh ``<key id>:<base64>`` entry for STAFFER_CREDENTIAL_KEYS."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"
