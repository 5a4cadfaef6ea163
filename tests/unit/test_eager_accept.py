"""`authsvc serve`'s event loop lets a burst of new connections in at once.

uvloop (libuv >= 1.45) accepts one connection per loop iteration; a busy server then
keeps the k-th new connection waiting k iterations (docs/performance.md, "The latency
tail"). `EagerAcceptLoop` accepts every waiting connection when the socket is readable.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import uvloop

from authsvc.eager_accept import LOOP, EagerAcceptLoop

BURST = 20
ITERATIONS = 5


class Counting(asyncio.Protocol):
    made: list[asyncio.BaseTransport]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(transport)


def _accepted_within_a_few_iterations(new_loop: Callable[[], asyncio.AbstractEventLoop]) -> int:
    """How many of a burst of waiting connections the loop lets in within ITERATIONS."""
    made: list[asyncio.BaseTransport] = []
    Counting.made = made

    async def scenario() -> int:
        server = await asyncio.get_running_loop().create_server(Counting, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        # Connected in the kernel's backlog while the loop is busy (this code holds it).
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(BURST)]
        for _ in range(ITERATIONS):
            await asyncio.sleep(0)
        accepted = len(made)
        for client in clients:
            client.close()
        for transport in made:
            transport.close()
        server.close()
        await server.wait_closed()
        return accepted

    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(scenario())


def test_plain_uvloop_lets_a_burst_of_connections_in_one_per_iteration() -> None:
    assert _accepted_within_a_few_iterations(uvloop.new_event_loop) <= ITERATIONS


def test_the_serving_loop_lets_a_whole_burst_of_connections_in_at_once() -> None:
    assert _accepted_within_a_few_iterations(EagerAcceptLoop) == BURST


def test_connections_the_serving_loop_accepted_are_served() -> None:
    async def scenario() -> bytes:
        class Echo(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport
                nodelay = transport.get_extra_info("socket").getsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY
                )
                transport.write(b"nodelay=%d;" % bool(nodelay))

            def data_received(self, data: bytes) -> None:
                self.transport.write(data)
                self.transport.close()

        server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        server.close()
        await server.wait_closed()
        return answer

    with asyncio.Runner(loop_factory=EagerAcceptLoop) as runner:
        assert runner.run(scenario()) == b"nodelay=1;ping"


def test_serve_names_the_serving_loop_as_uvicorn_imports_it() -> None:
    from uvicorn.importer import import_from_string

    assert import_from_string(LOOP) is EagerAcceptLoop
