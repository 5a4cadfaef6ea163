"""The servers under test, as real processes on loopback: `authsvc serve` and the peer app."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.common import AUTHSVC, PYTHON, ROOT, children, clean_environment, free_port


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    started_in: float  # seconds from launch to the first answered request

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The server and every process it started (uvicorn's workers)."""
        return [self.process.pid, *children(self.process.pid)]

    def worker_pids(self) -> list[int]:
        """The processes that answer requests: uvicorn's workers, or the server itself."""
        workers = [pid for pid in children(self.process.pid) if _is_worker(pid)]
        return workers or [self.process.pid]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _is_worker(pid: int) -> bool:
    """A uvicorn worker (a multiprocessing spawn child), not its resource tracker."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"spawn_main" in cmdline


def answered(port: int, path: str = "/healthz", timeout: float = 1.0) -> bool:
    """Whether a GET on 127.0.0.1:`port` gets a 200 now (a raw socket: cheap to poll)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            sock.sendall(request.encode())
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _launch(
    name: str,
    command: list[str],
    env: dict[str, str],
    *,
    port: int,
    directory: Path,
    ready_path: str,
    deadline: float = 30.0,
) -> Server:
    log = directory / f"{name}.log"
    started = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - fixed argv: this venv's programs
            command, env=env, cwd=directory, stdout=sink, stderr=subprocess.STDOUT
        )
    while time.perf_counter() - started < deadline:
        if answered(port, ready_path, timeout=0.5):
            return Server(name, process, port, log, time.perf_counter() - started)
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log.read_text()[-3000:]}")
        time.sleep(0.005)
    process.kill()
    process.wait()
    raise RuntimeError(f"{name} did not answer within {deadline:.0f} s:\n{log.read_text()[-3000:]}")


def database_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'bench.db'}"


def authsvc_environment(directory: Path, secret: str, port: int) -> dict[str, str]:
    return clean_environment(
        NEXTAUTH_SECRET=secret,
        NEXTAUTH_URL=f"http://127.0.0.1:{port}",
        DATABASE_URL=database_url(directory),
        AUTHSVC_LOG_LEVEL="warning",
        # The storm stands for many clients guessing at many accounts; from one address at
        # one account the brute-force throttle would answer 429 (no hashing) after 100
        # attempts, and the storm would stop costing what it measures.
        AUTHSVC_RATE_LIMIT_ACCOUNT="1000000/hour",
        AUTHSVC_RATE_LIMIT_ADDRESS="1000000/hour",
    )


def start_authsvc(
    directory: Path,
    secret: str,
    *,
    workers: int = 1,
    name: str = "",
    settings: Mapping[str, str] | None = None,
) -> Server:
    """`authsvc serve` on a free port, on an SQLite file in `directory` (it migrates itself).

    `settings` are extra environment variables (AUTHSVC_REVOCATION=...)."""
    port = free_port()
    command = [AUTHSVC, "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)]
    return _launch(
        name or f"authsvc-{workers}w",
        command,
        {**authsvc_environment(directory, secret, port), **(settings or {})},
        port=port,
        directory=directory,
        ready_path="/healthz",
    )


@contextlib.contextmanager
def authsvc(
    directory: Path,
    secret: str,
    *,
    workers: int = 1,
    name: str = "",
    settings: Mapping[str, str] | None = None,
) -> Iterator[Server]:
    server = start_authsvc(directory, secret, workers=workers, name=name, settings=settings)
    try:
        yield server
    finally:
        server.stop()


def create_user(directory: Path, secret: str, email: str, password: str) -> str:
    """`authsvc create-user` against the benchmark's database; the new user's id."""
    result = subprocess.run(  # noqa: S603 - fixed argv: this venv's authsvc
        [AUTHSVC, "create-user", "--email", email, "--password", password, "--role", "ADMIN"],
        env=authsvc_environment(directory, secret, 0),
        cwd=directory,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # "created user <id> <email> role ADMIN"
    return result.stdout.split()[2]


@contextlib.contextmanager
def peer(directory: Path, secret: str) -> Iterator[Server]:
    """bench/peer_app.py under uvicorn with `authsvc serve`'s options."""
    port = free_port()
    command = [PYTHON, "-m", "uvicorn", "bench.peer_app:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1", "--loop", "uvloop", "--http", "httptools"]
    command += ["--no-access-log", "--no-proxy-headers", "--log-level", "warning"]
    env = clean_environment(BENCH_PEER_SECRET=secret, PYTHONPATH=str(ROOT))
    server = _launch("peer", command, env, port=port, directory=directory, ready_path="/constant")
    try:
        yield server
    finally:
        server.stop()
