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
connection is just closed. An idle keep-alive connection is closed after
AUTHSVC_KEEPALIVE_TIMEOUT by the same one timer a connection (uvicorn starts and cancels
a timer for every request). With uvicorn's `limit_concurrency` (AUTHSVC_MAX_CONNECTIONS,
503 past it), this bounds what slow clients can hold: a socket each, for a deadline.

Each answer's head is written with its first body message (`WriteOnceCycle`): one
send(2) an answer instead of uvicorn's two. Measured with wrk on one pinned core, that
and the keep-alive timer took /healthz from 46 to 34 µs of CPU a request (bare uvicorn:
34), and 10 to 13 µs off every other route (docs/performance.md). A worker's first
connection also freezes the heap its startup built (`freeze_startup_heap`), so full
garbage collections no longer stall the event loop for tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import urllib.parse
from typing import Any, ClassVar

import httptools
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

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


# Whether this process froze its heap; not `gc.get_freeze_count()`, which counts the frozen
# objects one by one (milliseconds, on every connection).
_heap_frozen = False


def freeze_startup_heap() -> None:
    """Move everything alive now out of the cyclic garbage collector's way, once a process.

    uvicorn starts listening only after the app's startup, so at a worker's first
    connection the heap holds what lives as long as the process: the imported modules,
    the app and its services, ~150,000 tracked objects. A full collection walks all of
    them; measured under POST /session at c=64 (whose database reads allocate enough to
    trigger several a second), each took 75-105 ms, stalled every request in flight and
    made the p99 six times the median. Frozen, a full collection walks only what came
    after: under 2 ms, p99 1.4-1.6x the median (docs/performance.md). Objects frozen are still
    freed by reference counting; only a cycle among them that becomes garbage later stays.
    """
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.freeze()


class HeadTooLargeError(Exception):
    """Raised inside a parser callback; httptools stops parsing the connection."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    # Whether the worker's first connection freezes the heap (see `freeze_startup_heap`).
    freezes_startup_heap: ClassVar[bool] = True

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
        # Between an answer and the next request's first byte: the deadline is keep-alive's.
        self._idle = False
        # From a request's first byte to its last (head and body) being parsed.
        self._receiving = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.freezes_startup_heap:
            freeze_startup_heap()
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
        self._idle = False
        self._receiving = True
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
        # uvicorn's, starting a `WriteOnceCycle` instead of its own.
        parser = self.parser
        http_version = parser.get_http_version()
        scope = self.scope
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        scope["path"] = self.root_path + path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        scope["query_string"] = parsed_url.query or b""
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        else:
            app = self.app
        existing_cycle = self.cycle
        self.cycle = WriteOnceCycle(
            scope=scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and parser.should_keep_alive(),
            on_response=self.on_response_complete,
        )
        if existing_cycle is None or existing_cycle.response_complete:
            self._start_asgi_task(self.cycle, app)
        else:
            # Pipelined requests wait their turn.
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, app))

    def on_message_complete(self) -> None:
        self._receiving = False
        self._deadline_at = None
        HttpToolsProtocol.on_message_complete(self)
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and not self.pipeline:
            # Answered before its body had all arrived: now the connection is idle.
            self._await_next_request()

    def on_response_complete(self) -> None:
        # uvicorn's, with the keep-alive deadline kept like the read deadlines (one timer a
        # connection) instead of a new timer started and cancelled for every request.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif not self._receiving:
            # Otherwise a request is arriving (the next one's head, or this one's body, which
            # the app answered without): its read deadline stays in force.
            self._await_next_request()

    def _await_next_request(self) -> None:
        self._idle = True
        self._deadline_at = self.loop.time() + self.timeout_keep_alive
        self._schedule()

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
        if self._idle:
            self.transport.close()
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


class WriteOnceCycle(RequestResponseCycle):
    """uvicorn's request-response cycle, writing an answer's head with its first body
    message, in one `transport.write` (one send(2), one wake-up of the peer, instead of
    two), and checking the head's header names and values with uvicorn's own two regular
    expressions run once over all the names and once over all the values, instead of twice
    per header (each looks for one forbidden character, so the verdict is the same). What
    it writes is byte for byte uvicorn's; only an app that starts an answer and then fails
    before any body gets a closed connection without the head uvicorn would have sent."""

    _pending_head = b""

    async def send(self, message: ASGISendEvent) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(
                    f"Expected ASGI message 'http.response.start', but got '{message['type']}'."
                )
            self.response_started = True
            self.waiting_for_100_continue = False
            self._start(message["status"], message.get("headers", ()))
            return
        if self.response_complete:
            raise RuntimeError(
                f"Unexpected ASGI message '{message['type']}' sent, "
                "after response already completed."
            )
        if message["type"] != "http.response.body":
            raise RuntimeError(
                f"Expected ASGI message 'http.response.body', but got '{message['type']}'."
            )
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        if self.scope["method"] == "HEAD":
            self.expected_content_length = 0
            out = b""
        elif self.chunked_encoding:
            out = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            if not more_body:
                out += b"0\r\n\r\n"
        else:
            if len(body) > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            out = body
        head = self._pending_head
        if head:
            self._pending_head = b""
            out = head + out
        if out:
            self.transport.write(out)
        if not more_body:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()

    def _start(self, status_code: int, headers: Any) -> None:
        lines = []
        names = []
        values = []
        has_connection_close = False
        for name, value in self.default_headers:
            names.append(name)
            values.append(value)
            lines.append(name + b": " + value + b"\r\n")
        for name, value in headers:
            names.append(name)
            values.append(value)
            name = name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection":
                tokens = [token.lower().strip() for token in value.split(b",")]
                if b"close" in tokens:
                    self.keep_alive = False
                    has_connection_close = True
            lines.append(name + b": " + value + b"\r\n")
        if HEADER_RE.search(b"".join(names)):
            raise RuntimeError("Invalid HTTP header name.")
        if HEADER_VALUE_RE.search(b"".join(values)):
            raise RuntimeError("Invalid HTTP header value.")
        block = b"".join(lines)
        tail = b""
        if not self.keep_alive and not has_connection_close:
            tail += b"connection: close\r\n"
        if (
            self.chunked_encoding is None
            and self.scope["method"] != "HEAD"
            and status_code not in (204, 304)
        ):
            self.chunked_encoding = True
            tail += b"transfer-encoding: chunked\r\n"
        self._pending_head = STATUS_LINE[status_code] + block + tail + b"\r\n"
