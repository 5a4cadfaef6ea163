"""Benchmark `/api/auth/verify` against a constant-response endpoint on the same server.

    .venv/bin/python -m bench.verify            # 10 s per run, about a minute in all
    .venv/bin/python -m bench.verify --smoke    # 1 s per run, a quick check that it works

Starts `authsvc serve` (one uvicorn worker, SQLite) on a free loopback port, then drives it
with wrk (Debian package `wrk`) at concurrency 1 and 64: `GET /api/auth/verify` with a
valid session cookie whose token carries a role (so no database call), and `GET /healthz`
(a constant answer from the same app, through the same middleware) as the baseline. Prints
requests/s, p50 and p99 for each, and verify's share of the baseline's throughput. Results
also go to bench/results/ as JSON. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from authsvc.tokens import TokenCodec

ROOT = Path(__file__).resolve().parents[1]
AUTHSVC = Path(sys.executable).with_name("authsvc")
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class Run:
    endpoint: str
    concurrency: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def milliseconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_wrk(output: str, endpoint: str, concurrency: int) -> Run:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if rate is None or p50 is None or p99 is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return Run(
        endpoint=endpoint,
        concurrency=concurrency,
        requests_per_second=float(rate.group(1)),
        p50_ms=milliseconds(p50.group(1)),
        p99_ms=milliseconds(p99.group(1)),
        non_2xx=int(errors.group(1)) if errors else 0,
    )


def wrk(url: str, concurrency: int, seconds: int, headers: dict[str, str]) -> str:
    command = [
        shutil.which("wrk") or "wrk",
        f"--connections={concurrency}",
        f"--threads={min(concurrency, 2)}",
        f"--duration={seconds}s",
        "--latency",
    ]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    result = subprocess.run(  # noqa: S603 - fixed argv: wrk and our own URL
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    )
    return result.stdout


def start_server(
    directory: Path, port: int, secret: str, log_level: str
) -> subprocess.Popen[bytes]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("NEXTAUTH_", "AUTHSVC_")) and name != "DATABASE_URL"
    }
    env.update(
        NEXTAUTH_SECRET=secret,
        NEXTAUTH_URL=f"http://127.0.0.1:{port}",
        DATABASE_URL=f"sqlite+aiosqlite:///{directory / 'bench.db'}",
        AUTHSVC_LOG_LEVEL=log_level,
    )
    log = (directory / "server.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - fixed argv: this venv's authsvc
        [str(AUTHSVC), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=directory,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((directory / "server.log").read_text())
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("authsvc did not start within 30 s")


def measure(seconds: int, log_level: str) -> list[Run]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (.ci/run does it)")
    secret = secrets.token_urlsafe(32)
    claims = {"sub": "u1", "id": "u1", "email": "ana@example.com", "role": "ADMIN"}
    token = TokenCodec([secret]).encode(claims, 3600)
    cookie = {"Cookie": f"next-auth.session-token={token}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="authsvc-bench-") as tmp:
        server = start_server(Path(tmp), port, secret, log_level)
        try:
            check = httpx.get(f"{base}/api/auth/verify", headers=cookie)
            if check.status_code != 200:
                raise RuntimeError(f"verify answered {check.status_code}: {check.text}")
            wrk(f"{base}/healthz", 8, 1, {})  # warm-up
            runs = []
            for concurrency in (1, 64):
                for endpoint, headers in (("/healthz", {}), ("/api/auth/verify", cookie)):
                    output = wrk(f"{base}{endpoint}", concurrency, seconds, headers)
                    runs.append(parse_wrk(output, endpoint, concurrency))
        finally:
            server.terminate()
            server.wait(timeout=10)
    return runs


def report(runs: list[Run]) -> str:
    lines = [
        f"{'endpoint':<18} {'conc':>4} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}"
    ]
    for run in runs:
        lines.append(
            f"{run.endpoint:<18} {run.concurrency:>4} {run.requests_per_second:>10.0f} "
            f"{run.p50_ms:>8.2f} {run.p99_ms:>8.2f} {run.non_2xx:>8}"
        )
    for concurrency in (1, 64):
        by_endpoint = {r.endpoint: r for r in runs if r.concurrency == concurrency}
        ratio = by_endpoint["/api/auth/verify"].requests_per_second / max(
            by_endpoint["/healthz"].requests_per_second, 1e-9
        )
        lines.append(f"ratio verify/healthz at concurrency {concurrency}: {ratio:.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--smoke", action="store_true", help="1 s per run: check it works")
    parser.add_argument(
        "--log-level", default="warning", help="authsvc log level (default warning: no access log)"
    )
    args = parser.parse_args()
    seconds = 1 if args.smoke else args.duration
    runs = measure(seconds, args.log_level)
    print(f"authsvc serve, 1 worker, {seconds} s per run, log level {args.log_level}")
    print(report(runs))
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (results / f"verify-{stamp}.json").write_text(
        json.dumps({"seconds": seconds, "runs": [asdict(r) for r in runs]}, indent=2)
    )


if __name__ == "__main__":
    main()
