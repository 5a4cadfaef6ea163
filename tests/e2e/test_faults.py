"""Faults: a stopped, slow or far-away database under the session path, and oversized requests.

A token without `role` (minted before roles existed) makes the jwt callback look the
user up once. When PostgreSQL is stopped (its database refuses connections and its
backends are terminated, as in tests/unit/routes/test_health.py) or slow (the users table locked by
another transaction), `/api/auth/verify` must fail closed (401, never 200) within a bound
well under a proxy's 200 ms deadline (AUTHSVC_SESSION_LOOKUP_TIMEOUT, 0.1 s; the tests
allow 0.5 s, a fault bound rather than a performance target), `/api/auth/session` must
answer the session without a role, and both must recover without a restart.

A far-away database is a TCP proxy in front of PostgreSQL that holds every packet for 2 s
(tests/delay_proxy.py): a hostile run found each lookup then took 2.1 s instead of its
0.1 s deadline and each timed-out lookup opened a new connection. Every lookup, connection
establishment included, must answer within the bound, the connections stay within the
pool, and the service recovers by itself once the network is fast again.

Oversized requests go to a real `authsvc serve` (uvicorn and its HTTP parser), over raw
sockets so that nothing between the test and the server hides what the server does.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from authsvc.app import AuthService, create_app
from authsvc.lookups import RETRY_AFTER
from authsvc.migrations import upgrade
from authsvc.tokens import TokenCodec
from authsvc.users.models import Role
from tests.conftest import BASE, PG_ADMIN_DSN, SECRET, make_settings
from tests.delay_proxy import DelayProxy
from tests.processes import Authsvc, run_authsvc
from tests.servers import free_port
from tests.unit.routes.test_health import set_reachable

SESSION = "next-auth.session-token"
EMAIL = "legacy@example.com"
FAULT_BOUND = 0.5  # seconds; the configured bound is 0.1
CODEC = TokenCodec([SECRET])


# --- the database under the session path ---------------------------------------------------


@pytest.fixture(scope="module")
async def faulty_database() -> AsyncIterator[tuple[str, str, str]]:
    """A PostgreSQL database of this module alone, holding one user, to switch off and on."""
    name = f"authsvc_faults_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    await asyncio.to_thread(upgrade, f"{url}/{name}")
    app = create_app(make_settings(database_url=f"{url}/{name}"))
    user = await app.services.users.create(email=EMAIL, name="Legacy", role=Role.STAFF)
    await app.services.database.dispose()
    yield name, f"{url}/{name}", user.id
    await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
async def outage_app(faulty_database: tuple[str, str, str]) -> AsyncIterator[AuthService]:
    name, url, _ = faulty_database
    app = create_app(make_settings(database_url=url))
    yield app
    await set_reachable(name, True)
    await app.services.database.dispose()


@pytest.fixture
async def client(outage_app: AuthService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=outage_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


def roleless_cookie(user_id: str, email: str = EMAIL) -> dict[str, str]:
    """A session minted before roles existed: no `role`, so the callback looks it up."""
    claims = {"sub": user_id, "id": user_id, "email": email, "name": "Legacy"}
    return {"cookie": f"{SESSION}={CODEC.encode(claims, 3600)}"}


def cookie_with_role(user_id: str) -> dict[str, str]:
    claims = {"sub": user_id, "id": user_id, "email": EMAIL, "role": "STAFF"}
    return {"cookie": f"{SESSION}={CODEC.encode(claims, 3600)}"}


@asynccontextmanager
async def users_table_locked(name: str) -> AsyncIterator[None]:
    """A slow database: every read of `users` waits behind another transaction's lock."""
    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    holder = await asyncpg.connect(dsn, timeout=5)
    transaction = holder.transaction()
    await transaction.start()
    await holder.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        await transaction.rollback()
        await holder.close()


