"""bench/instructions.py's client reads whole answers and sends the browser's requests."""

from __future__ import annotations

import socket
import threading

import pytest

from bench import frontend
from bench.instructions import _read_answer, request_bytes

BROWSER = frontend.Browser("token", {"next-auth.csrf-token": "a%7Cb"}, "a")


def _answered(*parts: bytes) -> int:
    ours, theirs = socket.socketpair()

    def serve() -> None:
        for part in parts:
            theirs.sendall(part)
        theirs.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=serve)
    sender.start()
    try:
        return _read_answer(ours)
    finally:
        sender.join()
        ours.close()
        theirs.close()


def test_an_answer_with_a_content_length_is_read_to_its_end_across_segments() -> None:
    assert _answered(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n01234", b"56789") == 200


def test_a_chunked_answer_is_read_to_its_last_chunk() -> None:
    parts = (
        b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n",
        b"0\r\n\r\n",
    )
    assert _answered(*parts) == 404


def test_a_connection_closed_mid_answer_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="closed"):
        _answered(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n01")


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
