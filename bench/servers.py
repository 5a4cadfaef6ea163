"""The servers under test, as real processes on loopback: `authsvc serve`, the FastAPI peer
app, the bare uvicorn app, and next-auth's core handler and Next.js app (Node)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    AUTHSVC,
    BENCH,
    PYTHON,
    ROOT,
    children,
    clean_environment,
    free_port,
)

NEXTJS = BENCH / "nextjs"


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
    deadline: float | None = None,
    cpus: str | None = None,
    wrapper: Sequence[str] = (),
) -> Server:
    """Start `command` and wait for a 200 on `ready_path` (30 s; two minutes under a
    `wrapper` such as valgrind, which runs it); `cpus`: pinned there (taskset, which the
    process and everything it starts inherit)."""
    if deadline is None:
        deadline = 120.0 if wrapper else 30.0
    log = directory / f"{name}.log"
    command = [*wrapper, *command]
    if cpus is not None:
        command = ["taskset", "--cpu-list", cpus, *command]
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
    cpus: str | None = None,
    wrapper: Sequence[str] = (),
) -> Server:
    """`authsvc serve` on a free port, on an SQLite file in `directory` (it migrates itself).

    `settings` are extra environment variables (AUTHSVC_REVOCATION=...); `cpus`: pinned;
    `wrapper`: the program that runs it (valgrind)."""
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
        cpus=cpus,
        wrapper=wrapper,
    )


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def authsvc(
    directory: Path,
    secret: str,
    *,
    workers: int = 1,
    name: str = "",
    settings: Mapping[str, str] | None = None,
    cpus: str | None = None,
    wrapper: Sequence[str] = (),
) -> Iterator[Server]:
    server = start_authsvc(
        directory,
        secret,
        workers=workers,
        name=name,
        settings=settings,
        cpus=cpus,
        wrapper=wrapper,
    )
    with running(server):
        yield server


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
    with running(server):
        yield server


@contextlib.contextmanager
def bare(
    directory: Path, *, cpus: str | None = None, wrapper: Sequence[str] = ()
) -> Iterator[Server]:
    """bench/bare_app.py (a constant answer) on a plain uvicorn with the options `authsvc
    serve` passes it: the serving stack's floor."""
    port = free_port()
    command = [PYTHON, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--loop", "uvloop", "--http", "httptools"]
    command += ["--lifespan", "off", "--no-access-log", "--no-proxy-headers"]
    command += ["--log-level", "warning"]
    env = clean_environment(PYTHONPATH=str(ROOT))
    with running(
        _launch(
            "bare-uvicorn",
            command,
            env,
            port=port,
            directory=directory,
            ready_path="/",
            cpus=cpus,
            wrapper=wrapper,
        )
    ) as server:
        yield server


def _node_environment(secret: str, public_url: str) -> dict[str, str]:
    return clean_environment(
        NEXTAUTH_SECRET=secret,
        NEXTAUTH_URL=public_url,
        NODE_ENV="production",
        NEXT_TELEMETRY_DISABLED="1",
    )


@contextlib.contextmanager
def nextauth_core(
    directory: Path,
    secret: str,
    public_url: str,
    *,
    cpus: str | None = None,
    wrapper: Sequence[str] = (),
) -> Iterator[Server]:
    """next-auth's core handler behind a plain Node `http` server (bench/nextauth_core.js)."""
    port = free_port()
    command = ["node", str(BENCH / "nextauth_core.js"), "serve", str(port)]
    server = _launch(
        "nextauth-core",
        command,
        _node_environment(secret, public_url),
        port=port,
        directory=directory,
        ready_path="/api/auth/providers",
        cpus=cpus,
        wrapper=wrapper,
    )
    with running(server):
        yield server


def mint_nextauth_token(secret: str, claims: Mapping[str, object], max_age: int) -> str:
    """A session token encoded by next-auth's own `encode` (next-auth/jwt, Node)."""
    result = subprocess.run(  # noqa: S603 - fixed argv: node and our script
        ["node", str(BENCH / "nextauth_core.js"), "mint"],  # noqa: S607 - node from PATH
        input=json.dumps({"claims": dict(claims), "maxAge": max_age}),
        env=_node_environment(secret, "http://localhost"),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


# The Next.js peer's inputs: a change to any of them means a new build.
NEXTJS_INPUTS = (
    "package.json",
    "package-lock.json",
    "options.js",
    "pages/api/auth/[...nextauth].js",
)
_NEXTJS_STAMP = NEXTJS / ".next" / "authsvc-bench-inputs"


def _nextjs_inputs_digest() -> str:
    digest = hashlib.sha256()
    for name in NEXTJS_INPUTS:
        digest.update(name.encode() + b"\0" + (NEXTJS / name).read_bytes())
    return digest.hexdigest()


def prepare_nextjs(log: Callable[[str], None]) -> None:
    """Install (npm ci) and build (next build) bench/nextjs, unless already done for these
    inputs: the first full run takes a minute or two more, later runs reuse the build."""
    env = _node_environment("unused", "http://localhost")
    if not (NEXTJS / "node_modules" / ".package-lock.json").exists():
        log("installing the Next.js peer (npm ci in bench/nextjs; once)")
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],  # noqa: S607 - npm
            cwd=NEXTJS,
            env=env,
            check=True,
            timeout=900,
        )
    digest = _nextjs_inputs_digest()
    if _NEXTJS_STAMP.exists() and _NEXTJS_STAMP.read_text() == digest:
        return
    log("building the Next.js peer (next build in bench/nextjs; once per change)")
    subprocess.run(  # noqa: S603 - fixed argv: the pinned next
        [str(NEXTJS / "node_modules" / ".bin" / "next"), "build"],
        cwd=NEXTJS,
        env=env,
        check=True,
        capture_output=True,
        timeout=900,
    )
    _NEXTJS_STAMP.write_text(digest)


@contextlib.contextmanager
def nextjs(
    directory: Path, secret: str, public_url: str, *, cpus: str | None = None
) -> Iterator[Server]:
    """`next start` on bench/nextjs (built by `prepare_nextjs`), one process."""
    port = free_port()
    command = [str(NEXTJS / "node_modules" / ".bin" / "next"), "start", str(NEXTJS)]
    command += ["--hostname", "127.0.0.1", "--port", str(port)]
    server = _launch(
        "nextjs",
        command,
        _node_environment(secret, public_url),
        port=port,
        directory=directory,
        ready_path="/api/auth/providers",
        deadline=60.0,
        cpus=cpus,
    )
    with running(server):
        yield server
