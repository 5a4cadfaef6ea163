"""The frontend's path against next-auth itself, and the serving stack against its floor.

What a browser calls (`useSession()` fetches `GET /session` on every page load, `signIn`
and `signOut` fetch `/csrf` and `/providers` first, `update()` posts `/session`), served
side by side by:

- `authsvc serve` (1 worker, SQLite, the default callbacks);
- next-auth 4.24.15's core handler behind a plain Node `http` server
  (bench/nextauth_core.js), the same options (bench/nextjs/options.js);
- next-auth 4.24.15 inside `next start` (bench/nextjs, Next.js pinned in its
  package-lock.json; built once and cached; full runs only);
- and for the serving stack, bench/bare_app.py on a plain uvicorn, against `/healthz` and
  `/api/auth/verify` on `authsvc serve`.

Every server is pinned to CPU 1 and wrk (one thread, 64 connections) to CPU 0, so the
server has one core to itself and its CPU time per request is what the server spent. Every
server's public URL is the same (`PUBLIC_URL`), and the browser is one that next-auth
itself set up: a session token minted by next-auth's `encode`, and the CSRF and
callback-url cookies next-auth's `/csrf` set. Before anything is timed, every server must
answer the same session JSON, provider list and CSRF token for that browser, re-issue the
session cookie, and set no other cookie (so that each does the same work).

Each route runs `rounds` times on every server, interleaved; the medians count. Then
`/session`'s latency at a constant offered rate of half the measured capacity
(bench/loadgen.py, open loop, pinned like wrk), for authsvc and next-auth's core handler.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import servers, wrk
from bench.common import PYTHON, ROOT, SESSION_COOKIE, STOREFRONT, THIRTY_DAYS, Background

# The CPUs the servers and the load generators run on (no pinning on a 1-core machine).
PINNED = (os.cpu_count() or 1) >= 2
SERVER_CPU = "1" if PINNED else None
CLIENT_CPU = "0" if PINNED else None
# Every server believes it is served here (NEXTAUTH_URL): same cookies, same bodies.
PUBLIC_URL = "http://localhost:3000"
CONCURRENCY = 64
# The constant-rate run: this share of the server's measured /session capacity.
CONSTANT_SHARE = 0.5
CONSTANT_CONNECTIONS = 16

AUTHSVC = "authsvc"
CORE = "next-auth core"
NEXTJS = "next-auth in Next.js"
BARE = "bare uvicorn"


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    signed_in: bool  # whether the browser sends its session cookie


ROUTES = (
    Route("session", "GET", "/api/auth/session", signed_in=True),
    Route("session signed out", "GET", "/api/auth/session", signed_in=False),
    Route("csrf", "GET", "/api/auth/csrf", signed_in=True),
    Route("providers", "GET", "/api/auth/providers", signed_in=True),
    Route("update", "POST", "/api/auth/session", signed_in=True),
)
# The serving stack: (route name, server, path); the browser's cookies are sent too.
STACK = (
    Route("healthz", "GET", "/healthz", signed_in=True),
    Route("verify", "GET", "/api/auth/verify", signed_in=True),
    Route("constant", "GET", "/", signed_in=True),
)
STACK_SERVER = {"healthz": AUTHSVC, "verify": AUTHSVC, "constant": BARE}


@dataclass(frozen=True)
class Browser:
    """A browser as next-auth set it up: its cookies and the CSRF token its page holds."""

    session_token: str
    cookies: dict[str, str]  # name -> raw (percent-encoded) value, as Set-Cookie sent them
    csrf_token: str

    def cookie_header(self, *, signed_in: bool) -> str:
        jar = dict(self.cookies)
        if signed_in:
            jar[SESSION_COOKIE] = self.session_token
        return "; ".join(f"{name}={value}" for name, value in jar.items())

    def update_body(self) -> str:
        """What `useSession().update({})` posts."""
        return json.dumps({"csrfToken": self.csrf_token, "data": {}})


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    found = {}
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        found[name] = rest.split(";", 1)[0]
    return found


def next_auth_browser(core: servers.Server, secret: str) -> Browser:
    """The session token from next-auth's `encode`; the CSRF and callback-url cookies
    from next-auth's own first `/csrf` answer."""
    token = servers.mint_nextauth_token(secret, STOREFRONT, THIRTY_DAYS)
    answer = httpx.get(core.url + "/api/auth/csrf", timeout=10)
    answer.raise_for_status()
    return Browser(token, _set_cookies(answer), answer.json()["csrfToken"])


