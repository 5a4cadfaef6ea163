"""wrk (Debian package `wrk`) on loopback: one bounded run, its output read back."""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import cpu_seconds, machine_busy_seconds

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class WrkRun:
    name: str
    url: str
    concurrency: int
    threads: int
    seconds: float
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    server_cpu_seconds: float
    wrk_cpu_seconds: float
    # Cores' worth of CPU that neither the server nor wrk used meanwhile: other work on
    # the machine, which the numbers of this run compete with.
    background_cpu_share: float

    @property
    def requests_per_cpu_second(self) -> float:
        return self.requests / self.server_cpu_seconds if self.server_cpu_seconds else 0.0


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (.ci/run does it)")
    return path


def milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def _find(pattern: str, output: str) -> re.Match[str]:
    match = re.search(pattern, output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"cannot read wrk's output ({pattern!r}):\n{output}")
    return match


def run(
    name: str,
    url: str,
    *,
    concurrency: int,
    seconds: float,
    headers: dict[str, str],
    server_pids: list[int],
    threads: int | None = None,
    cpus: str | None = None,
    script: Path | None = None,
) -> WrkRun:
    """wrk against `url`; the server's CPU time is read from /proc around the run.

    `threads`: wrk's (default: 2, 1 at c=1); `cpus`: pin wrk there (taskset); `script`: a
    wrk Lua script (the method and body of a POST)."""
    threads = threads or min(concurrency, 2)
    command = [
        *(["taskset", "--cpu-list", cpus] if cpus is not None else []),
        require_wrk(),
        f"--connections={concurrency}",
        f"--threads={threads}",
        f"--duration={max(1, round(seconds))}s",
        "--timeout=5s",
        "--latency",
    ]
    for header, value in headers.items():
        command += ["--header", f"{header}: {value}"]
    if script is not None:
        command += ["--script", str(script)]
    server_before = cpu_seconds(server_pids)
    machine_before = machine_busy_seconds()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(  # noqa: S603 - fixed argv: wrk and our own loopback URL
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    )
    elapsed = time.perf_counter() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine = machine_busy_seconds() - machine_before
    server_cpu = cpu_seconds(server_pids) - server_before
    wrk_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    output = result.stdout
    total = _find(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return WrkRun(
        name=name,
        url=url,
        concurrency=concurrency,
        threads=threads,
        seconds=round(seconds),
        requests=int(total.group(1)),
        requests_per_second=float(_find(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=milliseconds(_find(r"^\s+50%\s+(\S+)", output).group(1)),
        p99_ms=milliseconds(_find(r"^\s+99%\s+(\S+)", output).group(1)),
        max_ms=milliseconds(_find(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", output).group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in sockets.groups()) if sockets else 0,
        server_cpu_seconds=server_cpu,
        wrk_cpu_seconds=wrk_cpu,
        background_cpu_share=max(0.0, machine - server_cpu - wrk_cpu) / elapsed,
    )
