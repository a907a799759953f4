"""Hand-made tokens for the authentication tests: valid ones, and each kind an attacker or a bug could send."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.identity.keys import KeyRing, SigningKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(issuer: str, subject: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "azp": "venta-local",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "sid": "sess_test",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(keys: KeyRing, payload: dict[str, Any]) -> str:
    return keys.sign(payload)


def signed_with(key: SigningKey, payload: dict[str, Any]) -> str:
    return jwt.encode(payload, key.private, algorithm="RS256", headers={"kid": key.kid})


def unsigned(keys: KeyRing, payload: dict[str, Any]) -> str:
    """`alg: none`, naming a real key id."""
    header = {"alg": "none", "typ": "JWT", "kid": keys.current.kid}
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}."


def hs256_with_public_key(keys: KeyRing, payload: dict[str, Any]) -> str:
    """The classic confusion attack: HMAC "signed" with the (public) RSA key as the secret."""
    public_pem = keys.current.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": keys.current.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def foreign_key(payload: dict[str, Any], *, kid: str) -> str:
    """RS256, but signed by a key the issuer never published."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})
