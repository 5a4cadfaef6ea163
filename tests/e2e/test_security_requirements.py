"""The security requirements (docs/security.md, R1-R37) that no other module proves.

docs/security.md maps each of R1-R37 to its tests; most live beside the code they test
(test_tokens, test_cookies, test_routes_forward_auth, ...). This module holds the rest: the
requirements checked end to end over HTTP, and oauth2-proxy's 559 hostile redirect
targets against every place that takes a callback URL besides the `callbackUrl` query
and the sign-out body (those two are in test_redirects.py).

The service runs in-process on a migrated SQLite file. Password hashing uses cheap
Argon2id parameters (the cost is not what these tests are about) except in the timing
test, and the sign-in throttle is set out of reach so that a corpus of ~800 sign-ins can
run; test_throttle.py tests the throttle itself.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import gc
import hashlib
import ipaddress
import json
import logging
import os
import re
import shutil
import ssl
import statistics
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import argon2
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from sqlalchemy import event, update
from starlette.types import Message

from authsvc.app import AuthService, create_app
from authsvc.callbacks import JwtParams, SessionParams
from authsvc.cookies import encode_value
from authsvc.deps import (
    get_jwt_callback,
    get_password_hasher,
    get_redirect_callback,
    get_session_callback,
    get_sign_in_callback,
    get_throttle,
    get_user_repository,
)
from authsvc.migrations import upgrade
from authsvc.outbound import ProviderError, get_json, make_client
from authsvc.tokens import HEADER_SEGMENT, TokenCodec, derive_key
from authsvc.users.models import Role, User
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import UserRecord
from tests.conftest import BASE, SECRET, make_settings
from tests.unit.test_redirects import CORPUS, stays_home

SESSION = "next-auth.session-token"
CSRF_COOKIE = "next-auth.csrf-token"
CALLBACK_COOKIE = "next-auth.callback-url"
VERIFY = "/api/auth/verify"
NO_STORE_PATHS = [VERIFY, "/api/auth/session", "/api/auth/csrf", "/api/auth/signin"]
PASSWORD = "correct-horse-battery"
EMAIL = "ana@example.com"
CODEC = TokenCodec([SECRET])
IDENTITY = {"sub": "u1", "id": "u1", "email": EMAIL, "role": "ADMIN", "name": "Ana"}
# The base64url of `{"alg":"dir","enc":"A256GCM"}`: every next-auth session token starts so.
TOKEN_MARK = "eyJhbGciOiJkaXIi"
# Generous limits: the corpus tests sign in hundreds of times from one address.
UNTHROTTLED = {"rate_limit_account": "100000/hour", "rate_limit_address": "100000/hour"}
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# A GitHub provider whose endpoints are answered in-process (see `github_api`).
GITHUB = "http://127.0.0.1:9"
GITHUB_SETTINGS = {
    "github": {
        "client_id": "github-client",
        "client_secret": "github-client-secret-0123456789",
        "authorization_url": f"{GITHUB}/login/oauth/authorize",
        "token_url": f"{GITHUB}/login/oauth/access_token",
        "api_url": GITHUB,
    }
}


# --- the service ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating each time is slower)."""
    path = tmp_path_factory.mktemp("security-requirements") / "authsvc.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="module")