async def timed(request: Coroutine[Any, Any, httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = await request
    return response, time.perf_counter() - started


async def test_verify_uses_the_database_for_a_token_without_a_role_when_it_is_up(
    client: httpx.AsyncClient, faulty_database: tuple[str, str, str]
) -> None:
    response = await client.get("/api/auth/verify", headers=roleless_cookie(faulty_database[2]))
    assert (response.status_code, response.headers["x-auth-request-role"]) == (200, "STAFF")


async def test_verify_fails_closed_quickly_while_the_database_is_stopped(
    client: httpx.AsyncClient, faulty_database: tuple[str, str, str]
) -> None:
    name, _, user_id = faulty_database
    await client.get("/api/auth/verify", headers=roleless_cookie(user_id))  # a pooled connection
    await set_reachable(name, False)
    response, elapsed = await timed(
        client.get("/api/auth/verify", headers=roleless_cookie(user_id))
    )
    assert response.status_code == 401
    assert elapsed < FAULT_BOUND


async def test_verify_fails_closed_quickly_while_the_database_is_slow(
    client: httpx.AsyncClient, faulty_database: tuple[str, str, str]
) -> None:
    name, _, user_id = faulty_database
    async with users_table_locked(name):
        response, elapsed = await timed(
            client.get("/api/auth/verify", headers=roleless_cookie(user_id))
        )
    assert response.status_code == 401
    assert elapsed < FAULT_BOUND


async def test_verify_recovers_without_a_restart_once_the_database_is_back(
    client: httpx.AsyncClient, faulty_database: tuple[str, str, str]
) -> None:
    name, _, user_id = faulty_database
    await set_reachable(name, False)
    during = await client.get("/api/auth/verify", headers=roleless_cookie(user_id))
    await set_reachable(name, True)
    await asyncio.sleep(RETRY_AFTER)  # reads are held back this long after a database error
    after = await client.get("/api/auth/verify", headers=roleless_cookie(user_id))
    assert (during.status_code, after.status_code) == (401, 200)


async def test_verify_recovers_without_a_restart_once_the_database_is_fast_again(
    client: httpx.AsyncClient, faulty_database: tuple[str, str, str]
) -> None:
    name, _, user_id = faulty_database
    async with users_table_locked(name):
        during = await client.get("/api/auth/verify", headers=roleless_cookie(user_id))
    after = await client.get("/api/auth/verify", headers=roleless_cookie(user_id))
    assert (during.status_code, after.status_code) == (401, 200)


async def test_a_token_with_a_role_needs_no_database_during_an_outage(
    client: httpx.AsyncClient, faulty_database: tuple[str, str, str]
) -> None:
    name, _, user_id = faulty_database
    await set_reachable(name, False)
    response = await client.get("/api/auth/verify", headers=cookie_with_role(user_id))
    assert response.status_code == 200


async def test_session_answers_without_a_role_while_the_database_is_stopped(
    client: httpx.AsyncClient, faulty_database: tuple[str, str, str]
) -> None:
    name, _, user_id = faulty_database
    await set_reachable(name, False)
    response, elapsed = await timed(
        client.get("/api/auth/session", headers=roleless_cookie(user_id))
    )
    assert response.status_code == 200
    assert response.json()["user"]["email"] == EMAIL
    assert "role" not in response.json()["user"]
    assert elapsed < FAULT_BOUND


async def test_session_answers_without_a_role_while_the_database_is_slow(
    client: httpx.AsyncClient, faulty_database: tuple[str, str, str]
) -> None:
    name, _, user_id = faulty_database
    async with users_table_locked(name):
        response = await client.get("/api/auth/session", headers=roleless_cookie(user_id))
    assert response.status_code == 200
    assert "role" not in response.json()["user"]


async def test_session_gets_the_role_again_once_the_database_is_back(
    client: httpx.AsyncClient, faulty_database: tuple[str, str, str]
) -> None:
    name, _, user_id = faulty_database
    await set_reachable(name, False)
    await client.get("/api/auth/session", headers=roleless_cookie(user_id))
    await set_reachable(name, True)
    await asyncio.sleep(RETRY_AFTER)  # reads are held back this long after a database error
    response = await client.get("/api/auth/session", headers=roleless_cookie(user_id))
    assert response.json()["user"]["role"] == "STAFF"


async def test_every_answer_during_an_outage_is_below_500(
    client: httpx.AsyncClient, faulty_database: tuple[str, str, str]
) -> None:
    name, _, user_id = faulty_database
    await set_reachable(name, False)
    statuses = [
        (await client.get(path, headers=roleless_cookie(user_id))).status_code
        for path in ("/api/auth/verify", "/api/auth/session", "/api/auth/verify/x", "/healthz")
        for _ in range(3)
    ]
    assert max(statuses) < 500


# --- password sign-in while the database is away --------------------------------------------
#
# A hostile run found credentials sign-in with the database down answered a generic 500. It
# is a 503 with Retry-After, in next-auth's shapes: `{url}` to the error page in JSON mode
# (so next-auth/react's signIn() reports the error and the status), the error page from a
# plain form; and /readyz is red meanwhile.

PASSWORD = "correct horse battery"


async def sign_in(http: httpx.AsyncClient, email: str, *, json_mode: bool = True) -> httpx.Response:
    csrf = (await http.get("/api/auth/csrf")).json()["csrfToken"]
    form = {"email": email, "password": PASSWORD, "csrfToken": csrf}
    if json_mode:
        form["json"] = "true"
    return await http.post("/api/auth/callback/credentials", data=form)


@pytest.fixture
async def unreachable_client() -> AsyncIterator[httpx.AsyncClient]:
    """An app whose PostgreSQL server is not there at all: connections are refused."""
    port = free_port()
    app = create_app(
        make_settings(database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{port}/gone")
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http
    await app.services.database.dispose()


def assert_unavailable_in_json(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert response.json() == {
        "url": f"{BASE}/api/auth/error?error=ServiceUnavailable&provider=credentials"
    }


async def test_password_sign_in_while_the_database_refuses_connections_is_503_with_retry_after(
    client: httpx.AsyncClient, faulty_database: tuple[str, str, str]
) -> None:
    await set_reachable(faulty_database[0], False)
    assert_unavailable_in_json(await sign_in(client, EMAIL))


async def test_password_sign_in_while_the_database_server_is_gone_is_503_with_retry_after(
    unreachable_client: httpx.AsyncClient,
) -> None:
    assert_unavailable_in_json(await sign_in(unreachable_client, EMAIL))


async def test_password_sign_in_from_a_form_while_the_database_is_down_is_a_503_page(
    client: httpx.AsyncClient, faulty_database: tuple[str, str, str]
) -> None:
    await set_reachable(faulty_database[0], False)
    response = await sign_in(client, EMAIL, json_mode=False)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["content-type"].startswith("text/html")


async def test_readyz_is_red_while_password_sign_in_is_refused(
    client: httpx.AsyncClient, faulty_database: tuple[str, str, str]
) -> None:
    await set_reachable(faulty_database[0], False)
    refused = await sign_in(client, EMAIL)
    ready = await client.get("/readyz")
    assert (refused.status_code, ready.status_code) == (503, 503)


async def test_password_sign_in_works_again_once_the_database_is_back(
    outage_app: AuthService, client: httpx.AsyncClient, faulty_database: tuple[str, str, str]
) -> None:
    email = f"back-{uuid.uuid4().hex[:8]}@example.com"
    hashed = await outage_app.services.hasher.hash(PASSWORD)
    await outage_app.services.users.create(email=email, password_hash=hashed)
    await set_reachable(faulty_database[0], False)
    during = await sign_in(client, email)
    await set_reachable(faulty_database[0], True)
    after = await sign_in(client, email)
    assert (during.status_code, after.status_code) == (503, 200)
    assert "next-auth.session-token" in after.headers.get("set-cookie", "")


# --- a far-away database: every packet delayed ---------------------------------------------

SLOW_PACKETS = 2.0  # seconds the proxy holds each packet
POOL_SIZE = 5
RECOVERY_BOUND = 15.0  # seconds until lookups succeed again once the network is fast


@pytest.fixture
async def far_database(
    faulty_database: tuple[str, str, str],
) -> AsyncIterator[tuple[DelayProxy, str]]:
    """A proxy, not yet slow, in front of this module's PostgreSQL database; and its URL."""
    name = faulty_database[0]
    host, port = PG_ADMIN_DSN.split("@", 1)[1].split("/", 1)[0].split(":")
    proxy = DelayProxy(host, int(port))
    proxy_port = await proxy.start()
    user = PG_ADMIN_DSN.split("://", 1)[1].split("@", 1)[0]
    yield proxy, f"postgresql+asyncpg://{user}@127.0.0.1:{proxy_port}/{name}"
    await proxy.close()


@asynccontextmanager
async def far_client(
    url: str, **settings: Any
) -> AsyncIterator[tuple[AuthService, httpx.AsyncClient]]:
    app = create_app(make_settings(database_url=url, database_pool_size=POOL_SIZE, **settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield app, http
    await app.services.database.dispose()


async def verify_many(http: httpx.AsyncClient, count: int) -> list[tuple[int, float]]:
    """`count` concurrent /verify checks, each for another user without a role."""

    async def one(index: int) -> tuple[int, float]:
        cookie = roleless_cookie(f"user{index}", f"user{index}@example.com")
        response, elapsed = await timed(http.get("/api/auth/verify", headers=cookie))
        return response.status_code, elapsed

    return list(await asyncio.gather(*(one(index) for index in range(count))))


async def test_a_lookup_over_a_slow_network_answers_within_its_deadline(
    far_database: tuple[DelayProxy, str], faulty_database: tuple[str, str, str]
) -> None:
    proxy, url = far_database
    async with far_client(url) as (_, http):
        warm = await http.get("/api/auth/verify", headers=roleless_cookie(faulty_database[2]))
        proxy.delay = SLOW_PACKETS
        answers = [
            await timed(http.get("/api/auth/verify", headers=roleless_cookie(faulty_database[2])))
            for _ in range(2)
        ]
    assert warm.status_code == 200
    assert [response.status_code for response, _ in answers] == [401, 401]
    assert max(elapsed for _, elapsed in answers) < FAULT_BOUND


async def test_a_lookup_that_must_connect_over_a_slow_network_answers_within_its_deadline(
    far_database: tuple[DelayProxy, str], faulty_database: tuple[str, str, str]
) -> None:
    proxy, url = far_database
    proxy.delay = SLOW_PACKETS
    async with far_client(url) as (_, http):
        response, elapsed = await timed(
            http.get("/api/auth/verify", headers=roleless_cookie(faulty_database[2]))
        )
    assert (response.status_code, elapsed < FAULT_BOUND) == (401, True)


async def test_sixty_concurrent_lookups_over_a_slow_network_all_answer_within_the_deadline(
    far_database: tuple[DelayProxy, str],
) -> None:
    proxy, url = far_database
    async with far_client(url) as (_, http):
        await verify_many(http, 1)
        proxy.delay = SLOW_PACKETS
        answers = await verify_many(http, 60)
    assert {status for status, _ in answers} == {401}
    assert max(elapsed for _, elapsed in answers) < FAULT_BOUND


async def test_a_slow_network_gets_no_more_connections_than_the_pool_holds(
    far_database: tuple[DelayProxy, str],
) -> None:
    proxy, url = far_database
    async with far_client(url) as (_, http):
        await verify_many(http, 1)
        proxy.delay = SLOW_PACKETS
        for _ in range(5):  # 300 lookups over about a second
            await verify_many(http, 60)
            await asyncio.sleep(0.2)
        opened, most_open = proxy.accepted, proxy.most_open
    assert opened <= POOL_SIZE
    assert most_open <= POOL_SIZE


async def test_revocation_lookups_over_a_slow_network_answer_within_the_deadline_and_pool(
    far_database: tuple[DelayProxy, str],
) -> None:
    proxy, url = far_database
    async with far_client(url, revocation=True) as (_, http):
        proxy.delay = SLOW_PACKETS

        async def one(index: int) -> tuple[httpx.Response, float]:
            claims = {"sub": f"u{index}", "id": f"u{index}", "role": "STAFF", "authTime": 1}
            cookie = {"cookie": f"{SESSION}={CODEC.encode(claims, 3600)}"}
            return await timed(http.get("/api/auth/verify", headers=cookie))

        answers = await asyncio.gather(*(one(index) for index in range(60)))
    assert {response.status_code for response, _ in answers} == {401}
    assert max(elapsed for _, elapsed in answers) < FAULT_BOUND
    assert proxy.most_open <= POOL_SIZE


async def test_lookups_recover_by_themselves_once_the_network_is_fast_again(
    far_database: tuple[DelayProxy, str], faulty_database: tuple[str, str, str]
) -> None:
    proxy, url = far_database
    cookie = roleless_cookie(faulty_database[2])
    async with far_client(url) as (_, http):
        proxy.delay = SLOW_PACKETS
        for _ in range(3):
            await verify_many(http, 60)
        during = await http.get("/api/auth/verify", headers=cookie)
        proxy.delay = 0
        deadline = time.monotonic() + RECOVERY_BOUND
        after = await http.get("/api/auth/verify", headers=cookie)
        while after.status_code != 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            after = await http.get("/api/auth/verify", headers=cookie)
    assert (during.status_code, after.status_code) == (401, 200)


# --- oversized requests against a real `authsvc serve` ----------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authsvc]:
    directory: Path = tmp_path_factory.mktemp("faults-serve")
    with run_authsvc(directory, public_url="http://localhost:3000") as authsvc:
        yield authsvc


@pytest.fixture(scope="module")
def small_head_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authsvc]:
    directory: Path = tmp_path_factory.mktemp("faults-small-head")
    with run_authsvc(
        directory, public_url="http://localhost:3000", AUTHSVC_MAX_HEADER_BYTES="8192"
    ) as authsvc:
        yield authsvc


def exchange(url: str, head: bytes, body: bytes = b"", *, pace: int = 0) -> tuple[int, float]:
    """Send a raw request (the body from another thread, as a client streaming it would)
    and read the status line; the status and the seconds until it arrived."""
    host, port = url.removeprefix("http://").split(":")
    started = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=10) as sock:

        def send() -> None:
            try:
                if pace:
                    for offset in range(0, len(head), pace):
                        sock.sendall(head[offset : offset + pace])
                else:
                    sock.sendall(head)
                for offset in range(0, len(body), 64 * 1024):
                    sock.sendall(body[offset : offset + 64 * 1024])
            except OSError:
                pass  # the server answered and closed before taking it all

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        status_line = sock.makefile("rb").readline()
        elapsed = time.perf_counter() - started
        sender.join(10)
    return int(status_line.split()[1]), elapsed


def head(path: str, *headers: bytes, method: bytes = b"GET") -> bytes:
    lines = [method + b" " + path.encode() + b" HTTP/1.1", b"Host: localhost", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


BIG_COOKIE = b"Cookie: big=" + b"x" * (64 * 1024)
TEN_MIB = b"a" * (10 * 1024 * 1024)
SERVER_BOUND = 2.0  # seconds; the answers take milliseconds


@pytest.mark.parametrize("path", ["/api/auth/session", "/api/auth/verify", "/healthz"])
def test_a_64_kib_cookie_header_gets_431_from_the_server_quickly(
    server: Authsvc, path: str
) -> None:
    status, elapsed = exchange(server.url, head(path, BIG_COOKIE))
    assert (status, elapsed < SERVER_BOUND) == (431, True)


def test_a_header_sent_slowly_past_the_limit_gets_431(server: Authsvc) -> None:
    status, _ = exchange(server.url, head("/api/auth/session", BIG_COOKIE), pace=4096)
    assert status == 431


def test_very_many_small_headers_get_431(server: Authsvc) -> None:
    many = [b"X-Filler-%d: y" % index for index in range(10_000)]
    status, _ = exchange(server.url, head("/api/auth/session", *many))
    assert status == 431


def test_a_huge_url_gets_431(server: Authsvc) -> None:
    status, _ = exchange(server.url, head("/api/auth/session?" + "q" * 64 * 1024))
    assert status == 431


def test_a_session_sized_cookie_header_is_still_served(server: Authsvc) -> None:
    # Four full 4 KiB chunks of a session cookie plus other cookies: well under 32 KiB.
    cookie = b"Cookie: " + b"; ".join(b"c%d=" % index + b"x" * 4000 for index in range(5))
    status, _ = exchange(server.url, head("/api/auth/session", cookie))
    assert status == 200


def test_the_header_limit_follows_authsvc_max_header_bytes(small_head_server: Authsvc) -> None:
    cookie = b"Cookie: c=" + b"x" * 10_000
    status, _ = exchange(small_head_server.url, head("/api/auth/session", cookie))
    assert status == 431


@pytest.mark.parametrize(
    "path", ["/api/auth/callback/credentials", "/api/auth/session", "/api/auth/signout"]
)
def test_a_10_mib_body_gets_413_from_the_server_quickly(server: Authsvc, path: str) -> None:
    request = head(
        path,
        b"Content-Type: application/x-www-form-urlencoded",
        b"Content-Length: %d" % len(TEN_MIB),
        method=b"POST",
    )
    status, elapsed = exchange(server.url, request, TEN_MIB)
    assert (status, elapsed < SERVER_BOUND) == (413, True)


def test_a_10_mib_chunked_body_gets_413_from_the_server_quickly(server: Authsvc) -> None:
    request = head(
        "/api/auth/callback/credentials",
        b"Content-Type: application/x-www-form-urlencoded",
        b"Transfer-Encoding: chunked",
        method=b"POST",
    )
    chunk = b"a" * (64 * 1024)
    body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(160)) + b"0\r\n\r\n"
    status, elapsed = exchange(server.url, request, body)
    assert (status, elapsed < SERVER_BOUND) == (413, True)


def test_a_10_mib_body_to_verify_is_answered_without_being_read(server: Authsvc) -> None:
    request = head("/api/auth/verify", b"Content-Length: %d" % len(TEN_MIB), method=b"POST")
    status, elapsed = exchange(server.url, request, TEN_MIB)
    assert (status, elapsed < SERVER_BOUND) == (401, True)


def test_a_10_mib_body_to_an_operations_route_is_a_4xx(server: Authsvc) -> None:
    request = head("/readyz", b"Content-Length: %d" % len(TEN_MIB), method=b"POST")
    status, _ = exchange(server.url, request, TEN_MIB)
    assert 400 <= status < 500


# --- slow clients against a real `authsvc serve`: read deadlines and a connection cap ---------
#
# A hostile run found a connection that sent an unfinished head, a body shorter than its
# Content-Length, or an endless chunked body was held 75 s and more with no answer. Each now
# ends within AUTHSVC_HEAD_TIMEOUT / AUTHSVC_BODY_TIMEOUT (408, or a close once an answer
# was sent), and past AUTHSVC_MAX_CONNECTIONS a worker answers 503 at once.

READ_TIMEOUT = 1.0  # the server's head and body deadlines in these tests
READ_BOUND = READ_TIMEOUT + 2.0  # a fault bound: the deadline, plus slack for a busy machine
MAX_CONNECTIONS = 8


@pytest.fixture(scope="module")
def deadline_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authsvc]:
    directory: Path = tmp_path_factory.mktemp("faults-deadlines")
    with run_authsvc(
        directory,
        public_url="http://localhost:3000",
        AUTHSVC_HEAD_TIMEOUT=str(READ_TIMEOUT),
        AUTHSVC_BODY_TIMEOUT=str(READ_TIMEOUT),
        AUTHSVC_KEEPALIVE_TIMEOUT=str(int(READ_TIMEOUT)),
        AUTHSVC_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
    ) as authsvc:
        yield authsvc


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=READ_BOUND + 10)


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and the seconds that took."""
    started = time.perf_counter()
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pytest.fail(f"the server still held the connection after {READ_BOUND + 10} s")
    except ConnectionResetError:
        pass
    return received, time.perf_counter() - started


def status_of(answer: bytes) -> int | None:
    return int(answer.split()[1]) if answer.startswith(b"HTTP/1.1 ") else None


def test_an_unfinished_head_gets_408_within_the_head_timeout(deadline_server: Authsvc) -> None:
    with connect(deadline_server.url) as sock:
        sock.sendall(b"GET /api/auth/session HTTP/1.1\r\nHost: localhost\r\nCookie: a=b")
        answer, elapsed = read_until_closed(sock)
    assert (status_of(answer), elapsed < READ_BOUND) == (408, True)


def test_a_connection_that_sends_nothing_is_closed_within_the_head_timeout(
    deadline_server: Authsvc,
) -> None:
    with connect(deadline_server.url) as sock:
        answer, elapsed = read_until_closed(sock)
    assert status_of(answer) in (408, None)
    assert elapsed < READ_BOUND


def test_a_head_sent_a_byte_at_a_time_cannot_outlast_the_head_timeout(
    deadline_server: Authsvc,
) -> None:
    request = head("/api/auth/session", b"X-Slow: " + b"y" * 200)
    with connect(deadline_server.url) as sock:
        sock.settimeout(0.05)
        started = time.perf_counter()
        answer = b""
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if answer or time.perf_counter() - started > READ_BOUND + 5:
                break
        elapsed = time.perf_counter() - started
    assert (status_of(answer), elapsed < READ_BOUND) == (408, True)


def test_a_body_shorter_than_its_content_length_gets_408_within_the_body_timeout(
    deadline_server: Authsvc,
) -> None:
    request = head(
        "/api/auth/callback/credentials",
        b"Content-Type: application/x-www-form-urlencoded",
        b"Content-Length: 100",
        method=b"POST",
    )
    with connect(deadline_server.url) as sock:
        sock.sendall(request + b"email=a%40b.c&pass")
        answer, elapsed = read_until_closed(sock)
    assert (status_of(answer), elapsed < READ_BOUND) == (408, True)


def send_chunks_until_closed(sock: socket.socket, seconds: float) -> None:
    """An endless chunked body: a small chunk every 50 ms, until the server closes."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            sock.sendall(b"1\r\na\r\n")
            time.sleep(0.05)
    except OSError:
        pass


def endless_chunked(path: str, url: str) -> tuple[bytes, float]:
    request = head(
        path,
        b"Content-Type: application/x-www-form-urlencoded",
        b"Transfer-Encoding: chunked",
        method=b"POST",
    )
    with connect(url) as sock:
        sock.sendall(request)
        sender = threading.Thread(
            target=send_chunks_until_closed, args=(sock, READ_BOUND + 10), daemon=True
        )
        sender.start()
        answer, elapsed = read_until_closed(sock)
        sender.join(READ_BOUND + 11)
    return answer, elapsed


def test_an_endless_chunked_body_that_is_read_gets_408_within_the_body_timeout(
    deadline_server: Authsvc,
) -> None:
    answer, elapsed = endless_chunked("/api/auth/callback/credentials", deadline_server.url)
    assert (status_of(answer), elapsed < READ_BOUND) == (408, True)


def test_an_endless_chunked_body_to_a_route_that_answers_unread_is_cut_off(
    deadline_server: Authsvc,
) -> None:
    # /verify answers without reading the body; the rest must not keep the connection.
    answer, elapsed = endless_chunked("/api/auth/verify", deadline_server.url)
    assert (status_of(answer), elapsed < READ_BOUND) == (401, True)


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
    deadline_server: Authsvc,
) -> None:
    with connect(deadline_server.url) as sock:
        sock.sendall(head("/healthz"))
        answer, elapsed = read_until_closed(sock)
    assert (status_of(answer), elapsed < READ_BOUND) == (200, True)


def test_past_the_connection_cap_a_request_gets_503_and_service_resumes_after(
    deadline_server: Authsvc,
) -> None:
    held = [connect(deadline_server.url) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # heads that never finish
        time.sleep(0.2)
        with connect(deadline_server.url) as sock:
            sock.sendall(head("/healthz", b"Connection: close"))
            refused, _ = read_until_closed(sock)
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    with connect(deadline_server.url) as sock:
        sock.sendall(head("/healthz", b"Connection: close"))
        served, _ = read_until_closed(sock)
    assert (status_of(refused), status_of(served)) == (503, 200)


def test_the_connection_cap_outlives_no_slow_client(deadline_server: Authsvc) -> None:
    # Slow heads that are never closed by the client are closed by the head deadline,
    # so the cap frees itself.
    held = [connect(deadline_server.url) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        time.sleep(READ_BOUND)
        with connect(deadline_server.url) as sock:
            sock.sendall(head("/healthz", b"Connection: close"))
            served, _ = read_until_closed(sock)
    finally:
        for sock in held:
            sock.close()
    assert status_of(served) == 200
