"""The fleet's processes on loopback: its own PostgreSQL cluster and Redis, `authsvc serve`
replicas, and nginx in front of them running deploy/nginx.conf.

Nothing here touches the machine's shared PostgreSQL (5432) or Redis (6379): the cluster
is initdb'd into a temporary directory and runs on a free port, so it can be stopped and
restarted at will. PostgreSQL refuses to run as root, so under root its programs run as
the `postgres` user (runuser).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import AUTHSVC, ROOT, clean_environment, free_port, rss_mib
from bench.servers import answered

DEPLOY = ROOT / "deploy"
NGINX_CONF = DEPLOY / "nginx.conf"
# The upstream line of deploy/nginx.conf, which the fleet replaces with one per replica.
NGINX_UPSTREAM = "server authsvc:8000 max_fails=1 fail_timeout=5s;"
NGINX_LISTEN = "listen 8080;"

# The replicas' settings that do not depend on where things run: deploy/compose.yaml and
# deploy/kubernetes/deployment.yaml set exactly these values (tests/repo/test_deploy.py).
SETTINGS: dict[str, str] = {
    "AUTHSVC_LOG_FORMAT": "json",
    # "Sign out everywhere" reaches every replica within this many seconds.
    "AUTHSVC_REVOCATION": "true",
    "AUTHSVC_REVOCATION_CACHE_TTL": "10",
    # Longer than the load balancer's upstream keep-alive (nginx: 60 s), so it closes first.
    "AUTHSVC_KEEPALIVE_TIMEOUT": "75",
    # Connections per replica: 3 replicas x 10 stay well inside PostgreSQL's 100.
    "AUTHSVC_DB_POOL_SIZE": "10",
}
# Settings whose values are addresses of the environment (the test compares their names).
ADDRESSED = (
    "NEXTAUTH_URL",
    "DATABASE_URL",
    "AUTHSVC_RATE_LIMIT_STORAGE",
    "AUTHSVC_TRUSTED_PROXIES",
)
# From the secret store (a Kubernetes Secret, a compose secret-bearing .env).
SECRETS = ("NEXTAUTH_SECRET", "NEXTAUTH_SECRET_PREVIOUS")


class FleetError(RuntimeError):
    """A part of the fleet did not start or stop as it should."""


def require(name: str) -> str:
    path = shutil.which(name) or next(
        (str(p) for p in Path("/usr/lib/postgresql").glob(f"*/bin/{name}")), None
    )
    if path is None:
        raise FleetError(f"{name} is not installed (.ci/run installs what the fleet needs)")
    return path


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL's programs refuse root: run them as the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _wait(check: object, seconds: float, what: str) -> None:
    assert callable(check)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise FleetError(f"{what} within {seconds:.0f} s")


class Postgres:
    """A PostgreSQL cluster of the fleet alone, in a temporary directory."""

    def __init__(self) -> None:
        # Not under a root-only temporary directory: the postgres user must reach it.
        self.directory = Path(tempfile.mkdtemp(prefix="authsvc-fleet-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.log = self.directory / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        subprocess.run(  # noqa: S603 - fixed argv: PostgreSQL's own initdb
            _as_postgres(
                [
                    require("initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "--no-instructions",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/authsvc"

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1"
        options += f" -c unix_socket_directories={self.directory} -c fsync=off"
        options += " -c max_connections=100"
        self._ctl("start", "-w", "-t", "60", "-l", str(self.log), "-o", options)

    def stop(self) -> None:
        """A fast shutdown: open sessions are ended, as in a restart by an operator."""
        self._ctl("stop", "-w", "-m", "fast")

    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def _ctl(self, *args: str) -> None:
        subprocess.run(  # noqa: S603 - fixed argv: PostgreSQL's own pg_ctl
            _as_postgres([require("pg_ctl"), "-D", str(self.data), *args]),
            check=True,
            capture_output=True,
            timeout=120,
        )

    def sql(self, query: str, database: str = "authsvc") -> str:
        result = subprocess.run(  # noqa: S603 - fixed argv: psql on our own cluster
            [
                require("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-tAc",
                query,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return result.stdout.strip()

    def connections(self) -> int:
        """Client connections to the authsvc database (this query's own excluded)."""
        query = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = 'authsvc' AND pid <> pg_backend_pid()"
        )
        return int(self.sql(query))

    def remove(self) -> None:
        if self.is_running():
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


