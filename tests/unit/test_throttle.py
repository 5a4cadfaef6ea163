"""Brute-force throttling of email + password sign-in (R28, R29, R36), in memory and Redis.

Redis is required, as PostgreSQL is: a missing server fails the run (`.ci/run` starts
one). Set AUTHSVC_TEST_REDIS to point elsewhere (default redis://127.0.0.1:6379/0). Each
test signs in as emails and from addresses of its own, so runs never share counts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import argon2
import httpx
import pytest
import redis
import redis.asyncio

from authsvc.app import AuthService, create_app
from authsvc.settings import ConfigError, parse_limit
from authsvc.throttle import NAMESPACE, SignInThrottle, address_identity
from authsvc.users.passwords import PasswordHasher, Verification
from tests.conftest import BASE, SECRET, make_settings
from tests.fakes import InMemoryUsers
from tests.processes import require_binary, stop
from tests.servers import free_port

REDIS_URL = os.environ.get("AUTHSVC_TEST_REDIS", "redis://127.0.0.1:6379/0")
PASSWORD = "correct-horse-battery"
WRONG_PASSWORD = "wrong-password"
SIGN_IN = "/api/auth/callback/credentials"
FROZEN_NOW = 1_900_000_000.0


class CountingHasher(PasswordHasher):
    """Cheap Argon2 parameters (fast tests), and a count of every password check."""

    def __init__(self) -> None:
        super().__init__(argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        self.checks = 0

    async def verify(
        self, stored_hash: str, password: str, *, upgrade_bcrypt: bool = True
    ) -> Verification:
        self.checks += 1
        return await super().verify(stored_hash, password, upgrade_bcrypt=upgrade_bcrypt)

    async def waste_time(self, password: str) -> None:
        self.checks += 1
        await super().waste_time(password)


@pytest.fixture(scope="module")
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required for the tests ({REDIS_URL}): {exc}")
    finally:
        client.close()
    return REDIS_URL


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def unique_address() -> str:
    """A documentation-range IPv6 address (RFC 3849) in a /64 of its own."""
    return f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::1"


def build_app(hasher: PasswordHasher, **settings: Any) -> AuthService:
    values: dict[str, Any] = {"trusted_proxies": ["127.0.0.1"]}
    values.update(settings)
    return create_app(make_settings(**values), users=InMemoryUsers(), hasher=hasher)


async def add_user(app: AuthService, email: str) -> None:
    await app.services.users.create(
        email=email, password_hash=await app.services.hasher.hash(PASSWORD)
    )


def client_for(app: AuthService, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE)


async def csrf_token(client: httpx.AsyncClient) -> str:
    token: str = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    return token


async def attempt(
    client: httpx.AsyncClient,
    email: str,
    *,
    password: str = WRONG_PASSWORD,
    json: bool = True,
    forwarded_for: str | None = None,
) -> httpx.Response:
    form = {"email": email, "password": password, "csrfToken": await csrf_token(client)}
    if json:
        form["json"] = "true"
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    return await client.post(SIGN_IN, data=form, headers=headers)


async def fail(
    client: httpx.AsyncClient, email: str, times: int, forwarded_for: str | None = None
) -> list[int]:
    return [
        (await attempt(client, email, forwarded_for=forwarded_for)).status_code
        for _ in range(times)
    ]


@pytest.fixture(params=["memory", "redis"])
async def app(request: pytest.FixtureRequest, hasher: CountingHasher) -> AsyncIterator[AuthService]:
    storage = "memory" if request.param == "memory" else request.getfixturevalue("redis_url")
    application = build_app(hasher, rate_limit_storage=storage)
    yield application
    await application.services.throttle.aclose()


@pytest.fixture
async def client(app: AuthService) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http


# --- the per-account limit (R28) ----------------------------------------------------------


async def test_the_101st_failed_attempt_on_an_account_is_429_with_retry_after(
    app: AuthService, client: httpx.AsyncClient
) -> None:
    email, address = unique_email(), unique_address()
    await add_user(app, email)
    statuses = await fail(client, email, 100, forwarded_for=address)
    response = await attempt(client, email, forwarded_for=address)
    assert set(statuses) == {401}
    assert response.status_code == 429
    assert 3500 < int(response.headers["retry-after"]) <= 3600


async def test_an_unknown_account_is_throttled_after_the_same_100_failures(
    client: httpx.AsyncClient,
) -> None:
    email, address = unique_email(), unique_address()
    statuses = await fail(client, email, 100, forwarded_for=address)
    response = await attempt(client, email, forwarded_for=address)
    assert (set(statuses), response.status_code) == ({401}, 429)


async def test_a_throttled_known_and_unknown_account_get_byte_identical_answers(
    hasher: CountingHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: FROZEN_NOW)
    app = build_app(hasher, rate_limit_account="3/hour")
    known, unknown = unique_email(), unique_email()
    await add_user(app, known)
    async with client_for(app) as client:
        await fail(client, known, 3)
        await fail(client, unknown, 3)
        token = await csrf_token(client)
        answers = [
            await client.post(
                SIGN_IN, data={"email": email, "password": "x", "csrfToken": token, "json": "true"}
            )
            for email in (known, unknown)
        ]
    first, second = ((a.status_code, a.headers.raw, a.content) for a in answers)
    assert first == second
    assert answers[0].status_code == 429


async def test_a_throttled_attempt_does_no_password_hashing(
    client: httpx.AsyncClient, hasher: CountingHasher
) -> None:
    email, address = unique_email(), unique_address()
    await fail(client, email, 100, forwarded_for=address)
    before = hasher.checks
    responses = [await attempt(client, email, forwarded_for=address) for _ in range(5)]
    assert {r.status_code for r in responses} == {429}
    assert hasher.checks == before


async def test_a_throttled_account_is_refused_even_with_the_right_password(
    app: AuthService, client: httpx.AsyncClient
) -> None:
    email, address = unique_email(), unique_address()
    await add_user(app, email)
    await fail(client, email, 100, forwarded_for=address)
    response = await attempt(client, email, password=PASSWORD, forwarded_for=address)
    assert response.status_code == 429
    assert not [c for c in response.headers.get_list("set-cookie") if "session-token" in c]


async def test_the_account_limit_holds_across_addresses(client: httpx.AsyncClient) -> None:
    email = unique_email()
    for _ in range(100):
        await attempt(client, email, forwarded_for=unique_address())
    response = await attempt(client, email, forwarded_for=unique_address())
    assert response.status_code == 429


async def test_a_successful_sign_in_counts_and_clears_nothing(
    app: AuthService, client: httpx.AsyncClient
) -> None:
    email, address = unique_email(), unique_address()
    await add_user(app, email)
    await fail(client, email, 98, forwarded_for=address)
    success = await attempt(client, email, password=PASSWORD, forwarded_for=address)
    after = await fail(client, email, 2, forwarded_for=address)
    assert (success.status_code, after) == (200, [401, 429])


async def test_parallel_attempts_cannot_overshoot_the_account_limit(
    client: httpx.AsyncClient, hasher: CountingHasher
) -> None:
    email, address = unique_email(), unique_address()
    token = await csrf_token(client)
    form = {"email": email, "password": "wrong", "csrfToken": token, "json": "true"}
    before = hasher.checks
    responses = await asyncio.gather(
        *(client.post(SIGN_IN, data=form, headers={"x-forwarded-for": address}) for _ in range(130))
    )
    statuses = [r.status_code for r in responses]
    # At most the limit; fewer only when Redis counted an attempt whose answer came too late
    # (a loaded machine), which this process then also counted itself.
    assert statuses.count(401) <= 100
    assert statuses.count(401) + statuses.count(429) == 130
    assert hasher.checks - before == statuses.count(401)


async def test_accounts_are_counted_by_their_normalised_email(client: httpx.AsyncClient) -> None:
    email, address = unique_email(), unique_address()
    for index in range(100):
        spelling = email.upper() if index % 2 else f"  {email}"
        await attempt(client, spelling, forwarded_for=address)
    response = await attempt(client, email.capitalize(), forwarded_for=address)
    assert response.status_code == 429


# --- the per-address limit and trusted proxies (R36) ---------------------------------------


async def test_the_address_limit_stops_one_address_trying_many_accounts(
    hasher: CountingHasher,
) -> None:
    app = build_app(hasher, rate_limit_address="5/hour")
    async with client_for(app) as client:
        statuses = [(await attempt(client, unique_email())).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


async def test_a_spoofed_x_forwarded_for_from_an_untrusted_peer_does_not_change_the_key(
    hasher: CountingHasher,
) -> None:
    app = build_app(hasher, rate_limit_address="5/hour", trusted_proxies=["10.0.0.1"])
    async with client_for(app, peer="198.51.100.7") as client:
        statuses = [
            (await attempt(client, unique_email(), forwarded_for=unique_address())).status_code
            for _ in range(6)
        ]
    assert statuses == [401] * 5 + [429]


async def test_x_forwarded_for_from_a_trusted_proxy_gives_each_client_its_own_count(
    hasher: CountingHasher,
) -> None:
    app = build_app(hasher, rate_limit_address="5/hour", trusted_proxies=["10.0.0.1"])
    async with client_for(app, peer="10.0.0.1") as client:
        first = unique_address()
        throttled = await fail(client, unique_email(), 6, forwarded_for=first)
        other = await attempt(client, unique_email(), forwarded_for=unique_address())
    assert (throttled[-1], other.status_code) == (429, 401)


async def test_a_trusted_proxy_is_not_throttled_for_its_clients_when_it_sends_no_header(
    hasher: CountingHasher,
) -> None:
    app = build_app(hasher, rate_limit_address="2/hour", trusted_proxies=["10.0.0.1"])
    async with client_for(app, peer="10.0.0.1") as client:
        statuses = await fail(client, unique_email(), 3)
    # Without X-Forwarded-For the proxy itself is the client, and it is counted.
    assert statuses == [401, 401, 429]


def test_an_ipv6_client_is_counted_by_its_64_prefix() -> None:
    assert address_identity("2001:db8:1:2:aaaa::1") == address_identity("2001:db8:1:2:bbbb::9")
    assert address_identity("2001:db8:1:2::1") != address_identity("2001:db8:1:3::1")


def test_an_ipv4_mapped_ipv6_client_is_counted_as_its_ipv4_address() -> None:
    assert address_identity("::ffff:192.0.2.1") == address_identity("192.0.2.1")


# --- the 429 answer ---------------------------------------------------------------------------


async def throttled_app(hasher: CountingHasher) -> tuple[AuthService, str]:
    app = build_app(hasher, rate_limit_account="1/hour")
    email = unique_email()
    async with client_for(app) as client:
        await attempt(client, email)
    return app, email


async def test_json_mode_429_names_too_many_requests_for_next_auth_react(
    hasher: CountingHasher,
) -> None:
    app, email = await throttled_app(hasher)
    async with client_for(app) as client:
        response = await attempt(client, email)
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {
        "url": f"{BASE}/api/auth/error?error=TooManyRequests&provider=credentials"
    }


async def test_form_mode_429_is_an_html_page_with_retry_after(hasher: CountingHasher) -> None:
    app, email = await throttled_app(hasher)
    async with client_for(app) as client:
        response = await attempt(client, email, json=False)
    assert response.status_code == 429
    assert response.headers["content-type"].startswith("text/html")
    assert int(response.headers["retry-after"]) > 0
    assert "Too many sign-in attempts" in response.text


async def test_the_429_is_never_cached(hasher: CountingHasher) -> None:
    app, email = await throttled_app(hasher)
    async with client_for(app) as client:
        response = await attempt(client, email)
    assert "no-store" in response.headers["cache-control"]


async def test_the_error_route_sends_too_many_requests_to_the_signin_page_with_a_message(
    hasher: CountingHasher,
) -> None:
    app = build_app(hasher)
    async with client_for(app) as client:
        error = await client.get("/api/auth/error?error=TooManyRequests")
        page = await client.get(error.headers["location"])
    assert error.headers["location"] == f"{BASE}/api/auth/signin?error=TooManyRequests"
    assert "Too many sign-in attempts" in page.text


async def test_the_openapi_document_describes_the_429_and_its_retry_after(
    hasher: CountingHasher,
) -> None:
    app = build_app(hasher)
    async with client_for(app) as client:
        document = (await client.get("/openapi.json")).json()
    answer = document["paths"]["/api/auth/callback/credentials"]["post"]["responses"]["429"]
    assert "Retry-After" in answer["headers"]


async def test_an_attempt_without_a_valid_csrf_token_is_not_counted(
    hasher: CountingHasher,
) -> None:
    app = build_app(hasher, rate_limit_address="1/hour")
    async with client_for(app) as client:
        await csrf_token(client)
        body = {"email": unique_email(), "password": "x", "csrfToken": "f" * 64, "json": "true"}
        refused = [(await client.post(SIGN_IN, data=body)).status_code for _ in range(3)]
        counted = await attempt(client, unique_email())
    assert (set(refused), counted.status_code) == ({200}, 401)


async def test_a_throttled_sign_in_is_counted_in_the_metrics(hasher: CountingHasher) -> None:
    app, email = await throttled_app(hasher)
    async with client_for(app) as client:
        await attempt(client, email)
        metrics = (await client.get("/metrics")).text
    assert 'authsvc_signin_outcomes_total{outcome="throttled",provider="credentials"} 1.0' in (
        metrics
    )


# --- Redis: shared counts, no personal data, outages -----------------------------------------


async def test_redis_shares_the_counts_between_two_app_instances(
    redis_url: str, hasher: CountingHasher
) -> None:
    first = build_app(hasher, rate_limit_storage=redis_url, rate_limit_account="4/hour")
    second = build_app(hasher, rate_limit_storage=redis_url, rate_limit_account="4/hour")
    email, address = unique_email(), unique_address()
    async with client_for(first) as one, client_for(second) as two:
        await fail(one, email, 2, forwarded_for=address)
        await fail(two, email, 2, forwarded_for=address)
        answers = [(await attempt(c, email, forwarded_for=address)).status_code for c in (one, two)]
    assert answers == [429, 429]


async def everything_stored(url: str) -> str:
    """Every key of a Redis server with every value under it, as one text to search."""
    store = redis.asyncio.Redis.from_url(url, decode_responses=True)
    parts: list[object] = []
    try:
        async for key in store.scan_iter():
            parts.append(key)
            kind = await store.type(key)
            if kind == "string":
                parts.append(await store.get(key))
            elif kind == "list":
                parts += await store.lrange(key, 0, -1)
            elif kind == "zset":
                parts += await store.zrange(key, 0, -1)
            elif kind == "set":
                parts += await store.smembers(key)
            elif kind == "hash":
                parts += (await store.hgetall(key)).items()
            else:
                raise AssertionError(f"unexpected Redis type {kind!r} under {key!r}")
    finally:
        await store.aclose()
    return "\n".join(map(str, parts))


@pytest.mark.parametrize(
    ("address", "in_clear"),
    [
        # Every form that names the client: the /64 counted, or the address itself.
        ("2001:db8:3f2a:91c4::1", ["2001:db8:3f2a:91c4", "2001:0db8:3f2a:91c4"]),
        ("203.0.113.57", ["203.0.113.57"]),
        ("::ffff:198.51.100.23", ["198.51.100.23"]),
    ],
    ids=["ipv6", "ipv4", "ipv4-mapped"],
)
async def test_nothing_the_throttle_writes_to_redis_holds_the_email_or_the_address(
    own_redis: OwnRedis, hasher: CountingHasher, address: str, in_clear: list[str]
) -> None:
    """R29: a dump of the store, keys and values, names neither the account nor the client.

    The needles hold `-`, `.` or `:`, which a hex digest never does, so no hash can contain
    one by chance.
    """
    await wait_for_redis(own_redis.url)
    app = build_app(hasher, rate_limit_storage=own_redis.url)
    local_part = f"user-{uuid.uuid4().hex[:12]}"
    async with client_for(app) as client:
        for spelling in (f"{local_part}@Example.COM", f" {local_part.upper()}@example.com "):
            await attempt(client, spelling, forwarded_for=address)
    await app.services.throttle.aclose()

    dump = (await everything_stored(own_redis.url)).lower()
    assert dump.count(NAMESPACE) == 2  # both limits wrote their key
    for needle in [local_part, "example.com", *in_clear]:
        assert needle not in dump


async def test_an_unreachable_redis_falls_back_to_the_in_process_limiter_and_logs_it(
    hasher: CountingHasher, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = build_app(hasher, rate_limit_storage=dead, rate_limit_account="2/hour")
    email = unique_email()
    with caplog.at_level(logging.ERROR, logger="authsvc.throttle"):
        async with client_for(app) as client:
            statuses = await fail(client, email, 3)
    assert statuses == [401, 401, 429]
    assert "rate-limit storage unavailable" in caplog.text


async def test_a_redis_outage_costs_a_sign_in_a_bounded_wait(hasher: CountingHasher) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = build_app(hasher, rate_limit_storage=dead)
    async with client_for(app) as client:
        token = await csrf_token(client)
        started = time.perf_counter()
        await client.post(SIGN_IN, data={"email": unique_email(), "csrfToken": token})
        elapsed = time.perf_counter() - started
    assert elapsed < 2


class OwnRedis:
    """A Redis server of one test alone, so it can be stopped and started again."""

    def __init__(self) -> None:
        port = free_port()
        self.url = f"redis://127.0.0.1:{port}/0"
        self.command = [require_binary("redis-server"), "--port", str(port)]
        self.command += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop(self.process)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    yield server
    server.stop()


async def wait_for_redis(url: str) -> None:
    client = redis.asyncio.Redis.from_url(url)
    try:
        for _ in range(100):
            try:
                await client.ping()
                return
            except redis.ConnectionError:
                await asyncio.sleep(0.05)
        raise AssertionError(f"{url} did not come up")
    finally:
        await client.aclose()


async def test_sign_in_counts_go_back_to_redis_once_it_answers_again(
    own_redis: OwnRedis,
    hasher: CountingHasher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = own_redis.url
    monkeypatch.setattr("authsvc.throttle.REDIS_RETRY_SECONDS", 0.0)
    await wait_for_redis(url)
    app = build_app(hasher, rate_limit_storage=url, rate_limit_account="50/hour")
    email = unique_email()
    async with client_for(app) as client:
        await attempt(client, email)  # counted in Redis
        own_redis.stop()
        await attempt(client, email)  # counted in memory
        own_redis.start()
        await wait_for_redis(url)
        await attempt(client, email)  # counted in Redis again
    store = redis.asyncio.Redis.from_url(url)
    keys = [key async for key in store.scan_iter(match=f"*{NAMESPACE}/account/*")]
    assert len(keys) == 1
    # The restarted server is empty (no persistence): only the last attempt is in it.
    assert await store.llen(keys[0]) == 1
    await store.aclose()


async def test_a_redis_outage_midway_gives_no_fresh_budget_to_the_process(
    own_redis: OwnRedis, hasher: CountingHasher
) -> None:
    """Attempts Redis let through still count once this process falls back to its own
    counts, so stopping (or slowing) Redis mid-attack buys no extra guesses."""
    await wait_for_redis(own_redis.url)
    app = build_app(hasher, rate_limit_storage=own_redis.url, rate_limit_account="10/hour")
    email = unique_email()
    async with client_for(app) as client:
        through_redis = await fail(client, email, 6)
        own_redis.stop()
        after_outage = await fail(client, email, 6)
    await app.services.throttle.aclose()
    assert through_redis == [401] * 6
    assert after_outage == [401] * 4 + [429] * 2


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("rate_limit_storage", "memcached://127.0.0.1"),
        ("rate_limit_account", "lots"),
        ("rate_limit_address", "0/hour"),
    ],
)
def test_settings_refuse_a_throttle_setting_that_cannot_work(name: str, value: str) -> None:
    with pytest.raises(ConfigError):
        make_settings(**{name: value})


def test_the_defaults_are_100_an_hour_per_account_and_300_per_address() -> None:
    throttle = SignInThrottle.from_settings(make_settings())
    assert (throttle.account_limit, throttle.address_limit) == (
        parse_limit("a", "100/hour"),
        parse_limit("b", "300/hour"),
    )
    assert not throttle.shared


def test_the_throttle_keys_depend_on_the_secret() -> None:
    limit = parse_limit("limit", "1/hour")
    one = SignInThrottle(secret=SECRET, account_limit=limit, address_limit=limit)
    two = SignInThrottle(secret=SECRET[::-1], account_limit=limit, address_limit=limit)
    assert one._digest("account", "a@example.com") != two._digest("account", "a@example.com")
