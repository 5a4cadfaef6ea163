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
import asyncio
import contextlib
import json
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import frontend, servers
from bench.common import new_secret
from bench.loadgen import read_response

CONNECTIONS = 8
_TOTALS = re.compile(rb"^totals:\s+(\d+)", re.MULTILINE)
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _send(streams: list[Stream], request: bytes, count: int) -> None:
    """`count` requests round-robin over the keep-alive connections, each answered whole."""
    for index in range(count):
        reader, writer = streams[index % len(streams)]
        writer.write(request)
        status = await read_response(reader)
        if status != 200:
            raise RuntimeError(f"answered {status}: {request[:60]!r}")


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
        return asyncio.run(self._counted(request, warmup, count)) / count

    async def _counted(self, request: bytes, warmup: int, count: int) -> int:
        """Instructions over `count` requests, after `warmup` uncounted ones on the same
        connections."""
        streams = [
            await asyncio.open_connection("127.0.0.1", self.server.port) for _ in range(CONNECTIONS)
        ]
        try:
            await _send(streams, request, warmup)
            self._control("-i", "on")
            self._control("-z")
            await _send(streams, request, count)
            self._control("-d")
            self._control("-i", "off")
        finally:
            for _, writer in streams:
                writer.close()
        return _latest_total(self.dumps, self.pid)


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
