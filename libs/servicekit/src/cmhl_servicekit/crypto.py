"""Keyed pseudonyms and field encryption for personal data at rest."""

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def pseudonym(key: bytes, *parts: str) -> str:
    """A stable pseudonymous id: HMAC-SHA256 of the normalised parts, hex, 32 characters.

    Without the key nobody can test a guessed name and birth date against it."""
    message = "\x1f".join(" ".join(p.casefold().split()) for p in parts).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


class FieldCipher:
    """AES-256-GCM for fields that hold a person's identifiers or a narrative."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("encryption key must be 32 bytes (base64 of 32 random bytes)")
        self._aead = AESGCM(key)

    @classmethod
    def from_base64(cls, encoded: str) -> "FieldCipher":
        return cls(base64.b64decode(encoded))

    def encrypt(self, value: Any, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, json.dumps(value).encode(), context.encode())
        return base64.b64encode(nonce + sealed).decode()

    def decrypt(self, token: str, context: str) -> Any:
        raw = base64.b64decode(token)
        return json.loads(self._aead.decrypt(raw[:12], raw[12:], context.encode()))
