"""Real processes for the operations tests: `authsvc serve` (uvicorn), an upstream app that
echoes what reaches it, and the example proxy configs of docs/examples.

A missing proxy binary fails the test in CI (CI=true) and skips it, with the reason,
elsewhere; `.ci/run` installs the binaries.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
AUTHSVC = Path(sys.executable).with_name("authsvc")
# The addresses the example configs are written with; the tests swap in free ports.
EXAMPLE_PROXY = "8080"
EXAMPLE_AUTHSVC = "127.0.0.1:8000"
EXAMPLE_APP = "127.0.0.1:3000"


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package `{name}`; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early:\n{log.read_text()[-3000:]}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up in {seconds}s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class Authsvc:
    url: str
    database_url: str
    log: Path

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [str(AUTHSVC), *args],
            env=authsvc_environment(url="http://localhost", database_url=self.database_url),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return result.stdout


def authsvc_environment(*, url: str, database_url: str, **extra: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("NEXTAUTH_", "AUTHSVC_", "AUTH_")) and name != "DATABASE_URL"
    }
    env.update(
        NEXTAUTH_SECRET=SECRET,
        NEXTAUTH_URL=url,
        DATABASE_URL=database_url,
        AUTHSVC_TRUSTED_PROXIES="127.0.0.1",
        AUTHSVC_LOG_FORMAT="json",
        **extra,
    )
    return env


@contextmanager
def run_authsvc(
    directory: Path,
    *,
    public_url: str,
    port: int | None = None,
    workers: int = 1,
    args: Sequence[str] = (),
    **extra: str,
) -> Iterator[Authsvc]:
    """`authsvc serve` on loopback, on an SQLite file it migrates itself; `args` are more
    options for `serve` (such as `--app`)."""
    port = port or free_port()
    database_url = f"sqlite+aiosqlite:///{directory / 'authsvc.db'}"
    log = directory / "authsvc.log"
    env = authsvc_environment(url=public_url, database_url=database_url, **extra)
    with log.open("wb") as sink:
        command = [str(AUTHSVC), "serve", "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen(
            [*command, "--workers", str(workers), *args],
            env=env,
            cwd=directory,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/healthz", process, log, 30)
        yield Authsvc(url=url, database_url=database_url, log=log)
    finally:
        stop(process)


class _EchoHandler(BaseHTTPRequestHandler):
    """Answers every request with its path and headers (raw names, in order) as JSON."""

    def _echo(self) -> None:
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": [[name, value] for name, value in self.headers.items()],
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _echo

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def run_upstream() -> Iterator[str]:
    """The protected app: echoes what reached it."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def render_example(name: str, replacements: Mapping[str, str]) -> str:
    """docs/examples/<name> with its example addresses replaced (each must occur)."""
    text = (EXAMPLES / name).read_text()
    for old, new in replacements.items():
        assert old in text, f"{name} no longer contains {old!r}"
        text = text.replace(old, new)
    return text


def headers_named(echo: Mapping[str, object], name: str) -> list[str]:
    """Values of every header the upstream received under `name`, any case, `_` as `-`."""
    wanted = name.lower().replace("_", "-")
    pairs = echo["headers"]
    assert isinstance(pairs, list)
    return [value for key, value in pairs if key.lower().replace("_", "-") == wanted]