def cheap_hasher() -> PasswordHasher:
    return PasswordHasher(argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def github_api(request: httpx.Request) -> httpx.Response:
    """GitHub's token, user and emails endpoints, as far as authsvc uses them."""
    if request.url.path == "/login/oauth/access_token":
        return httpx.Response(200, json={"access_token": "gho_test", "token_type": "bearer"})
    if request.url.path == "/user":
        return httpx.Response(200, json={"id": 4242, "login": "octo", "name": "Octo"})
    if request.url.path == "/user/emails":
        emails = [{"email": "octo@example.com", "primary": True, "verified": True}]
        return httpx.Response(200, json=emails)
    return httpx.Response(404, json={"message": "Not Found"})


Launch = Callable[..., Awaitable[AuthService]]


def unsynchronised(connection: Any, _: object) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous = OFF")
    cursor.close()


@pytest.fixture
async def launch(
    template_db: Path, tmp_path: Path, cheap_hasher: PasswordHasher
) -> AsyncIterator[Launch]:
    """Start authsvc with extra settings: `await launch(**settings)`."""
    apps: list[AuthService] = []

    async def start(hasher: PasswordHasher = cheap_hasher, **overrides: Any) -> AuthService:
        path = tmp_path / f"authsvc-{len(apps)}.db"
        shutil.copy(template_db, path)
        settings = make_settings(database_url=f"sqlite+aiosqlite:///{path}", **overrides)
        github = httpx.AsyncClient(transport=httpx.MockTransport(github_api))
        app = create_app(settings, hasher=hasher, http=github)
        # A throw-away database: skip the fsyncs (the corpus tests write ~1600 times).
        event.listen(app.services.database.engine.sync_engine, "connect", unsynchronised)
        apps.append(app)
        return app

    yield start
    for app in apps:
        await app.services.http.aclose()
        await app.services.database.dispose()


@pytest.fixture
async def app(launch: Launch) -> AuthService:
    return await launch(**UNTHROTTLED, **GITHUB_SETTINGS)


def browser(app: AuthService, base_url: str = BASE) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@pytest.fixture
async def client(app: AuthService) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(app) as http:
        yield http


async def add_user(app: AuthService, *, name: str | None = "Ana") -> UserRecord:
    user: UserRecord = await app.services.users.create(
        email=EMAIL,
        name=name,
        password_hash=await app.services.hasher.hash(PASSWORD),
        role=Role.ADMIN,
    )
    return user


@pytest.fixture
async def ana(app: AuthService) -> UserRecord:
    return await add_user(app)


def csrf_pair(token: str = "a" * 64) -> tuple[str, str]:
    """A CSRF token and its cookie value, as authsvc mints them (token|sha256(token+secret))."""
    digest = hashlib.sha256((token + SECRET).encode()).hexdigest()
    return token, f"{token}|{digest}"


def cookie_header(**cookies: str) -> dict[str, str]:
    """A Cookie header with the values encoded as a browser sends what authsvc set."""
    names = {"session": SESSION, "csrf": CSRF_COOKIE, "callback": CALLBACK_COOKIE}
    return {"cookie": "; ".join(f"{names[k]}={encode_value(v)}" for k, v in cookies.items())}


async def csrf_token(client: httpx.AsyncClient) -> str:
    token: str = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    return token


async def sign_in(
    client: httpx.AsyncClient, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    form = {"email": EMAIL, "password": password, "csrfToken": await csrf_token(client), **extra}
    return await client.post("/api/auth/callback/credentials", data=form)


def session_token(response: httpx.Response) -> str:
    values = [
        c.split(";")[0].split("=", 1)[1]
        for c in response.headers.get_list("set-cookie")
        if c.startswith(SESSION)
    ]
    return "".join(values)


@dataclass(slots=True)
class Answer:
    path: str
    status: int
    body: bytes
    elapsed: float


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def protected(header: dict[str, str]) -> str:
    return b64(json.dumps(header, separators=(",", ":")).encode())


def sealed(payload: dict[str, Any], header: dict[str, str]) -> str:
    """A JWE under the session key with any protected header (what next-auth never writes)."""
    nonce = os.urandom(12)
    data = AESGCM(derive_key(SECRET)).encrypt(
        nonce, json.dumps(payload).encode(), protected(header).encode()
    )
    return f"{protected(header)}..{b64(nonce)}.{b64(data[:-16])}.{b64(data[-16:])}"


def swapped(payload: dict[str, Any], header: dict[str, str]) -> str:
    """A genuine session token with its header replaced: it decrypts fine unless the header
    is checked first, since authsvc's cipher authenticates next-auth's header, not this one."""
    _, *rest = CODEC.encode(payload, 600).split(".")
    return ".".join([protected(header), *rest])


@pytest.mark.parametrize("make", [sealed, swapped])
@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "enc": "A256GCM"},
        {"alg": "HS256", "enc": "A256GCM"},
        {"alg": "A256KW", "enc": "A256GCM"},
        {"alg": "RSA-OAEP", "enc": "A256GCM"},
        {"alg": "PBES2-HS256+A128KW", "enc": "A256GCM"},
        {"alg": "dir", "enc": "A128GCM"},
        {"alg": "dir", "enc": "A256CBC-HS512"},
        {"alg": "dir", "enc": "A256GCM", "zip": "DEF"},
    ],
    ids=lambda header: "+".join(f"{k}={v}" for k, v in header.items()),
)
async def test_a_cookie_with_any_other_algorithm_or_compression_is_401_never_500(
    client: httpx.AsyncClient, header: dict[str, str], make: Callable[..., str]
) -> None:
    """R1, R3: a JWE under the right key with another alg/enc, or `zip`, is no session, and
    neither is a real session cookie whose header was swapped for one of those."""
    token = make({**IDENTITY, "exp": int(time.time()) + 600}, header)
    assert (await client.get(VERIFY, headers=cookie_header(session=token))).status_code == 401
    response = await client.get("/api/auth/session", headers=cookie_header(session=token))
    assert (response.status_code, response.json()) == (200, {})


