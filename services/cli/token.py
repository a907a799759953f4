"""`venta token --user <clerk-id>`: a bearer token from the running local identity provider, printed alone.

So that `TOKEN=$(./venta token --user alice)` works in a shell. The provider also makes sure the user exists
(as Clerk's webhook would), so the token is accepted by the gateway at once.
"""

from __future__ import annotations

import os
import sys

import httpx

DEFAULT_URL = "http://127.0.0.1:5010"


def mint(user: str, *, identity_url: str, ttl_s: int | None = None, admin_token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
    body: dict[str, object] = {"user": user}
    if ttl_s is not None:
        body["ttlSeconds"] = ttl_s
    try:
        response = httpx.post(f"{identity_url.rstrip('/')}/v1/tokens", json=body, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        raise SystemExit(
            f"venta token: the identity provider at {identity_url} does not answer ({exc}); is `./venta up` running?"
        ) from None
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        hint = ""
        if response.status_code == 401:
            hint = (
                "; set VENTA_IDENTITY_ADMIN_TOKEN (in a cluster: kubectl get secret <platform>-identity-admin "
                "-o jsonpath='{.data.token}' | base64 -d)"
            )
        raise SystemExit(f"venta token: {response.status_code} {message}{hint}")
    return str(response.json()["token"])


def run_token(user: str, *, identity_url: str | None, ttl_s: int | None) -> None:
    url = identity_url or os.environ.get("VENTA_IDENTITY_URL", DEFAULT_URL)
    print(mint(user, identity_url=url, ttl_s=ttl_s, admin_token=os.environ.get("VENTA_IDENTITY_ADMIN_TOKEN")))
    sys.stdout.flush()
