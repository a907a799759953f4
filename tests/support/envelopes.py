"""The public API's error envelope (SPEC section 7), asserted the same way by every HTTP test."""

from __future__ import annotations

from typing import Any

import httpx


def assert_envelope(response: httpx.Response, status: int, type_: str, code: str | None = None) -> dict[str, Any]:
    """The response is the error envelope with this status/type (and code); returns the `error` object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"type", "code", "message", "details", "path", "requestId", "timestamp"}, error
    assert error["type"] == type_, error
    if code is not None:
        assert error["code"] == code, error
    assert error["requestId"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return dict(error)
