"""uvloop, accepting every waiting connection at once instead of one per loop iteration.

Since libuv 1.45 (libuv/libuv#3696, in every uvloop since 0.18) a listening socket
accepts ONE connection each time the event loop polls it. A busy loop polls once per
iteration, and an iteration of a saturated server runs every request that is ready: 64
connections of `/api/auth/session` at 0.3 ms each make 20 ms. A burst of new connections
(a proxy scaling its pool, a load balancer failing over, a benchmark starting) is then
let in one per iteration, so the k-th waits k iterations before its first byte is read;
measured on `authsvc serve` with 64 new connections, the last one's first answer came
after 0.7 s while every request already accepted took 20 ms (docs/performance.md, "The
latency tail"). asyncio's own loop accepts up to the backlog at once, but costs more per
request.

`EagerAcceptLoop` is uvicorn's loop in `authsvc serve` (`loop=LOOP`, in every worker): uvloop, whose
servers also watch their listening sockets themselves and, when one is readable, accept
until it is empty, handing each connection to the same protocol factory. uvloop's own
accept still runs too (whichever accepts first wins; the other finds nothing waiting), so
nothing else about serving changes: same transports (TCP_NODELAY set), same protocol,
same limits, same shutdown (closing the server stops both).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import uvloop

log = logging.getLogger("authsvc.serving")
# uvicorn's `loop` setting: an import string of the loop class (called to make the loop).
LOOP = "authsvc.eager_accept:EagerAcceptLoop"


class EagerAcceptLoop(uvloop.Loop):
    async def create_server(  # type: ignore[override]
        self, protocol_factory: Callable[[], asyncio.BaseProtocol], *args: Any, **kwargs: Any
    ) -> EagerServer:
        server = await super().create_server(protocol_factory, *args, **kwargs)
        return EagerServer(self, server, protocol_factory)


class EagerServer:
    """uvloop's server, plus a reader per listening socket that drains its backlog."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        server: asyncio.AbstractServer,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
    ) -> None:
        self._loop = loop
        self._server = server
        self._protocol_factory = protocol_factory
        self._listeners: list[socket.socket] = []
        # uvloop's server has the `sockets` of asyncio.Server (typed as AbstractServer).
        listening_sockets: tuple[socket.socket, ...] = tuple(getattr(server, "sockets", ()))
        for listening in listening_sockets:
            if listening.type != socket.SOCK_STREAM:
                continue
            # Our own descriptor of the same socket: uvloop keeps watching its own.
            own = socket.socket(listening.family, listening.type, fileno=os.dup(listening.fileno()))
            own.setblocking(False)
            self._listeners.append(own)
            loop.add_reader(own.fileno(), self._accept_all, own)

    @property
    def sockets(self) -> Any:
        return getattr(self._server, "sockets", ())

    def _accept_all(self, listening: socket.socket) -> None:
        while True:
            try:
                connection, _ = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                # EMFILE and the like: leave the rest to uvloop's own accept (and its logging).
                log.warning("accept failed: %s", exc.strerror or type(exc).__name__)
                return
            connection.setblocking(False)
            self._loop.create_task(self._serve(connection))

    async def _serve(self, connection: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol_factory, connection)
        except OSError:
            # The client left before its transport was set up.
            connection.close()

    def close(self) -> None:
        for listening in self._listeners:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(listening.fileno())
            listening.close()
        self._listeners.clear()
        self._server.close()

    async def wait_closed(self) -> None:
        await self._server.wait_closed()

    def is_serving(self) -> bool:
        return self._server.is_serving()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)
