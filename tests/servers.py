"""Real servers on loopback for tests: an ASGI app under uvicorn, and Node helpers."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

NODE_DIR = Path(__file__).parent / "node"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serve_in_thread(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 in a thread; yields its base URL.

    The app's lifespan runs in the server's own event loop, so whatever it opened there
    (database pools, HTTP clients) is also closed there.
    """
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def node_idp() -> Iterator[str]:
    """The real oauth2-mock-server (tests/node/idp.mjs); yields its issuer URL."""
    if not (NODE_DIR / "node_modules" / "oauth2-mock-server").is_dir():
        pytest.fail("tests/node/node_modules is missing: run `make install`")
    process = subprocess.Popen(
        ["node", str(NODE_DIR / "idp.mjs")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            pytest.fail("the OIDC test provider did not start")
        issuer: str = json.loads(line)["issuer"]
        yield issuer
    finally:
        if process.stdin:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