@pytest.mark.parametrize("make", [sealed, swapped])
def test_the_crafted_tokens_would_pass_with_the_real_header(make: Callable[..., str]) -> None:
    """R1 (control): the crafted tokens above fail for their header, not for how they are made."""
    header = json.loads(base64.urlsafe_b64decode(HEADER_SEGMENT + "=="))
    token = make({**IDENTITY, "exp": int(time.time()) + 600}, header)
    assert token.startswith(HEADER_SEGMENT + "..") and CODEC.decode(token) is not None


async def huge_cookie_requests(client: httpx.AsyncClient, count: int) -> list[Answer]:
    """GET /verify and /session `count` times each with a 300 KiB session cookie; only
    the status, body and time are kept (a response holds its request, cookie included)."""
    cookie = {"cookie": f"{SESSION}={'A' * 300 * 1024}"}
    answers = []
    for path in [VERIFY, "/api/auth/session"] * count:
        started = time.perf_counter()
        response = await client.get(path, headers=cookie)
        elapsed = time.perf_counter() - started
        answers.append(Answer(path, response.status_code, response.content, elapsed))
    return answers


async def test_a_300_kib_cookie_is_refused_quickly(client: httpx.AsyncClient) -> None:
    """R3: a 300 KiB session cookie is a 401 (verify) or `{}` (session), in under 50 ms."""
    await huge_cookie_requests(client, 1)  # warm up imports and caches
    answers = await huge_cookie_requests(client, 5)
    for answer in answers:
        if answer.path == VERIFY:
            assert answer.status == 401
        else:
            assert (answer.status, answer.body) == (200, b"{}")
    assert statistics.median(answer.elapsed for answer in answers) < 0.05


async def call_asgi(app: AuthService, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """One GET straight into the ASGI app (no client objects to keep memory alive)."""
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost:3000"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 3000),
    }
    await app(scope, receive, send)
    return status


async def test_300_kib_cookies_leave_memory_bounded(app: AuthService) -> None:
    """R3: a hundred 300 KiB cookies keep no memory and never need more than a few copies."""
    headers = [(b"cookie", f"{SESSION}={'A' * 300 * 1024}".encode())]
    paths = [VERIFY, "/api/auth/session"]
    for path in paths:  # warm up imports and caches
        await call_asgi(app, path, headers)
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        statuses = {await call_asgi(app, path, headers) for _ in range(50) for path in paths}
        gc.collect()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert statuses == {200, 401}
    assert after - before < 64 * 1024
    assert peak - before < 2 * 1024 * 1024


# --- R5: the 15-second clock tolerance, over HTTP -------------------------------------------


async def test_a_token_expired_ten_seconds_ago_is_still_accepted(client: httpx.AsyncClient) -> None:
    """R5: next-auth's clockTolerance of 15 s; 10 s after `exp` is still a session."""
    token = CODEC.encode(IDENTITY, 60, now=time.time() - 70)
    assert (await client.get(VERIFY, headers=cookie_header(session=token))).status_code == 200


async def test_a_token_expired_sixteen_seconds_ago_is_refused(client: httpx.AsyncClient) -> None:
    """R5: past `exp` plus the 15 s tolerance the token is refused."""
    token = CODEC.encode(IDENTITY, 60, now=time.time() - 76)
    assert (await client.get(VERIFY, headers=cookie_header(session=token))).status_code == 401


# --- R7: claims are untrusted input ---------------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        {"role": ["ADMIN"]},
        {"role": "ADMIN\r\nX-Evil: 1"},
        {"role": {"$ne": 1}},
        {"role": "root"},
        {"email": "ana@example.com\r\nX-Evil: 1"},
        {"email": ["ana@example.com"]},
        {"sub": "u1\r\nX-Evil: 1"},
        {"email": "a" * 400 + "@example.com"},
    ],
    ids=[
        "role list",
        "role crlf",
        "role object",
        "unknown role",
        "email crlf",
        "email list",
        "sub crlf",
        "long email",
    ],
)
async def test_a_validly_sealed_token_with_hostile_claims_is_401_without_header_injection(
    client: httpx.AsyncClient, claims: dict[str, Any]
) -> None:
    """R7, R37: authentic claims of the wrong type or with CR/LF never reach a header."""
    token = CODEC.encode({**IDENTITY, **claims}, 600)
    response = await client.get(VERIFY, headers=cookie_header(session=token))
    assert response.status_code == 401
    assert "x-evil" not in response.headers
    assert not any(name.lower().startswith("x-auth-request") for name in response.headers)


