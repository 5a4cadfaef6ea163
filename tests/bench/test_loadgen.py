"""bench/loadgen.py's client reads whole answers (it and bench/instructions.py send with it)."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from bench.loadgen import read_response


def _answered(*parts: bytes) -> int:
    ours, theirs = socket.socketpair()

    def serve() -> None:
        for part in parts:
            theirs.sendall(part)
        theirs.shutdown(socket.SHUT_WR)

    async def read() -> int:
        reader, writer = await asyncio.open_connection(sock=ours)
        try:
            return await read_response(reader)
        finally:
            writer.close()

    sender = threading.Thread(target=serve)
    sender.start()
    try:
        return asyncio.run(read())
    finally:
        sender.join()
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
