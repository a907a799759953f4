"""The security headers every API answer carries: added when the app did not set them, the app's own kept, the strict
CSP spared the interactive docs; garbage from the app's side (no headers at all, a tuple) still gets them."""

from __future__ import annotations

from typing import Any

import pytest

from services.kit.http.middleware import API_CSP, API_SECURITY_HEADERS, SecurityHeadersMiddleware


async def _answer(path: str, headers: Any) -> dict[str, str]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        start: dict[str, Any] = {"type": "http.response.start", "status": 200}
        if headers is not None:
            start["headers"] = headers
        await send(start)
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await SecurityHeadersMiddleware(app)({"type": "http", "path": path}, None, send)  # type: ignore[arg-type]
    raw = sent[0]["headers"]
    assert len({name for name, _ in raw}) == len(raw), "no header twice"
    return {name.decode(): value.decode() for name, value in raw}


@pytest.mark.parametrize("given", [None, [], ()], ids=["absent", "empty-list", "empty-tuple"])
async def test_every_header_is_added(given: Any) -> None:
    assert await _answer("/v1/vendors/x", given) == {**API_SECURITY_HEADERS, "content-security-policy": API_CSP}


async def test_the_apps_own_values_stay_and_the_docs_get_no_csp() -> None:
    own = [(b"X-Frame-Options", b"SAMEORIGIN"), (b"content-type", b"application/json")]
    answer = await _answer("/docs", own)
    assert answer["X-Frame-Options"] == "SAMEORIGIN" and "x-frame-options" not in answer
    assert "content-security-policy" not in answer
    assert answer["x-content-type-options"] == "nosniff" and answer["content-type"] == "application/json"
