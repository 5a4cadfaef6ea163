"""The benchmark suite of issue 5: one command, every target, bounded in time.

    .venv/bin/python -m bench              # the full run: about 9 minutes
    .venv/bin/python -m bench --smoke      # about a minute: checks that it all works

1. In-process token validation: authsvc (first-seen, cached) against python-jose, a raw
   AES-GCM decode, fastapi-nextauth-jwt and next-auth's own `decode` in Node.
2. The token cache's memory under 10^6 distinct tokens (its own process).
3. SQL statements per session request (in-process, counted at the driver).
4. HTTP with wrk on loopback against `authsvc serve` (1 worker, SQLite): `/healthz` (the
   raw-ASGI ceiling in the same process) and `/api/auth/verify` at c=1 and c=64, then a
   plain FastAPI app with fastapi-nextauth-jwt (bench/peer_app.py) at c=64, and verify
   with the opt-in revocation and role-freshness modes (for context).
5. verify's p99 at a fixed moderate rate (bench/loadgen.py, open loop), idle and during a
   storm of credentials sign-ins (bench/storm.py).
6. `authsvc serve --workers 2` against 1 worker at c=64, also per server CPU-second.
7. Worker RSS after warm-up, and cold start to the first answered request.
8. The frontend's path (bench/frontend.py): `/session` (signed in and out), `/csrf`,
   `/providers` and `POST /session` on authsvc, next-auth's core handler in plain Node and
   next-auth inside Next.js (full runs), pinned, with server CPU per request; `/healthz`
   and `/verify` against a bare ASGI app on plain uvicorn; `/session` at a constant rate.

Prints a table of absolute numbers and every target with its ratio and PASS/FAIL, and
writes the raw results as JSON (with the commit, versions and the machine's load) and a
PNG chart to bench/results/. A full run then renders docs/performance.md's results
section from that JSON (bench/publish.py; `--no-publish` to skip, `--publish` for a smoke
run): commit the JSON and PNG with the page. A target that is not met is a finding, not
an error: the exit status is 0 unless the run itself broke (or `--strict` is given). Not a
test: only ratios from the same run mean anything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from authsvc.tokens import TokenCodec
from bench import frontend, inprocess, publish, report, servers, sqlcount, wrk
from bench.common import (
    PYTHON,
    RESULTS,
    ROOT,
    SESSION_COOKIE,
    STOREFRONT,
    THIRTY_DAYS,
    Background,
    cpu_seconds,
    machine,
    new_secret,
    rss_mib,
    storefront_token,
    wait_for_quiet,
)

STORM_EMAIL = "storm@example.com"


@dataclass(frozen=True)
class Config:
    smoke: bool
    seconds: float  # per wrk run
    rounds: int  # wrk runs per endpoint; the best counts
    warmup: float
    storm_rate: float
    storm_connections: int
    storm_clients: int
    storm_seconds: float
    storm_rounds: int
    storm_ramp: float
    cache_tokens: int
    min_time: float
    repeats: int
    node_number: int
    sql_requests: int
    cold_starts: int
    quiet_wait: float
    constant_seconds: float  # the frontend path's constant-rate run
    nextjs: bool  # measure next-auth inside Next.js (needs bench/nextjs installed and built)


FULL = Config(
    smoke=False,
    seconds=5,
    rounds=3,
    warmup=2,
    storm_rate=2000,
    storm_connections=8,
    storm_clients=8,
    storm_seconds=8,
    storm_rounds=2,
    storm_ramp=1.5,
    cache_tokens=10**6,
    min_time=0.2,
    repeats=5,
    node_number=5000,
    sql_requests=100,
    cold_starts=3,
    quiet_wait=90,
    constant_seconds=10,
    nextjs=True,
)
SMOKE = replace(
    FULL,
    smoke=True,
    seconds=1,
    rounds=1,
    warmup=1,
    storm_seconds=2,
    storm_rounds=1,
    storm_ramp=0.5,
    cache_tokens=30_000,
    min_time=0.01,
    repeats=1,
    node_number=200,
    sql_requests=5,
    cold_starts=1,
    quiet_wait=0,
    constant_seconds=2,
    nextjs=False,
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Http:
    """wrk runs against one server, keeping the best of the rounds for each name."""

    def __init__(self, cookie: str) -> None:
        self.headers = {"Cookie": cookie}
        self.best: dict[str, wrk.WrkRun] = {}
        self.every: dict[str, list[wrk.WrkRun]] = {}

    def run(
        self,
        name: str,
        server: servers.Server,
        path: str,
        concurrency: int,
        seconds: float,
        headers: dict[str, str] | None = None,
        *,
        errors_allowed: bool = False,
    ) -> wrk.WrkRun:
        result = wrk.run(
            name,
            server.url + path,
            concurrency=concurrency,
            seconds=seconds,
            headers=headers or self.headers,
            server_pids=server.pids(),
        )
        if (result.non_2xx and not errors_allowed) or result.socket_errors:
            raise RuntimeError(
                f"{name}: {result.non_2xx} non-2xx answers, {result.socket_errors} socket errors"
            )
        self.every.setdefault(name, []).append(result)
        if (
            name not in self.best
            or result.requests_per_second > self.best[name].requests_per_second
        ):
            self.best[name] = result
        return result


# The opt-in modes of README "Role freshness and revocation", measured beside the default:
# every check also asks (through a per-process cache) whether the user still exists, was
# revoked, and has the same role. They need a real user, so their token is the storm user's.
OPT_IN_MODES = {"AUTHSVC_REVOCATION": "true", "AUTHSVC_ROLE_MAX_AGE": "300"}
OPT_IN_RUN = "verify c=64, revocation + role freshness"


def _user_cookie(secret: str, user_id: str) -> str:
    claims = {**STOREFRONT, "sub": user_id, "id": user_id, "email": STORM_EMAIL}
    return f"{SESSION_COOKIE}={TokenCodec([secret]).encode(claims, THIRTY_DAYS)}"


def _check_answers(url: str, cookie: str) -> None:
    answer = httpx.get(url, headers={"Cookie": cookie}, timeout=10)
    if answer.status_code != 200:
        raise RuntimeError(f"{url} answered {answer.status_code}: {answer.text[:200]}")


def _loadgen(port: int, cookie: str, config: Config) -> dict[str, Any]:
    result = subprocess.run(  # noqa: S603 - fixed argv: this interpreter, our module
        [
            PYTHON,
            "-m",
            "bench.loadgen",
            f"--port={port}",
            f"--cookie={cookie}",
            f"--rate={config.storm_rate}",
            f"--connections={config.storm_connections}",
            f"--seconds={config.storm_seconds}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=config.storm_seconds + 60,
    )
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def storm(server: servers.Server, cookie: str, password: str, config: Config) -> dict[str, Any]:
    rounds = []
    for _ in range(config.storm_rounds):
        background = Background(server.pids())
        idle = _loadgen(server.port, cookie, config)
        rounds.append({"phase": "idle", **idle, "background_cores": background.cores()})
        background = Background(server.pids())
        clients = subprocess.Popen(  # noqa: S603 - fixed argv: this interpreter, our module
            [
                PYTHON,
                "-m",
                "bench.storm",
                f"--url={server.url}",
                f"--email={STORM_EMAIL}",
                f"--password={password}",
                f"--clients={config.storm_clients}",
                f"--seconds={config.storm_seconds + 2 * config.storm_ramp}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(config.storm_ramp)
        stormy = _loadgen(server.port, cookie, config)
        output, _ = clients.communicate(timeout=120)
        if clients.returncode:
            raise RuntimeError("the sign-in storm failed")
        signins = json.loads(output)
        rounds.append(
            {
                "phase": "storm",
                **stormy,
                "signins_per_second": signins["attempts_per_second"],
                "signins_unexpected": signins["unexpected"],
                "signins": signins,
                "background_cores": background.cores(),
            }
        )
    for phase in rounds:
        phase["non_200"] = sum(n for code, n in phase["statuses"].items() if code != "200")
    idle_p99 = statistics.median(p["p99_ms"] for p in rounds if p["phase"] == "idle")
    storm_p99 = statistics.median(p["p99_ms"] for p in rounds if p["phase"] == "storm")
    return {
        "rate": config.storm_rate,
        "connections": config.storm_connections,
        "clients": config.storm_clients,
        "rounds": rounds,
        "idle_p99_ms": idle_p99,
        "storm_p99_ms": storm_p99,
    }


def _usage(run: wrk.WrkRun) -> dict[str, Any]:
    return {
        "requests_per_second": run.requests_per_second,
        "server_cpu_share": run.server_cpu_seconds / run.seconds,
        "wrk_cpu_share": run.wrk_cpu_seconds / run.seconds,
        "requests_per_cpu_second": run.requests_per_cpu_second,
    }


def _warm_up(server: servers.Server, path: str, headers: dict[str, str], seconds: float) -> None:
    wrk.run(
        "warm-up",
        server.url + path,
        concurrency=64,
        seconds=seconds,
        headers=headers,
        server_pids=server.pids(),
    )


def _two_workers_up(server: servers.Server) -> list[int]:
    deadline = time.monotonic() + 30
    while len(server.worker_pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = server.worker_pids()
    if len(workers) != 2:
        raise RuntimeError(f"expected 2 uvicorn workers, found {workers}")
    return workers


def http_suite(directory: Path, secret: str, cookie: str, config: Config) -> dict[str, Any]:
    """Every HTTP measurement. The four servers run side by side (an idle one costs
    nothing) so that each round measures every endpoint within seconds of the others:
    the ratios then compare runs that met the same conditions on the machine."""
    http = Http(cookie)
    password = new_secret()
    log("starting authsvc serve (1 worker, 2 workers, opt-in modes) and the peer app")
    with contextlib.ExitStack() as stack:
        one = stack.enter_context(servers.authsvc(directory, secret))
        first_start = one.started_in
        user_id = servers.create_user(directory, secret, STORM_EMAIL, password)
        user_headers = {"Cookie": _user_cookie(secret, user_id)}
        two = stack.enter_context(servers.authsvc(directory, secret, workers=2))
        workers = _two_workers_up(two)
        peer = stack.enter_context(servers.peer(directory, secret))
        opt_in = stack.enter_context(
            servers.authsvc(directory, secret, name="authsvc-opt-in", settings=OPT_IN_MODES)
        )
        for url in (one.url + "/api/auth/verify", two.url + "/api/auth/verify"):
            _check_answers(url, cookie)
        _check_answers(peer.url + "/session", cookie)
        _check_answers(opt_in.url + "/api/auth/verify", user_headers["Cookie"])
        # Both workers must be accepting before the measured runs open their connections
        # (wrk keeps each one for the whole run): a warm-up that outlasts a worker's start.
        for server, path in (
            (one, "/api/auth/verify"),
            (one, "/healthz"),
            (two, "/api/auth/verify"),
            (peer, "/session"),
        ):
            _warm_up(server, path, http.headers, config.warmup)
        _warm_up(opt_in, "/api/auth/verify", user_headers, config.warmup)
        log(f"wrk: {config.rounds} round(s) of 8 runs of {config.seconds:g} s")
        splits = []
        for _ in range(config.rounds):
            for concurrency in (1, 64):
                http.run(f"healthz c={concurrency}", one, "/healthz", concurrency, config.seconds)
                http.run(
                    f"verify c={concurrency}", one, "/api/auth/verify", concurrency, config.seconds
                )
            http.run("peer constant c=64", peer, "/constant", 64, config.seconds)
            http.run("peer fastapi-nextauth-jwt c=64", peer, "/session", 64, config.seconds)
            before = [cpu_seconds([pid]) for pid in workers]
            http.run("verify c=64, 2 workers", two, "/api/auth/verify", 64, config.seconds)
            used = [cpu_seconds([pid]) - b for pid, b in zip(workers, before, strict=True)]
            splits.append([u / sum(used) if sum(used) else 0.0 for u in used])
            # Errors here are a finding, not a broken run: these modes look the user up
            # when a per-user cache entry expires (docs/performance.md, "Other findings").
            http.run(
                OPT_IN_RUN,
                opt_in,
                "/api/auth/verify",
                64,
                config.seconds,
                user_headers,
                errors_allowed=True,
            )
        opt_in.stop()  # idle from here on, but its memory is not the measured worker's
        worker_rss = rss_mib(one.process.pid)
        two_worker_rss = [rss_mib(pid) for pid in workers]
        log("verify p99 idle and during a sign-in storm")
        storm_results = storm(one, cookie, password, config)
        rss_after_storm = rss_mib(one.process.pid)

    log(f"cold start, {config.cold_starts} launch(es)")
    cold = []
    for _ in range(config.cold_starts):
        server = servers.start_authsvc(directory, secret)
        cold.append(server.started_in)
        server.stop()

    order = [
        "healthz c=1",
        "verify c=1",
        "healthz c=64",
        "verify c=64",
        "peer constant c=64",
        "peer fastapi-nextauth-jwt c=64",
        "verify c=64, 2 workers",
        OPT_IN_RUN,
    ]
    one_run, two_run = http.best["verify c=64"], http.best["verify c=64, 2 workers"]
    best_round = http.every["verify c=64, 2 workers"].index(two_run)
    return {
        "http": {
            "runs": [asdict(http.best[name]) for name in order],
            "every_run": {name: [asdict(r) for r in runs] for name, runs in http.every.items()},
            "verify_p99_c64_worst_ms": max(r.p99_ms for r in http.every["verify c=64"]),
        },
        "storm": storm_results,
        "workers": {
            "one": _usage(one_run),
            "two": {**_usage(two_run), "worker_cpu_split": splits[best_round]},
            "cpu_normalised_ratio": two_run.requests_per_cpu_second
            / one_run.requests_per_cpu_second,
        },
        "memory": {
            "worker_rss_mib": worker_rss,
            "worker_rss_after_storm_mib": rss_after_storm,
            "two_worker_rss_mib": two_worker_rss,
        },
        "cold_start": {
            "seconds": cold,
            "best_seconds": min(cold),
            "first_start_seconds": first_start,
        },
    }


def run(config: Config, results_dir: Path) -> tuple[dict[str, Any], list[report.Target]]:
    started = time.perf_counter()
    log("waiting for a quiet machine" if config.quiet_wait else "sampling background load")
    at_start = wait_for_quiet(config.quiet_wait)
    background = Background()
    secret = new_secret()
    token = storefront_token(secret)
    cookie = f"{SESSION_COOKIE}={token}"

    log("in-process token validation")
    timings = inprocess.measure(
        secret,
        token,
        min_time=config.min_time,
        repeats=config.repeats,
        node_number=config.node_number,
    )
    log(f"token cache memory, {config.cache_tokens:,} tokens")
    cache = subprocess.run(  # noqa: S603 - fixed argv: this interpreter, our module
        [PYTHON, "-m", "bench.cachemem", f"--tokens={config.cache_tokens}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    with tempfile.TemporaryDirectory(prefix="authsvc-bench-") as tmp:
        directory = Path(tmp)
        log("SQL statements per request")
        sql = sqlcount.measure(directory, secret, config.sql_requests)
        http = http_suite(directory, secret, cookie, config)
        front = frontend.suite(
            directory,
            secret,
            seconds=config.seconds,
            rounds=config.rounds,
            warmup=0 if config.smoke else config.warmup,
            constant_seconds=config.constant_seconds,
            with_nextjs=config.nextjs,
            log=log,
        )
    results: dict[str, Any] = {
        "machine": machine(),
        "config": {
            **asdict(config),
            "background_cores_at_start": at_start,
            "background_cores_during_run": background.cores(),
        },
        "token_length": len(token),
        "inprocess": [asdict(t) for t in timings],
        "cache_memory": json.loads(cache.stdout),
        "sql": sql,
        **http,
        "frontend": front,
    }
    results["config"]["total_seconds"] = time.perf_counter() - started
    return results, report.targets(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--smoke", action="store_true", help="short runs: check that it works")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS, help="where the JSON and PNG go"
    )
    parser.add_argument("--seconds", type=float, help="seconds per wrk run (default 5)")
    parser.add_argument(
        "--quiet-wait", type=float, help="wait this long at most for an idle machine (90)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument(
        "--nextjs",
        action=argparse.BooleanOptionalAction,
        help="measure next-auth inside Next.js (default: full runs only; installs and builds "
        "bench/nextjs the first time)",
    )
    parser.add_argument(
        "--publish",
        action=argparse.BooleanOptionalAction,
        help="render the document's results section from this run (default: full runs only)",
    )
    parser.add_argument(
        "--document", type=Path, default=publish.DOCUMENT, help="the page --publish updates"
    )
    args = parser.parse_args(argv)
    config = SMOKE if args.smoke else FULL
    if args.seconds is not None:
        config = replace(config, seconds=args.seconds)
    if args.quiet_wait is not None:
        config = replace(config, quiet_wait=args.quiet_wait)
    if args.nextjs is not None:
        config = replace(config, nextjs=args.nextjs)
    wrk.require_wrk()

    results, judged = run(config, args.results_dir)
    info = results["machine"]
    print(
        f"authsvc benchmark{' (SMOKE: structure only, not numbers)' if config.smoke else ''}: "
        f"{info['nproc']} cores ({info['cpu']}), {info['memory_gib']} GiB, Python "
        f"{info['python']}, uvicorn {info['uvicorn']}, FastAPI {info['fastapi']}; commit "
        f"{info['commit']}{' + uncommitted src changes' if info['src_uncommitted_files'] else ''}; "
        f"{results['config']['total_seconds']:.0f} s; other work on the machine: "
        f"{results['config']['background_cores_at_start']:.2f} cores at start, "
        f"{results['config']['background_cores_during_run']:.2f} on average during the run"
    )
    disturbed = report.disturbed_runs(results)
    if disturbed:
        print(
            f"WARNING: other processes used over {report.DISTURBED_CORES:.0%} of a core during: "
            f"{', '.join(disturbed)}. Those numbers are disturbed; run again on a quiet machine."
        )
    print()
    print(report.numbers_table(results))
    print()
    print(report.targets_table(judged))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    name = f"bench-{'smoke-' if config.smoke else ''}{stamp}"
    report.write_json(args.results_dir / f"{name}.json", results, judged)
    report.write_chart(args.results_dir / f"{name}.png", results, judged)
    print()
    print(f"results: {args.results_dir / name}.json and .png")
    if args.publish if args.publish is not None else not config.smoke:
        publish.publish(args.results_dir / f"{name}.json", args.document)
        print(f"{args.document}: results section rendered from this run")
    return 1 if args.strict and not all(t.passed for t in judged) else 0
