"""The fleet's load: people who sign in with a password, then keep polling `/session` (as
next-auth/react does) and `/verify` (as a proxy's forward auth does), each from an address
of their own, at a fixed total rate, through the load balancer.

Every answer is recorded with its time, kind, outcome, latency and the replica nginx chose
(X-Upstream), so a scenario can judge any window of the run. Outcomes:

- `ok`: a session answered with its user, a verify allowed, a sign-in that set a session;
- `signed_out`: a session answered `{}` and cleared the cookie of someone who had signed in
  (the session is lost: the person signs in again, and the load goes on);
- `denied`: a verify answered 401, or a session `{}` that kept the cookie: this request was
  refused, the session was not lost (authsvc could not read a revocation state in time);
- `refused`: a sign-in answered 429, 502 or 503 (a clean failure: no session was set, the
  person's previous session, if any, still works);
- `error`: anything else: a transport error, a 5xx on a GET, an unexpected answer.

The load runs on its own thread and event loop, so a scenario can stop, kill and restart
processes meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

SESSION_COOKIE = "next-auth.session-token"
GET_KINDS = ("csrf", "session", "verify")


@dataclass
class User:
    email: str
    password: str
    address: str  # the client address nginx forwards (X-Forwarded-For)
    cookies: dict[str, str] = field(default_factory=dict)

    @property
    def session_token(self) -> str | None:
        return self.cookies.get(SESSION_COOKIE)


@dataclass(frozen=True, slots=True)
class Record:
    at: float  # seconds since the clock started, when the request was sent
    kind: str  # csrf, signin, session, verify
    outcome: str  # ok, signed_out, refused, error
    status: int  # 0: no HTTP answer
    latency: float  # seconds
    upstream: str  # the replica that answered, as nginx named it ("" if not through nginx)


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass(frozen=True)
class Summary:
    """What a window of the load saw."""

    seconds: float
    records: list[Record]

    def count(self, *, kinds: Sequence[str] = (), outcome: str | None = None) -> int:
        return sum(
            1
            for r in self.records
            if (not kinds or r.kind in kinds) and (outcome is None or r.outcome == outcome)
        )

    @property
    def get_errors(self) -> int:
        return self.count(kinds=GET_KINDS, outcome="error")

    @property
    def signed_out(self) -> int:
        return self.count(outcome="signed_out")

    @property
    def denied(self) -> int:
        return self.count(outcome="denied")

    def p99_ms(self, kinds: Sequence[str] = GET_KINDS) -> float:
        return percentile([r.latency for r in self.records if r.kind in kinds], 0.99) * 1e3

    def upstreams(self) -> Counter[str]:
        return Counter(r.upstream for r in self.records if r.upstream)

    def as_dict(self) -> dict[str, Any]:
        outcomes: dict[str, dict[str, int]] = {}
        for record in self.records:
            kind = outcomes.setdefault(record.kind, {})
            kind[record.outcome] = kind.get(record.outcome, 0) + 1
        statuses = Counter(f"{r.kind} {r.status}" for r in self.records if r.outcome == "error")
        gets = [r.latency for r in self.records if r.kind in GET_KINDS]
        signins = [r.latency for r in self.records if r.kind == "signin"]
        return {
            "seconds": round(self.seconds, 1),
            "requests": len(self.records),
            "rate": round(len(self.records) / self.seconds, 1) if self.seconds else 0.0,
            "outcomes": outcomes,
            "get_errors": self.get_errors,
            "error_statuses": dict(statuses),
            "signed_out": self.signed_out,
            "denied": self.denied,
            "get_p50_ms": round(percentile(gets, 0.50) * 1e3, 1),
            "get_p99_ms": round(percentile(gets, 0.99) * 1e3, 1),
            "get_max_ms": round(max(gets, default=math.nan) * 1e3, 1),
            "signin_p99_ms": round(percentile(signins, 0.99) * 1e3, 1),
        }


class Client:
    """The HTTP side of one person's browser (or of the proxy asking on their behalf)."""

    def __init__(self, http: httpx.AsyncClient, origin: str, clock: float) -> None:
        self.http = http
        self.origin = origin  # NEXTAUTH_URL's origin: the load balancer
        self.clock = clock

    def _headers(self, user: User) -> dict[str, str]:
        headers = {"x-forwarded-for": user.address}
        if user.cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in user.cookies.items())
        return headers

    async def _send(
        self, kind: str, user: User, method: str, url: str, **kwargs: Any
    ) -> tuple[Record, httpx.Response | None]:
        sent = time.monotonic()
        try:
            response = await self.http.request(
                method, url, headers={**self._headers(user), **kwargs.pop("headers", {})}, **kwargs
            )
        except httpx.HTTPError:
            latency = time.monotonic() - sent
            return Record(sent - self.clock, kind, "error", 0, latency, ""), None
        latency = time.monotonic() - sent
        remember(user, response)
        upstream = response.headers.get("x-upstream", "")
        return Record(
            sent - self.clock, kind, "", response.status_code, latency, upstream
        ), response

    async def sign_in(self, user: User, base: str | None = None) -> list[Record]:
        """GET /csrf, then POST the password as next-auth/react's signIn() does (json)."""
        base = base or self.origin
        record, response = await self._send("csrf", user, "GET", f"{base}/api/auth/csrf")
        if response is None or response.status_code != 200:
            return [_judged(record, "error")]
        csrf = _judged(record, "ok")
        form = {
            "email": user.email,
            "password": user.password,
            "csrfToken": response.json()["csrfToken"],
            "json": "true",
        }
        url = f"{base}/api/auth/callback/credentials"
        record, response = await self._send(
            "signin", user, "POST", url, data=form, headers={"origin": self.origin}
        )
        if response is None:
            outcome = "error"
        elif response.status_code == 200 and "error=" not in response.json().get("url", ""):
            outcome = "ok" if user.session_token else "error"
        elif response.status_code in (429, 502, 503):
            outcome = "refused"
        else:
            outcome = "error"
        return [csrf, _judged(record, outcome)]

    async def session(self, user: User, base: str | None = None) -> Record:
        url = f"{base or self.origin}/api/auth/session"
        record, response = await self._send("session", user, "GET", url)
        if response is None or response.status_code != 200:
            return _judged(record, "error")
        if "user" in response.json():
            return _judged(record, "ok")
        return _judged(record, "denied" if user.session_token else "signed_out")

    async def verify(self, user: User, base: str | None = None) -> Record:
        url = f"{base or self.origin}/api/auth/verify"
        record, _response = await self._send("verify", user, "GET", url)
        outcomes = {200: "ok", 401: "denied"}
        return _judged(record, outcomes.get(record.status, "error"))