def _request(server: servers.Server, route: Route, browser: Browser) -> httpx.Response:
    headers = {"Cookie": browser.cookie_header(signed_in=route.signed_in)}
    if route.method == "POST":
        headers["Content-Type"] = "application/json"
        return httpx.post(
            server.url + route.path, headers=headers, content=browser.update_body(), timeout=10
        )
    return httpx.get(server.url + route.path, headers=headers, timeout=10)


def check_same_answers(peers: dict[str, servers.Server], browser: Browser) -> dict[str, Any]:
    """Every server answers every route alike for the same browser, or RuntimeError.

    Bodies are compared as JSON, with the session's `expires` (now + 30 days, to the
    millisecond) left out; a signed-in answer must re-issue the session cookie, and no
    answer may set another cookie."""
    bodies: dict[str, dict[str, Any]] = {}
    for name, server in peers.items():
        for route in ROUTES:
            answer = _request(server, route, browser)
            if answer.status_code != 200:
                raise RuntimeError(
                    f"{name} answered {route.method} {route.path} with {answer.status_code}: "
                    f"{answer.text[:200]}"
                )
            body = answer.json()
            if isinstance(body, dict):
                body.pop("expires", None)
            bodies.setdefault(route.name, {})[name] = body
            cookies = set(_set_cookies(answer))
            expected = {SESSION_COOKIE} if route.name in ("session", "update") else set()
            if cookies != expected:
                raise RuntimeError(f"{name} {route.name}: Set-Cookie for {sorted(cookies)}")
    for route_name, answers in bodies.items():
        distinct = {json.dumps(body, sort_keys=True) for body in answers.values()}
        if len(distinct) != 1:
            raise RuntimeError(f"the servers answer {route_name} differently: {answers}")
    if bodies["csrf"][AUTHSVC] != {"csrfToken": browser.csrf_token}:
        raise RuntimeError(f"/csrf did not answer the browser's token: {bodies['csrf']}")
    if bodies["session signed out"][AUTHSVC] != {}:
        raise RuntimeError("a signed-out /session is not {}")
    if bodies["update"][AUTHSVC] != bodies["session"][AUTHSVC]:
        raise RuntimeError("POST /session answers another session than GET /session")
    return {
        "servers": list(peers),
        "session": bodies["session"][AUTHSVC],
        "providers": sorted(bodies["providers"][AUTHSVC]),
    }


def _update_script(directory: Path, browser: Browser) -> Path:
    script = directory / "update.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [[{browser.update_body()}]]\n"
    )
    return script


@dataclass(frozen=True)
class Runner:
    browser: Browser
    update_script: Path

    def run(
        self, server_name: str, server: servers.Server, route: Route, seconds: float
    ) -> wrk.WrkRun:
        result = wrk.run(
            f"{server_name}: {route.name}",
            server.url + route.path,
            concurrency=CONCURRENCY,
            seconds=seconds,
            headers={"Cookie": self.browser.cookie_header(signed_in=route.signed_in)},
            server_pids=server.pids(),
            threads=1,
            cpus=CLIENT_CPU,
            script=self.update_script if route.method == "POST" else None,
        )
        if result.non_2xx or result.socket_errors:
            raise RuntimeError(
                f"{result.name}: {result.non_2xx} non-2xx answers, "
                f"{result.socket_errors} socket errors"
            )
        return result


