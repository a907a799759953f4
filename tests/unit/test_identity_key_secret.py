"""The key the operator generates for the local identity issuer is one the issuer's key ring loads and signs with,
under the file name the operator mounts it as: the two sides of the Secret agree."""

from __future__ import annotations

from pathlib import Path

import jwt

from services.identity.keys import KeyRing, thumbprint
from venta_operator.builders.pods import IDENTITY_KEY_DIR, needs_volumes
from venta_operator.builders.secret import IDENTITY_KEY_FILE
from venta_operator.components import IDENTITY
from venta_operator.reconciler import generate_signing_key
from venta_operator.spec import Platform, parse_spec


def test_the_issuer_signs_with_the_operators_key(tmp_path: Path) -> None:
    (tmp_path / IDENTITY_KEY_FILE).write_text(generate_signing_key())
    ring = KeyRing(tmp_path)
    assert len(ring.keys) == 1 and ring.current.kid == thumbprint(ring.current.private.public_key())
    token = ring.sign({"sub": "alice"})
    public = jwt.PyJWK(ring.jwks()["keys"][0]).key
    assert jwt.decode(token, public, algorithms=["RS256"])["sub"] == "alice"
    assert KeyRing(tmp_path).current.kid == ring.current.kid  # a second pod (or a restart) signs with the same key


def test_the_identity_pod_mounts_that_key_read_only() -> None:
    p = Platform(name="demo", namespace="shop", spec=parse_spec({"version": "1"}))
    volumes, mounts = needs_volumes(p, IDENTITY.needs)
    assert volumes == [
        {
            "name": "signing-keys",
            "secret": {
                "secretName": "demo-identity-keys",
                "defaultMode": 0o440,
                "items": [{"key": IDENTITY_KEY_FILE, "path": IDENTITY_KEY_FILE}],
            },
        }
    ]
    assert mounts == [{"name": "signing-keys", "mountPath": IDENTITY_KEY_DIR, "readOnly": True}]


def test_two_operator_keys_differ() -> None:
    assert generate_signing_key() != generate_signing_key()
