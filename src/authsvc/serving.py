"""Limits the HTTP server enforces before a request reaches the app.

uvicorn's default parser (httptools) accepts a request head of any size: measured with
uvicorn 0.54, a 1 MiB `Cookie` header is read, buffered and handed to the app. The app
then bounds its own reading (a POST body over 64 KiB is a 413 at once, before it is read;
see `routes.context`), but the head is already in memory by then.

`LimitedHttpToolsProtocol` is uvicorn's httptools protocol that counts the bytes of the
request line and headers as they arrive and answers 431 and closes the connection once
they pass the limit. The limit is uvicorn's own `h11_max_incomplete_event_size`, which
bounds the head in uvicorn's other parser (h11) the same way, so one setting
(AUTHSVC_MAX_HEADER_BYTES) holds whichever parser runs.

It also puts deadlines on reading a request, which uvicorn has none of (its keep-alive
timer only runs between requests, and any byte received stops it): measured, a connection
that sent an unfinished head, a body shorter than its Content-Length, or an endless chunked
body was held for minutes. A head must arrive whole within AUTHSVC_HEAD_TIMEOUT of its
first byte (or of the connection, for a client that sends nothing), and a body within
AUTHSVC_BODY_TIMEOUT of its head. Past a deadline the client gets 408 and the connection
is closed; once an answer was sent (a route that answers without reading the body), the
connection is just closed. With uvicorn's `limit_concurrency` (AUTHSVC_MAX_CONNECTIONS,
503 past it), this bounds what slow clients can hold: a socket each, for a deadline.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from authsvc.settings import Settings

DEFAULT_MAX_HEAD_BYTES = 32 * 1024
_431 = b"Request header fields too large"
_408 = b"Request timeout"


@functools.cache
def read_deadlines() -> tuple[float, float]:
    """AUTHSVC_HEAD_TIMEOUT and AUTHSVC_BODY_TIMEOUT, read once per worker process (uvicorn
    builds the protocol itself, so they cannot be passed in; `serve` has checked them)."""
    settings = Settings()
    return settings.head_timeout, settings.body_timeout


class HeadTooLargeError(Exception):
    """Raised inside a parser callback; httptools stops parsing the connection."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_HEAD_BYTES
        self._in_head = True
        self._head_bytes = 0  # request line and headers the parser has handed over
        self._head_received = 0  # bytes received while the head was still incomplete
        self._head_too_large = False
        self.head_timeout, self.body_timeout = read_deadlines()
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._head_received = 0
        self._arm(self.head_timeout)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._arm(self.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._read_timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _read_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._in_head:
            # A new head; any earlier (pipelined) request must have finished answering.
            idle = cycle is None or cycle.response_complete
        else:
            idle = not cycle.response_started
        if idle:
            self._write_and_close(b"408 Request Timeout", _408)
        else:
            self.transport.close()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_head_bytes:
            self._head_too_large = True
            raise HeadTooLargeError

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # The parser hands over a header only once it is complete and keeps a partial one
        # to itself; this bounds that buffer (one header line sent slowly, or endlessly).
        if self._in_head and not self._head_too_large and not self.transport.is_closing():
            self._head_received += len(data)
            if self._head_received > self.max_head_bytes:
                self._head_too_large = True
                self.send_400_response("")

    def send_400_response(self, msg: str) -> None:
        if not self._head_too_large:
            super().send_400_response(msg)
            return
        self._write_and_close(b"431 Request Header Fields Too Large", _431)

    def _write_and_close(self, status: bytes, body: bytes) -> None:
        content = [b"HTTP/1.1 " + status + b"\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
