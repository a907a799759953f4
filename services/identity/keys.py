"""The provider's RSA signing keys: the newest signs, the retired ones stay published until their tokens expire.

Keys are persisted as PKCS#8 PEM files (mode 0600) under the key directory in local mode, so tokens minted before a
restart still verify after it; without a directory they live in memory (tests). In a cluster the directory is the
operator's Secret, read-only: every replica and every rollout signs with the same key, and rotation is refused
(replace the Secret's key, then restart). The key id is the key's RFC 7638
thumbprint, so it is stable and says nothing but which key it is. Rotation adds a key, makes it current, and drops
keys beyond the `retired` newest previous ones: verifiers learn the new key id from the JWKS on first sight.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KEY_BITS = 2048
ALGORITHM = "RS256"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def thumbprint(public: rsa.RSAPublicKey) -> str:
    numbers = public.public_numbers()
    canonical = json.dumps({"e": _int(numbers.e), "kty": "RSA", "n": _int(numbers.n)}, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey
    created_at: int

    def jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": ALGORITHM}

    def pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def new_key() -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    return SigningKey(kid=thumbprint(private.public_key()), private=private, created_at=time.time_ns())


class KeyRing:
    def __init__(self, directory: Path | None, *, retired: int = 2) -> None:
        self.directory = directory
        self.retired = retired
        self.keys: list[SigningKey] = self._load()  # oldest first
        if not self.keys:
            self._add(new_key())

    @property
    def rotatable(self) -> bool:
        """False when the keys come from a read-only directory (a mounted Secret): they change only there."""
        if self.directory is None:
            return True
        existing = self.directory if self.directory.exists() else self.directory.parent
        return os.access(existing, os.W_OK)

    @property
    def current(self) -> SigningKey:
        return self.keys[-1]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in reversed(self.keys)]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.current.private, algorithm=ALGORITHM, headers={"kid": self.current.kid})

    def rotate(self, key: SigningKey | None = None) -> SigningKey:
        """Make a new key current; keep `retired` previous ones published. Generating a key takes ~100 ms."""
        key = key or new_key()
        self._add(key)
        while len(self.keys) > self.retired + 1:
            old = self.keys.pop(0)
            if self.directory is not None:
                (self.directory / f"{old.created_at}-{old.kid}.pem").unlink(missing_ok=True)
        return key

    def _add(self, key: SigningKey) -> None:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.directory.chmod(0o700)
            path = self.directory / f"{key.created_at}-{key.kid}.pem"
            path.touch(mode=0o600)
            path.write_bytes(key.pem())
        self.keys.append(key)

    def _load(self) -> list[SigningKey]:
        if self.directory is None or not self.directory.is_dir():
            return []
        keys = []
        for path in sorted(self.directory.glob("*.pem")):
            created, _, _ = path.stem.partition("-")
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(private, rsa.RSAPrivateKey) and created.isdigit():
                keys.append(SigningKey(thumbprint(private.public_key()), private, int(created)))
        return sorted(keys, key=lambda k: k.created_at)