class Redis:
    """A Redis server of the fleet alone, without persistence."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [require("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603
        _wait(self.answers, 10, "redis-server did not answer")

    def answers(self) -> bool:
        result = subprocess.run(  # noqa: S603 - fixed argv: redis-cli
            [require("redis-cli"), "-p", str(self.port), "ping"],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.stdout.strip() == "PONG"

    def keys(self, pattern: str) -> list[str]:
        result = subprocess.run(  # noqa: S603 - fixed argv: redis-cli
            [require("redis-cli"), "-p", str(self.port), "--scan", "--pattern", pattern],
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.split()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@dataclass
class Replica:
    """One `authsvc serve` (one worker, as in a container) on its own port."""

    name: str
    directory: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.name}.log"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise FleetError(f"{self.name} is not running")
        return self.process.pid

    def start(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        command = [AUTHSVC, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv: this venv's authsvc
                command, env=self.env, cwd=self.directory, stdout=sink, stderr=subprocess.STDOUT
            )
        self.starts += 1
        process = self.process

        def up() -> bool:
            if process.poll() is not None:
                raise FleetError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            return answered(self.port, "/healthz", timeout=0.5)

        _wait(up, 60, f"{self.name} did not answer /healthz")

    def kill(self) -> None:
        """kill -9: no shutdown, connections and requests in flight cut."""
        os.kill(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM: uvicorn stops accepting, finishes what is in flight, then exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_mib(self, over: float = 1.5) -> float:
        """The least RSS seen over `over` seconds: a sign-in's Argon2 hash holds 64 MiB for
        a fraction of a second, which would read as growth at one instant."""
        least = rss_mib(self.pid)
        deadline = time.monotonic() + over
        while time.monotonic() < deadline:
            time.sleep(0.02)
            least = min(least, rss_mib(self.pid))
        return least

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def log_lines(self) -> list[dict[str, object]]:
        lines = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
        return lines


class Balancer:
    """nginx running deploy/nginx.conf, its upstream being the fleet's replicas."""

    def __init__(self, directory: Path, replicas: list[Replica]) -> None:
        self.directory = directory
        self.port = free_port()
        self.replicas = replicas
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def site(self) -> str:
        text = NGINX_CONF.read_text()
        for line in (NGINX_UPSTREAM, NGINX_LISTEN):
            if line not in text:
                raise FleetError(f"deploy/nginx.conf no longer contains {line!r}")
        servers = "\n    ".join(
            NGINX_UPSTREAM.replace("authsvc:8000", f"127.0.0.1:{replica.port}")
            for replica in self.replicas
        )
        text = text.replace(NGINX_UPSTREAM, servers)
        return text.replace(NGINX_LISTEN, f"listen 127.0.0.1:{self.port};")

    def start(self) -> None:
        directory = self.directory
        (directory / "site.conf").write_text(self.site())
        temp = "\n".join(
            f"    {kind}_temp_path {directory / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (directory / "nginx.conf").write_text(
            f"{'user root;' if os.geteuid() == 0 else ''}\n"
            "daemon off;\nworker_processes 1;\n"
            f"pid {directory / 'nginx.pid'};\n"
            f"error_log {directory / 'nginx-error.log'} warn;\n"
            "events { worker_connections 4096; }\n"
            f"http {{\n    access_log off;\n{temp}\n    include {directory / 'site.conf'};\n}}\n"
        )
        command = [require("nginx"), "-p", str(directory), "-e", str(directory / "nginx-error.log")]
        with (directory / "nginx.out").open("wb") as sink:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv: nginx
                [*command, "-c", "nginx.conf"], stdout=sink, stderr=subprocess.STDOUT
            )
        _wait(lambda: answered(self.port, "/api/auth/csrf"), 20, "nginx did not answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def migrate(database_url: str, directory: Path) -> None:
    """`authsvc migrate`, as the migration Job runs it before the replicas start."""
    subprocess.run(  # noqa: S603 - fixed argv: this venv's authsvc
        [AUTHSVC, "migrate"],
        env=clean_environment(DATABASE_URL=database_url, NEXTAUTH_SECRET="x" * 32),
        cwd=directory,
        check=True,
        capture_output=True,
        timeout=120,
    )


def authsvc_cli(env: Mapping[str, str], directory: Path, *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argv: this venv's authsvc
        [AUTHSVC, *args], env=dict(env), cwd=directory, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise FleetError(f"authsvc {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


class Fleet:
    """PostgreSQL, Redis, `replicas` authsvc replicas and nginx, started in that order (the
    schema migrated once, before any replica, as the migration Job does)."""

    def __init__(self, directory: Path, secret: str, replicas: int = 3) -> None:
        self.directory = directory
        self.secret = secret
        self.previous: str | None = None
        self.postgres = Postgres()
        self.redis = Redis(directory)
        self.replicas = [Replica(f"replica-{i + 1}", directory) for i in range(replicas)]
        self.balancer = Balancer(directory, self.replicas)

    @property
    def url(self) -> str:
        """NEXTAUTH_URL: the load balancer."""
        return self.balancer.url

    def environment(self, secret: str | None = None, previous: str | None = None) -> dict[str, str]:
        values = {
            **SETTINGS,
            "NEXTAUTH_URL": self.url,
            "DATABASE_URL": self.postgres.url,
            "AUTHSVC_RATE_LIMIT_STORAGE": self.redis.url,
            "AUTHSVC_TRUSTED_PROXIES": "127.0.0.1",
            "NEXTAUTH_SECRET": secret or self.secret,
        }
        if previous:
            values["NEXTAUTH_SECRET_PREVIOUS"] = previous
        return clean_environment(**values)

    def start(self) -> None:
        self.postgres.start()
        self.postgres.sql("CREATE DATABASE authsvc", database="postgres")
        migrate(self.postgres.url, self.directory)
        self.redis.start()
        env = self.environment()
        starting = [
            threading.Thread(target=replica.start, args=(env,)) for replica in self.replicas
        ]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        missing = [replica.name for replica in self.replicas if not replica.alive()]
        if missing:
            raise FleetError(f"{', '.join(missing)} did not start (see {self.directory})")
        self.balancer.start()

    def close(self) -> None:
        self.balancer.stop()
        for replica in self.replicas:
            replica.stop()
        self.redis.stop()
        self.postgres.remove()

    def cli(self, *args: str) -> str:
        """An `authsvc` command against the fleet's database, with the fleet's settings."""
        return authsvc_cli(self.environment(), self.directory, *args)

    def restart(self, replica: Replica, secret: str, previous: str | None) -> None:
        """Replace one replica's process with new settings, as a rolling deploy does."""
        replica.stop()
        replica.start(self.environment(secret, previous))