def _constant_rate(
    server_name: str, server: servers.Server, browser: Browser, rate: float, seconds: float
) -> dict[str, Any]:
    background = Background(server.pids())
    result = subprocess.run(  # noqa: S603 - fixed argv: this interpreter, our module
        [
            PYTHON,
            "-m",
            "bench.loadgen",
            f"--port={server.port}",
            "--path=/api/auth/session",
            f"--cookie={browser.cookie_header(signed_in=True)}",
            f"--rate={rate}",
            f"--connections={CONSTANT_CONNECTIONS}",
            f"--seconds={seconds}",
            *([f"--cpus={CLIENT_CPU}"] if CLIENT_CPU is not None else []),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    measured: dict[str, Any] = json.loads(result.stdout)
    return {
        "server": server_name,
        "route": "session",
        **measured,
        "share_of_capacity": CONSTANT_SHARE,
        "background_cores": background.cores(),
    }


def medians(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (server, route): the median of the rounds for each figure."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["server"], run["route"]), []).append(run)
    summary = []
    for (server, route), rounds in groups.items():

        def median(key: str, of: list[dict[str, Any]] = rounds) -> float:
            return float(statistics.median(r[key] for r in of))

        summary.append(
            {
                "server": server,
                "route": route,
                "rounds": len(rounds),
                "requests_per_second": median("requests_per_second"),
                "p50_ms": median("p50_ms"),
                "p99_ms": median("p99_ms"),
                "max_ms": median("max_ms"),
                "cpu_ms_per_request": median("cpu_ms_per_request"),
                "background_cpu_share": max(r["background_cpu_share"] for r in rounds),
            }
        )
    return summary


def suite(
    directory: Path,
    secret: str,
    *,
    seconds: float,
    rounds: int,
    warmup: float,
    constant_seconds: float,
    with_nextjs: bool,
    log: Callable[[str], None],
) -> dict[str, Any]:
    if with_nextjs:
        servers.prepare_nextjs(log)
    log(
        "frontend path: authsvc, next-auth core"
        + (", next-auth in Next.js" if with_nextjs else " (Next.js skipped)")
        + f", bare uvicorn; servers on CPU {SERVER_CPU}, wrk on CPU {CLIENT_CPU}"
    )
    settings = {"NEXTAUTH_URL": PUBLIC_URL}
    with contextlib.ExitStack() as stack:
        peers = {
            AUTHSVC: stack.enter_context(
                servers.authsvc(
                    directory, secret, name="authsvc-pinned", settings=settings, cpus=SERVER_CPU
                )
            ),
            CORE: stack.enter_context(
                servers.nextauth_core(directory, secret, PUBLIC_URL, cpus=SERVER_CPU)
            ),
        }
        if with_nextjs:
            peers[NEXTJS] = stack.enter_context(
                servers.nextjs(directory, secret, PUBLIC_URL, cpus=SERVER_CPU)
            )
        bare = stack.enter_context(servers.bare(directory, cpus=SERVER_CPU))
        stack_servers = {AUTHSVC: peers[AUTHSVC], BARE: bare}
        browser = next_auth_browser(peers[CORE], secret)
        check = check_same_answers(peers, browser)
        scripts = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="authsvc-wrk-")))
        runner = Runner(browser, _update_script(scripts, browser))
        if warmup:
            for route in ROUTES:
                for name, server in peers.items():
                    runner.run(name, server, route, warmup)
            for route in STACK:
                runner.run(
                    STACK_SERVER[route.name], stack_servers[STACK_SERVER[route.name]], route, warmup
                )
        log(f"frontend path: {rounds} round(s) of {len(ROUTES) * len(peers) + len(STACK)} runs")
        runs: list[dict[str, Any]] = []
        for round_ in range(rounds):
            for route in ROUTES:
                for name, server in peers.items():
                    runs.append(
                        _record(runner.run(name, server, route, seconds), name, route, round_)
                    )
            for route in STACK:
                name = STACK_SERVER[route.name]
                result = runner.run(name, stack_servers[name], route, seconds)
                runs.append(_record(result, name, route, round_))
        summary = medians(runs)
        capacity = {
            m["server"]: m["requests_per_second"] for m in summary if m["route"] == "session"
        }
        log(f"/session at {CONSTANT_SHARE:.0%} of capacity, open loop")
        constant = [
            _constant_rate(
                name, peers[name], browser, CONSTANT_SHARE * capacity[name], constant_seconds
            )
            for name in (AUTHSVC, CORE)
        ]
    return {
        "public_url": PUBLIC_URL,
        "pinning": {"server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU},
        "concurrency": CONCURRENCY,
        "servers": [*peers, BARE],
        "check": check,
        "runs": runs,
        "medians": summary,
        "constant_rate": constant,
    }


def _record(result: wrk.WrkRun, server: str, route: Route, round_: int) -> dict[str, Any]:
    return {
        "server": server,
        "route": route.name,
        "method": route.method,
        "path": route.path,
        "round": round_,
        "cpu_ms_per_request": 1e3 * result.server_cpu_seconds / result.requests
        if result.requests
        else float("nan"),
        **asdict(result),
    }
