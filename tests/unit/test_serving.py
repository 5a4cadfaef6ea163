"""`authsvc serve`'s HTTP protocol answers byte for byte as uvicorn's own does.

`LimitedHttpToolsProtocol` writes each answer's head together with its first body message
and checks a head's header lines in one pass (serving.py); the limits and deadlines it adds
are tested against a running server in tests/e2e/test_faults.py. Here the same ASGI apps
run under uvicorn's `HttpToolsProtocol` and under authsvc's, on real sockets, and what a
client receives must be the same bytes.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from authsvc import serving
from authsvc.serving import LimitedHttpToolsProtocol

App = Callable[[Scope, Receive, Send], Awaitable[None]]


class Protocol(LimitedHttpToolsProtocol):
    """authsvc's protocol, leaving this test process's heap unfrozen."""

    freezes_startup_heap = False


GET = b"GET /x HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"


def _start(status: int, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": headers}


def _body(body: bytes, *, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body, "more_body": more}


def _answering(*messages: dict[str, Any]) -> App:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    return app


JSON = _answering(
    _start(
        200,
        [
            (b"content-type", b"application/json"),
            (b"Content-Length", b"11"),
            (b"set-cookie", b"a=b; Path=/; HttpOnly; SameSite=Lax"),
            (b"cache-control", b"no-store, max-age=0"),
        ],
    ),
    _body(b'{"ok":true}'),
)
STREAMED = _answering(
    _start(200, [(b"content-type", b"text/plain")]),
    _body(b"first ", more=True),
    _body(b"", more=True),
    _body(b"second", more=True),
    _body(b""),
)
IN_PARTS = _answering(
    _start(200, [(b"content-length", b"10")]),
    _body(b"01234", more=True),
    _body(b"56789"),
)
NO_CONTENT = _answering(_start(204, []), _body(b""))
CLOSING = _answering(
    _start(200, [(b"content-length", b"2"), (b"Connection", b"Close")]), _body(b"ok")
)
NO_BODY_MESSAGE_YET = _answering(_start(200, [(b"content-length", b"0")]), _body(b""))


async def _exchange(
    protocol: type[HttpToolsProtocol],
    app: App,
    request: bytes,
    *,
    keep_alive: int = 5,
    later: bytes = b"",
) -> bytes:
    """What a client that sends `request` (and `later`, once the first answer is in)
    receives until the server closes."""
    config = uvicorn.Config(
        app, lifespan="off", log_level="critical", access_log=False, timeout_keep_alive=keep_alive
    )
    config.load()
    state = ServerState()
    state.default_headers = [(b"server", b"test")]
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: protocol(config=config, server_state=state, app_state={}), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        received = b""
        if later:
            received = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            writer.write(later)
        received += await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
        return received
    finally:
        server.close()
        await server.wait_closed()


async def _both(app: App, request: bytes) -> tuple[bytes, bytes]:
    return (
        await _exchange(HttpToolsProtocol, app, request),
        await _exchange(Protocol, app, request),
    )


@pytest.mark.parametrize(
    ("app", "request_bytes"),
    [
        pytest.param(JSON, GET, id="content-length"),
        pytest.param(STREAMED, GET, id="chunked"),
        pytest.param(IN_PARTS, GET, id="body-in-parts"),
        pytest.param(NO_CONTENT, GET, id="204"),
        pytest.param(CLOSING, GET, id="app-closes"),
        pytest.param(NO_BODY_MESSAGE_YET, GET, id="empty-body"),
        pytest.param(JSON, b"HEAD /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", id="head"),
        pytest.param(STREAMED, b"GET /x HTTP/1.0\r\n\r\n", id="http-1.0"),
        pytest.param(JSON, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n" + GET, id="pipelined"),
    ],
)
async def test_an_answer_is_the_bytes_uvicorn_sends(app: App, request_bytes: bytes) -> None:
    uvicorns, authsvcs = await _both(app, request_bytes)
    assert authsvcs == uvicorns


@pytest.mark.parametrize(
    "header",
    [
        (b"x-a", b"one\r\nset-cookie: injected=1"),
        (b"x-a", b"one\nx-b: two"),
        (b"x-a", b"bell\x07"),
        (b"x a", b"space in the name"),
        (b"x-a:", b"colon in the name"),
        (b"set-cookie: forged=1; x", b"a name that reads as another header"),
    ],
)
async def test_a_header_that_could_split_or_forge_the_answer_is_never_written(
    header: tuple[bytes, bytes],
) -> None:
    app = _answering(_start(200, [header, (b"content-length", b"2")]), _body(b"ok"))
    assert await _exchange(Protocol, app, GET) == b""


async def test_header_names_and_values_are_judged_as_uvicorn_judges_them() -> None:
    # uvicorn lets an empty name through; so does authsvc (the same two expressions).
    app = _answering(_start(200, [(b"", b"x"), (b"content-length", b"2")]), _body(b"ok"))
    uvicorns, authsvcs = await _both(app, GET)
    assert authsvcs == uvicorns


async def test_a_body_longer_than_its_content_length_sends_no_half_answer() -> None:
    # uvicorn has sent the head by then and closes after it; authsvc holds the head until
    # the body is known to fit, so a proxy sees a connection closed before any answer.
    app = _answering(_start(200, [(b"content-length", b"2")]), _body(b"too long"))
    assert await _exchange(Protocol, app, GET) == b""


@pytest.fixture
def unfrozen_afterwards(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(serving, "_heap_frozen", False)
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen_afterwards")
async def test_a_workers_first_connection_moves_the_startup_heap_out_of_the_collectors_way() -> (
    None
):
    assert gc.get_freeze_count() == 0
    await _exchange(LimitedHttpToolsProtocol, JSON, GET)
    assert gc.get_freeze_count() > 0


# The read deadlines (AUTHSVC_HEAD_TIMEOUT, AUTHSVC_BODY_TIMEOUT) of the tests below.
SHORT = 0.3


@pytest.fixture
def short_read_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving, "read_deadlines", lambda: (SHORT, SHORT))


@pytest.mark.usefixtures("short_read_deadlines")
async def test_a_next_head_begun_before_the_answer_keeps_its_head_deadline() -> None:
    # The first byte of a second request arrives with the first; the rest never does. The
    # answer to the first must not turn the second's head deadline into keep-alive's (30 s).
    started = time.monotonic()
    received = await _exchange(
        Protocol, JSON, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\nG", keep_alive=30
    )
    assert (received.count(b"HTTP/1.1 "), b"408 Request Timeout" in received) == (2, True)
    assert time.monotonic() - started < 5


@pytest.mark.usefixtures("short_read_deadlines")
async def test_a_connection_answered_before_its_body_arrived_is_closed_once_idle() -> None:
    # The app answers without reading the body; once the body has come, the connection is
    # idle and keep-alive's deadline (1 s) closes it.
    started = time.monotonic()
    head = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n"
    received = await _exchange(Protocol, JSON, head, keep_alive=1, later=b"hello")
    assert (received.count(b"HTTP/1.1 200"), b"408" in received) == (1, False)
    assert time.monotonic() - started < 5