# --- R11: the cookies of an https deployment --------------------------------------------------


def attributes(set_cookie: str) -> dict[str, str]:
    _, *parts = set_cookie.split("; ")
    return {key.lower(): value for key, _, value in (part.partition("=") for part in parts)}


async def test_an_https_sign_in_sets_secure_http_only_lax_cookies_for_thirty_days(
    launch: Launch,
) -> None:
    """R11: `__Secure-` session cookie: HttpOnly, Secure, SameSite=Lax, Path=/, Expires in 30
    days (next-auth sets Expires, not Max-Age); `__Host-` CSRF cookie without Domain.
    `__Host-` for the session cookie is the documented deviation (next-auth compatibility)."""
    app = await launch(url="https://shop.example.com", **UNTHROTTLED)
    await add_user(app)
    async with browser(app, "https://shop.example.com") as client:
        csrf = await client.get("/api/auth/csrf")
        response = await sign_in(client)
    [csrf_cookie] = [c for c in csrf.headers.get_list("set-cookie") if "csrf-token" in c]
    assert csrf_cookie.startswith("__Host-next-auth.csrf-token=")
    assert attributes(csrf_cookie) == {"path": "/", "httponly": "", "secure": "", "samesite": "Lax"}
    [session] = [c for c in response.headers.get_list("set-cookie") if "session-token" in c]
    assert session.startswith("__Secure-next-auth.session-token=")
    attrs = attributes(session)
    assert {k: attrs[k] for k in ("path", "httponly", "secure", "samesite")} == {
        "path": "/",
        "httponly": "",
        "secure": "",
        "samesite": "Lax",
    }
    expires = time.mktime(time.strptime(attrs["expires"], "%a, %d %b %Y %H:%M:%S GMT"))
    assert abs(expires - time.timezone - (time.time() + 30 * 86400)) < 60
    assert "domain" not in attrs


# --- R14/R16: the documented trade-offs of self-contained tokens ----------------------------


