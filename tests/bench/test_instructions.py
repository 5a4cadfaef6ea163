"""bench/instructions.py sends the browser's requests."""

from __future__ import annotations

from bench import frontend
from bench.instructions import request_bytes

BROWSER = frontend.Browser("token", {"next-auth.csrf-token": "a%7Cb"}, "a")


def test_an_update_request_carries_its_body_and_length() -> None:
    route = next(route for route in frontend.ROUTES if route.method == "POST")
    head, _, body = request_bytes(route, BROWSER).partition(b"\r\n\r\n")
    assert (f"Content-Length: {len(body)}".encode() in head, body) == (
        True,
        BROWSER.update_body().encode(),
    )


def test_a_signed_out_request_sends_no_session_cookie() -> None:
    route = next(route for route in frontend.ROUTES if not route.signed_in)
    assert b"next-auth.session-token" not in request_bytes(route, BROWSER)