def _judged(record: Record, outcome: str) -> Record:
    return Record(record.at, record.kind, outcome, record.status, record.latency, record.upstream)


def remember(user: User, response: httpx.Response) -> None:
    """Apply the answer's Set-Cookie headers as a browser would (a cleared cookie goes)."""
    for header in response.headers.get_list("set-cookie"):
        pair, _, attributes = header.partition(";")
        name, _, value = pair.partition("=")
        lowered = attributes.lower()
        if not value or "max-age=0" in lowered or "1970" in lowered:
            user.cookies.pop(name.strip(), None)
        else:
            user.cookies[name.strip()] = value.strip()


def make_http() -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    return httpx.AsyncClient(timeout=15.0, limits=limits)


class Load:
    """`users` poll at `rate` requests a second in all (session and verify, 1:2), and one
    of them signs in again every `signin_every` seconds, until stopped."""

    def __init__(
        self, origin: str, users: list[User], *, rate: float, signin_every: float = 2.0
    ) -> None:
        self.origin = origin
        self.users = users
        self.rate = rate
        self.signin_every = signin_every
        self.clock = time.monotonic()
        self.records: list[Record] = []
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._client: Client | None = None
        self._stopped: asyncio.Event | None = None

    def now(self) -> float:
        return time.monotonic() - self.clock

    def window(self, start: float, end: float | None = None) -> Summary:
        end = self.now() if end is None else end
        chosen = [r for r in list(self.records) if start <= r.at < end]
        return Summary(end - start, chosen)

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="fleet-load", daemon=True)
        self._thread.start()
        if not self._started.wait(60):
            raise RuntimeError("the load did not start")

    def stop(self) -> None:
        self._running = False
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=60)

    def sign_in_now(self, users: list[User]) -> list[Record]:
        """Sign these people in at once, on the load's loop; their records, when done."""
        assert self._loop is not None

        async def all_of() -> list[Record]:
            assert self._client is not None
            done = await asyncio.gather(*(self._client.sign_in(user) for user in users))
            records = [record for pair in done for record in pair]
            self.records.extend(records)
            return records

        return asyncio.run_coroutine_threadsafe(all_of(), self._loop).result(timeout=120)

    @contextlib.contextmanager
    def running(self) -> Iterator[Load]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        stopped = self._stopped = asyncio.Event()
        async with make_http() as http:
            self._client = Client(http, self.origin, self.clock)
            self._started.set()
            tasks = [
                asyncio.create_task(self._person(i, user)) for i, user in enumerate(self.users)
            ]
            tasks.append(asyncio.create_task(self._sign_ins()))
            await stopped.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _person(self, index: int, user: User) -> None:
        assert self._client is not None
        client = self._client
        interval = len(self.users) / self.rate
        slot = time.monotonic() + interval * index / len(self.users)
        turn = index
        while self._running:
            delay = slot - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            slot = max(slot + interval, time.monotonic())
            turn += 1
            if not user.session_token:
                self.records.extend(await client.sign_in(user))
                continue
            poll = client.session if turn % 3 == 0 else client.verify
            record = await poll(user)
            self.records.append(record)
            if record.outcome == "signed_out":
                user.cookies.pop(SESSION_COOKIE, None)

    async def _sign_ins(self) -> None:
        assert self._client is not None
        turn = 0
        pending: set[asyncio.Task[None]] = set()
        while self._running:
            await asyncio.sleep(self.signin_every)
            user = self.users[turn % len(self.users)]
            turn += 1

            async def again(person: User = user) -> None:
                assert self._client is not None
                self.records.extend(await self._client.sign_in(person))

            task = asyncio.create_task(again())
            pending.add(task)
            task.add_done_callback(pending.discard)


async def sign_in_all(origin: str, users: list[User], concurrency: int = 4) -> list[Record]:
    """Sign every person in before the load starts (a few at a time: each costs Argon2)."""
    records: list[Record] = []
    gate = asyncio.Semaphore(concurrency)
    async with make_http() as http:
        client = Client(http, origin, time.monotonic())

        async def one(user: User) -> None:
            async with gate:
                records.extend(await client.sign_in(user))

        await asyncio.gather(*(one(user) for user in users))
    return records


async def capacity(
    origin: str, users: list[User], seconds: float, concurrency: int
) -> tuple[float, Summary]:
    """Polls a second the fleet answers, closed loop (each of `concurrency` clients sends
    its next request when the previous answer came): the load's own client included."""
    records: list[Record] = []
    async with make_http() as http:
        client = Client(http, origin, time.monotonic())
        end = time.monotonic() + seconds

        async def worker(k: int) -> None:
            turn = k
            while time.monotonic() < end:
                user = users[turn % len(users)]
                poll = client.session if turn % 3 == 0 else client.verify
                records.append(await poll(user))
                turn += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.monotonic() - started
    return len(records) / elapsed, Summary(elapsed, records)
