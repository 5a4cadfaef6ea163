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
        self._head_received = 0  # bytes received while the head was still incomplete
        self._head_too_large = False
        self.head_timeout, self.body_timeout = read_deadlines()
        # The read deadline in force (loop time), or None; and the one timer that checks it.
        self._deadline_at: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.head_timeout)
        self._schedule()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    # The parser callbacks below run several times a request: they call the base class
    # directly (no `super()`) and count the head once it is whole, not header by header.

    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        self._in_head = True
        self._head_received = 0
        self._deadline_at = self.loop.time() + self.head_timeout

    def on_headers_complete(self) -> None:
        # The request line's URL and every header line ("name: value" and CRLF), as the
        # parser handed them over; raising here stops the parser (431, see send_400_response).
        headers = self.headers
        size = len(self.url) + sum(len(name) + len(value) for name, value in headers)
        if size + 4 * len(headers) > self.max_head_bytes:
            self._head_too_large = True
            raise HeadTooLargeError
        self._in_head = False
        self._deadline_at = self.loop.time() + self.body_timeout
        HttpToolsProtocol.on_headers_complete(self)

    def on_message_complete(self) -> None:
        self._deadline_at = None
        HttpToolsProtocol.on_message_complete(self)

    # Deadlines are set and cleared by the parser's callbacks, several times a request, so
    # setting one only records it; `_schedule` (once the received bytes are parsed) keeps
    # one timer no later than it. A request that arrives whole is done before that: no timer
    # is started or stopped for it (creating and cancelling two timers a request cost a
    # fifth of /healthz; docs/performance.md). A timer that fires before the deadline in
    # force (which moved on) re-arms itself for it.

    def _arm(self, seconds: float) -> None:
        self._deadline_at = self.loop.time() + seconds

    def _disarm(self) -> None:
        self._deadline_at = None

    def _schedule(self) -> None:
        at = self._deadline_at
        if at is None:
            return
        timer = self._timer
        if timer is not None:
            if timer.when() <= at:
                return
            timer.cancel()
        self._timer = self.loop.call_at(at, self._check_deadline)

    def _check_deadline(self) -> None:
        self._timer = None
        at = self._deadline_at
        if at is None:
            return
        if self.loop.time() < at:
            self._timer = self.loop.call_at(at, self._check_deadline)
            return
        self._deadline_at = None
        self._read_timed_out()

    def _read_timed_out(self) -> None:
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

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            return
        # The parser hands over a header only once it is complete and keeps a partial one
        # to itself; this bounds that buffer (one header line sent slowly, or endlessly).
        if self._in_head and not self._head_too_large:
            self._head_received += len(data)
            if self._head_received > self.max_head_bytes:
                self._head_too_large = True
                self.send_400_response("")
                return
        self._schedule()

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
