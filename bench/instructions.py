"""Instructions per request on the frontend's path, counted by callgrind: repeatable whatever
else the machine is doing, so a change to the serving stack can be judged in two minutes.

    .venv/bin/python -m bench.instructions                 # authsvc and bare uvicorn
    .venv/bin/python -m bench.instructions --with-core     # and next-auth's core handler
    .venv/bin/python -m bench.instructions --json out.json

Each server runs under `valgrind --tool=callgrind --instr-atstart=no` with bench/frontend.py's
browser (a next-auth-minted session token, the CSRF and callback-url cookies next-auth's own
`/csrf` set). Per route: warm-up requests with counting off, then callgrind counts the whole
server process (parser, app, event loop, kernel calls' user side) over `--requests` requests
sent round-robin over 8 keep-alive connections, and the total is divided by their number.
The ratios are what issue 12's CPU targets bound (docs/performance.md); wall-clock CPU from
`python -m bench` is the figure that counts, this one is the quick and steady proxy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import frontend, servers
from bench.common import new_secret

CONNECTIONS = 8
_TOTALS = re.compile(rb"^totals:\s+(\d+)", re.MULTILINE)


class Client:
    """Keep-alive HTTP/1.1 connections that send fixed requests and read whole answers."""

    def __init__(self, port: int, connections: int = CONNECTIONS) -> None:
        self.sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
        for sock in self.sockets:
            sock.settimeout(120)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()

    def send(self, request: bytes, count: int) -> None:
        for index in range(count):
            sock = self.sockets[index % len(self.sockets)]
            sock.sendall(request)
            status = _read_answer(sock)
            if status != 200:
                raise RuntimeError(f"answered {status}: {request[:60]!r}")


def _read_answer(sock: socket.socket) -> int:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed mid-answer")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(b":") for line in lines[1:])
    }
    if b"content-length" in headers:
        remaining = int(headers[b"content-length"]) - len(body)
        while remaining > 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed mid-body")
            remaining -= len(chunk)
    else:  # chunked
        while not body.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed mid-body")
            body += chunk
    return int(lines[0].split()[1])


def request_bytes(route: frontend.Route, browser: frontend.Browser) -> bytes:
    lines = [
        f"{route.method} {route.path} HTTP/1.1",
        f"Host: {frontend.PUBLIC_URL.removeprefix('http://')}",
        f"Cookie: {browser.cookie_header(signed_in=route.signed_in)}",
    ]
    body = ""
    if route.method == "POST":
        body = browser.update_body()
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


class Counted:
    """A server under callgrind whose counts can be zeroed and dumped."""

    def __init__(self, server: servers.Server, dumps: Path) -> None:
        self.server = server
        self.dumps = dumps
        self.pid = server.process.pid

    def _control(self, *args: str) -> None:
        subprocess.run(  # noqa: S603 - fixed argv: valgrind's own tool
            ["callgrind_control", *args, str(self.pid)],  # noqa: S607
            check=True,
            capture_output=True,
        )

    def per_request(self, request: bytes, warmup: int, count: int) -> float:
        client = Client(self.server.port)
        try:
            client.send(request, warmup)
            self._control("-i", "on")
            self._control("-z")
            client.send(request, count)
            self._control("-d")
            self._control("-i", "off")
        finally:
            client.close()
        return _latest_total(self.dumps, self.pid) / count


def _latest_total(dumps: Path, pid: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        files = sorted(
            dumps.glob(f"callgrind.out.{pid}.*"),
            key=lambda p: int(p.suffix.lstrip(".")),
        )
        if files:
            found = _TOTALS.search(files[-1].read_bytes())
            if found:
                return int(found.group(1))
        time.sleep(0.1)
    raise RuntimeError("callgrind wrote no dump")


def _wrapper(dumps: Path) -> list[str]:
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={dumps}/callgrind.out.%p",
    ]


@contextlib.contextmanager
def _counted(server_cm: Any, dumps: Path) -> Iterator[Counted]:
    with server_cm as server:
        yield Counted(server, dumps)


def measure(requests: int, with_core: bool) -> dict[str, Any]:
    secret = new_secret()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="authsvc-cg-") as raw, contextlib.ExitStack() as stack:
        directory = Path(raw)
        dumps = directory / "dumps"
        dumps.mkdir()
        wrapper = _wrapper(dumps)
        # The browser comes from a plain (uncounted) next-auth, so every server sees the same.
        core = stack.enter_context(servers.nextauth_core(directory, secret, frontend.PUBLIC_URL))
        browser = frontend.next_auth_browser(core, secret)
        authsvc = stack.enter_context(
            _counted(
                servers.authsvc(
                    directory,
                    secret,
                    name="authsvc-callgrind",
                    settings={"NEXTAUTH_URL": frontend.PUBLIC_URL},
                    wrapper=wrapper,
                ),
                dumps,
            )
        )
        bare = stack.enter_context(_counted(servers.bare(directory, wrapper=wrapper), dumps))
        counted = {frontend.AUTHSVC: authsvc}
        if with_core:
            counted[frontend.CORE] = stack.enter_context(
                _counted(
                    servers.nextauth_core(directory, secret, frontend.PUBLIC_URL, wrapper=wrapper),
                    dumps,
                )
            )
        for route in frontend.ROUTES:
            request = request_bytes(route, browser)
            for name, server in counted.items():
                node = name == frontend.CORE
                # V8 optimises a function after thousands of calls: warm Node longer.
                value = server.per_request(request, 2000 if node else 100, requests)
                results.setdefault(route.name, {})[name] = value
        for route in frontend.STACK:
            request = request_bytes(route, browser)
            server = bare if route.name == "constant" else authsvc
            name = frontend.STACK_SERVER[route.name]
            results.setdefault(route.name, {})[name] = server.per_request(request, 100, requests)
    return {"requests": requests, "instructions_per_request": results}


def _table(measured: dict[str, Any]) -> str:
    per = measured["instructions_per_request"]
    bare = per["constant"][frontend.BARE]
    lines = [f"{'route':<22}{'authsvc':>12}{'core':>12}{'ratio':>8}{'bare/this':>11}"]
    for route, values in per.items():
        mine = values.get(frontend.AUTHSVC)
        core = values.get(frontend.CORE)
        mine_text = f"{mine:>12,.0f}" if mine is not None else f"{'':>12}"
        core_text = f"{core:>12,.0f}" if core is not None else f"{'':>12}"
        ratio = f"{mine / core:>7.2f}x" if mine is not None and core else f"{'':>8}"
        floor = f"{bare / mine:>10.2f}x" if mine else f"{bare:>11,.0f}"
        lines.append(f"{route:<22}{mine_text}{core_text}{ratio}{floor}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--with-core", action="store_true", help="count next-auth's handler too")
    parser.add_argument("--json", type=Path, help="write the counts here")
    args = parser.parse_args(argv)
    measured = measure(args.requests, args.with_core)
    print(_table(measured))
    if args.json:
        args.json.write_text(json.dumps(measured, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