async def test_without_revocation_a_cookie_copied_before_sign_out_works_until_it_expires(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    """R14 (default mode, documented trade-off): sign-out clears the browser's cookies, but
    a copy taken before keeps working until `exp`; AUTHSVC_REVOCATION=true ends it
    (tests/unit/test_revocation.py)."""
    await sign_in(client)
    stolen = client.cookies[SESSION]
    await client.post("/api/auth/signout", data={"csrfToken": await csrf_token(client)})
    assert (await client.get("/api/auth/session")).json() == {}
    replay = await client.get(VERIFY, headers=cookie_header(session=stolen))
    assert replay.status_code == 200


async def test_each_refresh_extends_the_session_thirty_days_but_keeps_its_sign_in_time(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    """R16: the lifetime is 30 days from the last use, as next-auth's (a sliding expiry);
    `authTime`, the sign-in time, survives every refresh, and revocation mode reads it."""
    first = CODEC.decode(session_token(await sign_in(client)))
    refreshed = CODEC.decode(session_token(await client.get("/api/auth/session")))
    assert first is not None and refreshed is not None
    assert refreshed["exp"] - refreshed["iat"] == 30 * 86400
    assert refreshed["authTime"] == first["authTime"]
    assert refreshed["jti"] != first["jti"]


# --- R17: no token, secret or password in the logs or URLs ------------------------------------


async def test_a_whole_session_logged_at_debug_holds_no_token_secret_or_password(
    client: httpx.AsyncClient, ana: UserRecord, caplog: pytest.LogCaptureFixture
) -> None:
    """R17: sign-in, session, update, verify (cookie and bearer), sign-out, and the failures
    on the way, with every logger at DEBUG: no token, secret or password is written, and
    no URL the service sends carries a token."""
    caplog.set_level(logging.DEBUG)
    responses = [await sign_in(client, password="wrong-password"), await sign_in(client)]
    token = client.cookies[SESSION]
    responses += [
        await client.get("/api/auth/session"),
        await client.post("/api/auth/session", json={"csrfToken": await csrf_token(client)}),
        await client.get(VERIFY),
        await client.get(VERIFY, params={"allowed_roles": "STAFF"}),
        await client.get(VERIFY, headers={"authorization": f"Bearer {token}", "cookie": ""}),
        await client.get(VERIFY, headers=cookie_header(session=token[:-8] + "AAAAAAAA")),
        await client.get("/api/auth/session", headers=cookie_header(session="garbage")),
        await client.post("/api/auth/signout", data={"csrfToken": await csrf_token(client)}),
    ]
    assert [r.status_code for r in responses] == [302, 302, 200, 200, 200, 403, 200, 401, 200, 302]
    assert any(record.name.startswith("authsvc.") for record in caplog.records)
    assert TOKEN_MARK not in caplog.text and token not in caplog.text
    assert SECRET not in caplog.text and PASSWORD not in caplog.text
    for response in responses:
        assert TOKEN_MARK not in response.headers.get("location", "")


# --- R18: CSRF on every state change; GET changes nothing ------------------------------------


async def test_an_oauth_sign_in_without_the_csrf_token_never_reaches_the_provider(
    client: httpx.AsyncClient,
) -> None:
    """R18: POST /signin/{provider} without a CSRF token goes back to the sign-in page, with
    no check cookie set."""
    response = await client.post("/api/auth/signin/github", data={"callbackUrl": "/x"})
    assert response.headers["location"] == f"{BASE}/api/auth/signin?csrf=true"
    names = [c.split("=", 1)[0] for c in response.headers.get_list("set-cookie")]
    assert not [name for name in names if name.endswith(("state", "code_verifier", "nonce"))]


async def test_a_get_to_the_sign_out_page_leaves_the_session_in_place(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    """R18: GET never changes state: the sign-out page only shows a form."""
    await sign_in(client)
    page = await client.get("/api/auth/signout")
    assert page.status_code == 200
    assert not [c for c in page.headers.get_list("set-cookie") if c.startswith(SESSION)]
    assert (await client.get("/api/auth/session")).json()["user"]["email"] == EMAIL


# --- R24: Host and X-Forwarded-Host never decide a URL ----------------------------------------

SPOOFED = {"host": "evil.example", "x-forwarded-host": "evil.example", "x-forwarded-proto": "https"}


async def test_a_spoofed_host_never_moves_a_credentials_sign_in_redirect(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    """R24: success and failure redirects of the credentials sign-in stay on NEXTAUTH_URL."""
    token, cookie = csrf_pair()
    form = {"email": EMAIL, "csrfToken": token, "callbackUrl": "/account"}
    headers = {**SPOOFED, **cookie_header(csrf=cookie)}
    ok = await client.post(
        "/api/auth/callback/credentials", data={**form, "password": PASSWORD}, headers=headers
    )
    failed = await client.post(
        "/api/auth/callback/credentials", data={**form, "password": "nope-nope"}, headers=headers
    )
    assert ok.headers["location"] == f"{BASE}/account"
    assert failed.headers["location"].startswith(f"{BASE}/api/auth/error?")


async def test_a_spoofed_host_never_moves_the_sign_out_or_page_redirects(
    client: httpx.AsyncClient,
) -> None:
    """R24: sign-out, the error page's redirect and the stored callback URL ignore the Host."""
    token, cookie = csrf_pair()
    headers = {**SPOOFED, **cookie_header(csrf=cookie)}
    signout = await client.post("/api/auth/signout", data={"csrfToken": token}, headers=headers)
    error = await client.get("/api/auth/error", params={"error": "OAuthSignin"}, headers=SPOOFED)
    assert signout.headers["location"] == BASE
    assert error.headers["location"].startswith(f"{BASE}/api/auth/signin?")
    stored = [c for c in signout.headers.get_list("set-cookie") if c.startswith(CALLBACK_COOKIE)]
    assert all(unquote(c.split(";")[0].split("=", 1)[1]) == BASE for c in stored)


# --- R25: the provider client verifies TLS ----------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no trust store knows, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def untrusted_https(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """An HTTPS endpoint on loopback answering `{"ok":true}`, with a self-signed certificate."""
    cert_path, key_path = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            body = b'{"ok":true}'
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            )
            writer.write(head.encode() + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    yield f"https://127.0.0.1:{port}/userinfo", cert_path
    server.close()
    await server.wait_closed()


async def test_the_provider_client_refuses_a_certificate_it_cannot_verify(
    untrusted_https: tuple[str, Path],
) -> None:
    """R25: TLS verification is on for every provider call (a self-signed certificate fails);
    the control shows the endpoint works for a client that trusts it."""
    url, cert_path = untrusted_https
    trusting = ssl.create_default_context(cafile=str(cert_path))
    async with make_client(2.0, transport=httpx.AsyncHTTPTransport(verify=trusting)) as client:
        assert await get_json(client, url) == {"ok": True}
    async with make_client(2.0) as client:
        with pytest.raises(ProviderError, match="ConnectError"):
            await get_json(client, url)


# --- R27: the 559 hostile targets at every other place that takes a callback URL -------------


async def test_every_corpus_target_posted_to_the_credentials_callback_lands_home(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    """R27: `callbackUrl` in the credentials sign-in body: the success redirect stays home."""
    token, cookie = csrf_pair()
    for target in CORPUS:
        client.cookies.clear()
        response = await client.post(
            "/api/auth/callback/credentials",
            data={"email": EMAIL, "password": PASSWORD, "csrfToken": token, "callbackUrl": target},
            headers=cookie_header(csrf=cookie),
        )
        assert response.status_code == 302, target
        assert session_token(response), target
        assert stays_home(response.headers["location"]), target


async def test_every_corpus_target_posted_as_json_to_the_credentials_callback_lands_home(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    """R27: the same through next-auth/react's JSON mode: the `url` it answers stays home."""
    token, cookie = csrf_pair()
    for target in CORPUS:
        client.cookies.clear()
        body = {
            "email": EMAIL,
            "password": PASSWORD,
            "csrfToken": token,
            "callbackUrl": target,
            "json": "true",
        }
        response = await client.post(
            "/api/auth/callback/credentials", json=body, headers=cookie_header(csrf=cookie)
        )
        assert response.status_code == 200, target
        assert stays_home(response.json()["url"]), target


async def test_every_corpus_target_in_the_callback_url_cookie_is_ignored_by_sign_in(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    """R27: the `next-auth.callback-url` cookie (read when the body has no callbackUrl)."""
    token, cookie = csrf_pair()
    for target in CORPUS:
        client.cookies.clear()
        response = await client.post(
            "/api/auth/callback/credentials",
            data={"email": EMAIL, "password": PASSWORD, "csrfToken": token},
            headers=cookie_header(csrf=cookie, callback=target),
        )
        assert response.status_code == 302, target
        assert stays_home(response.headers["location"]), target


async def test_every_corpus_target_in_the_callback_url_cookie_is_ignored_by_sign_out(
    client: httpx.AsyncClient,
) -> None:
    """R27: the callback-url cookie on POST /signout without a body callbackUrl."""
    token, cookie = csrf_pair()
    for target in CORPUS:
        client.cookies.clear()
        response = await client.post(
            "/api/auth/signout",
            data={"csrfToken": token},
            headers=cookie_header(csrf=cookie, callback=target),
        )
        assert response.status_code == 302, target
        assert stays_home(response.headers["location"]), target


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


async def oauth_dance(
    client: httpx.AsyncClient, body: dict[str, str], callback_cookie: str | None = None
) -> tuple[httpx.Response, httpx.Response]:
    """POST /signin/github, then the provider's redirect back to the callback.

    `callback_cookie` replaces the callback-url cookie before the callback (a cookie set by
    an attacker, e.g. from a sibling subdomain).
    """
    token, cookie = csrf_pair()
    client.cookies.clear()
    start = await client.post(
        "/api/auth/signin/github",
        data={"csrfToken": token, **body},
        headers=cookie_header(csrf=cookie),
    )
    if callback_cookie is not None:
        client.cookies.set(CALLBACK_COOKIE, encode_value(callback_cookie))
    state = query_of(start.headers["location"]).get("state", "")
    back = await client.get("/api/auth/callback/github", params={"code": "c0de", "state": state})
    return start, back


async def test_the_github_dance_signs_in_and_lands_on_the_callback_url(
    client: httpx.AsyncClient,
) -> None:
    """R27 (control): the in-process provider completes a sign-in, so a redirect home in
    the corpus tests below is the rule at work, not a failed sign-in."""
    start, back = await oauth_dance(client, {"callbackUrl": "/orders"})
    assert start.headers["location"].startswith(f"{GITHUB}/login/oauth/authorize?")
    assert back.headers["location"] == f"{BASE}/orders"
    claims = CODEC.decode(session_token(back))
    assert claims is not None and claims["email"] == "octo@example.com"


async def test_every_corpus_target_posted_to_an_oauth_sign_in_lands_home_after_the_dance(
    client: httpx.AsyncClient,
) -> None:
    """R27: `callbackUrl` in the body of POST /signin/{provider}: the provider is the only
    place it sends the browser, and the callback's redirect after sign-in stays home."""
    for target in CORPUS:
        start, back = await oauth_dance(client, {"callbackUrl": target})
        assert start.headers["location"].startswith(f"{GITHUB}/login/oauth/authorize?"), target
        assert session_token(back), target
        assert stays_home(back.headers["location"]), target


async def test_every_corpus_target_in_the_callback_url_cookie_is_ignored_by_the_oauth_callback(
    client: httpx.AsyncClient,
) -> None:
    """R27: a hostile callback-url cookie planted between sign-in start and the callback."""
    for target in CORPUS:
        _, back = await oauth_dance(client, {}, callback_cookie=target)
        assert session_token(back), target
        assert stays_home(back.headers["location"]), target


# --- R29: unknown account and wrong password take the same time ------------------------------


async def test_unknown_account_and_wrong_password_take_about_the_same_time(
    launch: Launch, hasher: PasswordHasher
) -> None:
    """R29: with the real Argon2id cost, median latencies differ by less than 20 %."""
    app = await launch(hasher=hasher, **UNTHROTTLED)
    await add_user(app)
    token, cookie = csrf_pair()
    timings: dict[str, list[float]] = {"unknown": [], "wrong": []}
    async with browser(app) as client:
        for _ in range(10):
            for kind, email in (("unknown", "nobody@example.com"), ("wrong", EMAIL)):
                form = {"email": email, "password": "wrong-password", "csrfToken": token}
                started = time.perf_counter()
                response = await client.post(
                    "/api/auth/callback/credentials", data=form, headers=cookie_header(csrf=cookie)
                )
                timings[kind].append(time.perf_counter() - started)
                assert response.status_code == 302
    unknown, wrong = (statistics.median(timings[kind]) for kind in ("unknown", "wrong"))
    assert abs(unknown - wrong) < 0.2 * max(unknown, wrong)


# --- R32: a failure anywhere is a bare 500, or for a callback a clean refusal ----------------


class Boom(RuntimeError):
    def __init__(self) -> None:
        token = CODEC.encode(IDENTITY, 600)
        super().__init__(f"boom {SECRET} {PASSWORD} {token}\nTraceback (most recent call last):")


class FailingParts:
    """Stands in for a repository, hasher, throttle or callback: every use raises Boom."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise Boom

        return fail

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise Boom


def failing_redirect(url: str, base_url: str) -> str:
    raise Boom


FAILURES: dict[str, tuple[Callable[..., Any], Any]] = {
    "user repository": (get_user_repository, FailingParts()),
    "password hasher": (get_password_hasher, FailingParts()),
    "sign-in throttle": (get_throttle, FailingParts()),
}
# A failing callback fails closed with next-auth's answer: (where the browser is sent, whether
# a session cookie is set, what the log says).
CALLBACK_FAILURES: dict[str, tuple[Callable[..., Any], Any, str, bool, str]] = {
    "signIn callback": (
        get_sign_in_callback,
        FailingParts(),
        f"{BASE}/api/auth/error?error=AccessDenied",
        False,
        "signIn callback failed, sign-in refused: Boom",
    ),
    "jwt callback": (
        get_jwt_callback,
        FailingParts(),
        f"{BASE}/api/auth/error?error=Configuration",
        False,
        "jwt callback failed: Boom",
    ),
    "redirect callback": (
        get_redirect_callback,
        failing_redirect,
        BASE,
        True,
        "redirect callback failed, using the base URL: Boom",
    ),
}


async def post_sign_in(client: httpx.AsyncClient) -> httpx.Response:
    token, cookie = csrf_pair()
    form = {"email": EMAIL, "password": PASSWORD, "csrfToken": token, "callbackUrl": "/orders"}
    return await client.post(
        "/api/auth/callback/credentials", data=form, headers=cookie_header(csrf=cookie)
    )


@pytest.mark.parametrize("part", list(FAILURES))
async def test_an_exception_in_any_part_of_sign_in_is_a_bare_500_that_leaks_nothing(
    app: AuthService, ana: UserRecord, caplog: pytest.LogCaptureFixture, part: str
) -> None:
    """R32: the body is `{"message":"internal error"}`: no traceback, secret, password or
    token; the log names the exception type only."""
    dependency, failing = FAILURES[part]
    app.dependency_overrides[dependency] = lambda: failing
    async with browser(app) as client:
        response = await post_sign_in(client)
    assert (response.status_code, response.json()) == (500, {"message": "internal error"})
    assert "Boom" in caplog.text
    for leak in ("Traceback", SECRET, PASSWORD, TOKEN_MARK):
        assert leak not in caplog.text
        assert leak not in response.text


@pytest.mark.parametrize("callback", list(CALLBACK_FAILURES))
async def test_an_exception_in_a_sign_in_callback_fails_closed_and_leaks_nothing(
    app: AuthService, ana: UserRecord, caplog: pytest.LogCaptureFixture, callback: str
) -> None:
    """R32: a callback's exception is the application's bug, not the client's: the sign-in
    is refused (or, for the redirect callback, sent to the base URL) with next-auth's answer,
    and one log line names the callback and the exception type only."""
    dependency, failing, location, signed_in, logged = CALLBACK_FAILURES[callback]
    app.dependency_overrides[dependency] = lambda: failing
    async with browser(app) as client:
        response = await post_sign_in(client)
    assert (response.status_code, response.headers["location"]) == (302, location)
    session_set = any(c.startswith(SESSION) for c in response.headers.get_list("set-cookie"))
    assert session_set is signed_in
    assert [r.getMessage() for r in caplog.records if r.name == "authsvc.callbacks"] == [logged]
    for leak in ("Traceback", SECRET, PASSWORD, TOKEN_MARK):
        assert leak not in caplog.text
        assert leak not in response.text


async def test_an_exception_in_the_session_callback_is_no_session_and_leaks_nothing(
    app: AuthService, caplog: pytest.LogCaptureFixture
) -> None:
    """R32: the same for the session read path: `{}`, the cookie kept, nothing leaked."""

    async def broken(params: SessionParams) -> dict[str, Any]:
        raise Boom

    app.dependency_overrides[get_session_callback] = lambda: broken
    token = CODEC.encode(IDENTITY, 600)
    async with browser(app) as client:
        response = await client.get("/api/auth/session", headers=cookie_header(session=token))
    assert (response.status_code, response.json()) == (200, {})
    assert "session callback failed: Boom" in caplog.text
    for leak in ("Traceback", SECRET, PASSWORD, TOKEN_MARK):
        assert leak not in caplog.text
        assert leak not in response.text


# --- R34: no cache may keep an auth answer --------------------------------------------------


@pytest.mark.parametrize("path", NO_STORE_PATHS)
async def test_auth_answers_to_a_signed_in_browser_are_never_stored(
    client: httpx.AsyncClient, path: str
) -> None:
    """R34: `Cache-Control: no-store` on /verify, /session, /csrf and /signin."""
    response = await client.get(path, headers=cookie_header(session=CODEC.encode(IDENTITY, 600)))
    assert response.status_code == 200
    assert "no-store" in response.headers["cache-control"]


@pytest.mark.parametrize("path", NO_STORE_PATHS)
async def test_auth_answers_to_a_signed_out_browser_are_never_stored(
    client: httpx.AsyncClient, path: str
) -> None:
    """R34: the same without a session (a cached "no" is as wrong as a cached "yes")."""
    response = await client.get(path)
    assert "no-store" in response.headers["cache-control"]


# --- R37: no CR, LF or NUL from the database reaches a header or cookie ------------------------


async def test_a_stored_name_with_line_breaks_never_splits_a_header_or_cookie(
    app: AuthService, client: httpx.AsyncClient, ana: UserRecord
) -> None:
    """R37: a name in the database with CR, LF and NUL travels into the token at sign-in;
    /verify sends it without them, and every Set-Cookie stays one clean line."""
    hostile = "Ana\r\nX-Evil: 1\x00"
    async with app.services.database.engine.begin() as conn:
        await conn.execute(update(User).where(User.id == ana.id).values(name=hostile))
    signed_in = await sign_in(client)
    verify = await client.get(VERIFY)
    session = await client.get("/api/auth/session")
    assert verify.status_code == 200
    assert verify.headers["x-auth-request-name"] == "AnaX-Evil: 1"
    assert "x-evil" not in verify.headers
    assert session.json()["user"]["name"] == hostile
    for response in (signed_in, verify, session):
        for name, value in response.headers.raw:
            assert not CONTROL.search(value.decode("latin-1")), name


async def test_a_jwt_callback_putting_line_breaks_in_the_token_cannot_split_a_cookie(
    app: AuthService, client: httpx.AsyncClient, ana: UserRecord
) -> None:
    """R37: whatever an application's jwt callback adds, the cookie value is encoded."""

    async def jwt(params: JwtParams) -> dict[str, Any]:
        return {**params.token, "note": "a\r\nSet-Cookie: evil=1\x00"}

    app.dependency_overrides[get_jwt_callback] = lambda: jwt
    response = await sign_in(client)
    cookies = response.headers.get_list("set-cookie")
    assert cookies and not any(CONTROL.search(cookie) for cookie in cookies)
    assert not any(cookie.startswith("evil=") for cookie in cookies)


def test_the_corpus_is_every_line_of_the_oauth2_proxy_list() -> None:
    """R27: the corpus these tests use has all 559 lines (raw and URL-decoded)."""
    assert len(CORPUS) > 559
