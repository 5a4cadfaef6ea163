"""What every part of the benchmark shares: paths, the token, processes seen through /proc."""

from __future__ import annotations

import base64
import os
import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Any

from authsvc.tokens import TokenCodec

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
NODE_DIR = ROOT / "tests" / "node"
PYTHON = sys.executable
AUTHSVC = str(Path(sys.executable).with_name("authsvc"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SESSION_COOKIE = "next-auth.session-token"

# The storefront's session payload, as its jwt callback builds it (the same claims as
# tests/interop/test_nextauth.py): a role is present, so no request needs the database.
USER_ID = "ckv1user0000000000000001"
STOREFRONT: dict[str, Any] = {
    "sub": USER_ID,
    "id": USER_ID,
    "email": "ana@example.com",
    "name": "Ana",
    "role": "ADMIN",
    "fundraiserId": None,
    "avatar": "https://example.com/a.png",
}
THIRTY_DAYS = 30 * 24 * 3600
# What the numbers depend on besides authsvc itself: the server stack and every peer
# measured. A new peer adds its package here, and its version appears in the results.
MEASURED_PACKAGES = (
    "uvicorn",
    "uvloop",
    "httptools",
    "fastapi",
    "starlette",
    "cryptography",
    "python-jose",
    "fastapi-nextauth-jwt",
)
MEASURED_NODE_PACKAGES = ("next-auth",)


def new_secret() -> str:
    """What `authsvc gen-secret` prints: 32 random bytes, base64."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def storefront_token(secret: str) -> str:
    """A session token for the storefront payload, valid for 30 days."""
    return TokenCodec([secret]).encode(STOREFRONT, THIRTY_DAYS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_environment(**values: str) -> dict[str, str]:
    """This process's environment without any authsvc or next-auth setting, plus `values`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("NEXTAUTH_", "AUTHSVC_", "AUTH_")) and name != "DATABASE_URL"
    }
    env.update(values)
    return env


# --- processes, as Linux's /proc shows them ---------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    """Every live descendant of `pid`."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry.name))[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        parents.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in parents.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (their reaped children not included)."""
    total = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        # Fields 14 and 15 of stat(5), counted from 1 with pid and comm as 1 and 2.
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy so far (all cores; steal and idle excluded)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def own_cpu_seconds() -> float:
    """CPU time of this process and of every child it has waited for (and theirs)."""
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


class Background:
    """Cores' worth of CPU used by other work on the machine over an interval.

    Machine-wide busy time, less this process and its waited-for children, less the
    processes named (a server still running): what competed with the measurement.
    """

    def __init__(self, pids: list[int] | None = None) -> None:
        self.pids = pids or []
        self.started = time.perf_counter()
        self.machine = machine_busy_seconds()
        self.own = own_cpu_seconds() + cpu_seconds(self.pids)

    def cores(self) -> float:
        elapsed = time.perf_counter() - self.started
        machine = machine_busy_seconds() - self.machine
        own = own_cpu_seconds() + cpu_seconds(self.pids) - self.own
        return max(0.0, machine - own) / elapsed if elapsed else 0.0


def wait_for_quiet(max_wait: float, *, threshold: float = 0.15) -> float:
    """Wait (at most `max_wait` s) until the machine is near idle for 3 s in a row.

    Other work on a 2-core machine (a test suite, a build) moves every number here.
    Returns the cores' worth of CPU busy in the last second sampled.
    """
    deadline = time.monotonic() + max_wait
    quiet_seconds = 0
    while True:
        before = machine_busy_seconds()
        time.sleep(1.0)
        busy = machine_busy_seconds() - before
        quiet_seconds = quiet_seconds + 1 if busy < threshold else 0
        if quiet_seconds >= 3 or time.monotonic() >= deadline:
            return busy


def rss_mib(pid: int) -> float:
    """VmRSS of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import platform

    import fastapi
    import starlette
    import uvicorn

    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "uvicorn": uvicorn.__version__,
        "fastapi": fastapi.__version__,
        "starlette": starlette.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "versions": versions(),
        **_source_tree(),
    }


def versions() -> dict[str, str]:
    """Python, Node and the version of every measured package ("missing" if absent)."""
    import json
    import platform
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in MEASURED_PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "missing"
    node = subprocess.run(
        ["node", "--version"],  # noqa: S607 - node from PATH, as the suite runs it
        capture_output=True,
        text=True,
        timeout=30,
    )
    found["node"] = node.stdout.strip().lstrip("v") if node.returncode == 0 else "missing"
    for package in MEASURED_NODE_PACKAGES:
        manifest = NODE_DIR / "node_modules" / package / "package.json"
        found[package] = (
            json.loads(manifest.read_text())["version"] if manifest.exists() else "missing"
        )
    return found


def _source_tree() -> dict[str, Any]:
    """The commit measured, and whether src/ had uncommitted changes (read-only git)."""
    import subprocess

    def git(*args: str) -> str:
        result = subprocess.run(  # noqa: S603 - fixed argv: git, read-only queries
            ["git", "--no-optional-locks", *args],  # noqa: S607 - git from PATH
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    changed = git("status", "--porcelain", "--untracked-files=no", "--", "src")
    return {
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        # The measured code itself: unlike the commit id, it survives a rebase.
        "src_tree": git("rev-parse", "--short", "HEAD:src") or "unknown",
        "src_uncommitted_files": len(changed.splitlines()),
    }
