"""The /api/auth routes over HTTP, as an unchanged next-auth/react client sees them."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote

import argon2
import bcrypt
import httpx
import pytest

from authsvc.app import AuthService, create_app
from authsvc.callbacks import JwtParams, SessionParams
from authsvc.deps import get_jwt_callback, get_session_callback
from authsvc.settings import ConfigError, Settings
from authsvc.tokens import TokenCodec
from authsvc.users.models import Role
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import UserRecord
from tests.conftest import (
    BASE,
    MAX_SET_COOKIE_BYTES,
    OTHER_SECRET,
    SECRET,
    StatementCounter,
    app_client,
    make_settings,
)
from tests.unit.users.test_passwords import Argon2Spy

SESSION = "next-auth.session-token"
PASSWORD = "correct-horse-battery"
NO_STORE = {"cache-control": "private, no-cache, no-store", "pragma": "no-cache", "expires": "0"}
CODEC = TokenCodec([SECRET])
CHUNK = 3933  # next-auth v4's SessionStore chunk size, restated here on purpose


@pytest.fixture
async def ana(app: AuthService) -> UserRecord:
    user: UserRecord = await app.services.users.create(
        email="ana@example.com",
        name="Ana",
        password_hash=await app.services.hasher.hash(PASSWORD),
        role=Role.ADMIN,
        image="https://example.com/a.png",
        fundraiser_id="fr_1",
    )
    return user


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def session_token_from(response: httpx.Response) -> str:
    values = [c.split(";")[0] for c in set_cookies(response) if c.startswith(SESSION)]
    return "".join(v.split("=", 1)[1] for v in values if v.split("=", 1)[1])


async def csrf_token(client: httpx.AsyncClient) -> str:
    token: str = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    return token


async def sign_in(
    client: httpx.AsyncClient,
    email: str = "ana@example.com",
    password: str = PASSWORD,
    **extra: str,
) -> httpx.Response:
    form = {"email": email, "password": password, "csrfToken": await csrf_token(client), **extra}
    return await client.post("/api/auth/callback/credentials", data=form)


def cookie_header(token: str, name: str = SESSION) -> dict[str, str]:
    return {"cookie": f"{name}={token}"}


# --- providers, csrf ------------------------------------------------------------------


async def test_providers_lists_credentials_with_absolute_urls(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/providers")
    assert response.json() == {
        "credentials": {
            "id": "credentials",
            "name": "Credentials",
            "type": "credentials",
            "signinUrl": f"{BASE}/api/auth/signin/credentials",
            "callbackUrl": f"{BASE}/api/auth/callback/credentials",
        }
    }
    assert set_cookies(response) == []


async def test_csrf_returns_a_64_hex_token_with_no_store_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/auth/csrf")
    token = response.json()["csrfToken"]
    assert len(token) == 64 and int(token, 16) >= 0
    assert response.headers["content-type"] == "application/json"
    assert {k: response.headers[k] for k in NO_STORE} == NO_STORE
    assert [c.split("=")[0] for c in set_cookies(response)] == [
        "next-auth.csrf-token",
        "next-auth.callback-url",
    ]


async def test_csrf_cookie_is_reused_without_a_new_set_cookie(client: httpx.AsyncClient) -> None:
    first = await csrf_token(client)
    response = await client.get("/api/auth/csrf")
    assert response.json()["csrfToken"] == first
    assert set_cookies(response) == []


# --- GET /session ---------------------------------------------------------------------


async def test_session_without_cookie_is_an_empty_object(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/session")
    assert (response.status_code, response.content) == (200, b"{}")
    assert {k: response.headers[k] for k in NO_STORE} == NO_STORE


async def test_valid_session_returns_the_mapped_user(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    await sign_in(client)
    body = (await client.get("/api/auth/session")).json()
    assert body["user"] == {
        "name": "Ana",
        "email": "ana@example.com",
        "image": "https://example.com/a.png",
        "id": ana.id,
        "role": "ADMIN",
        "fundraiserId": "fr_1",
    }


async def test_session_expires_is_an_iso_timestamp_thirty_days_ahead(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    await sign_in(client)
    expires = (await client.get("/api/auth/session")).json()["expires"]
    assert expires.endswith("Z") and len(expires) == 24
    when = time.mktime(time.strptime(expires[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert abs(when - (time.time() + 30 * 86400)) < 5


async def test_valid_session_is_reissued_with_a_fresh_jti_and_expiry(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    old = CODEC.encode({"sub": ana.id, "id": ana.id, "role": "ADMIN"}, 60, now=time.time() - 30)
    response = await client.get("/api/auth/session", headers=cookie_header(old))
    new_claims = CODEC.decode(session_token_from(response))
    old_claims = CODEC.decode(old)
    assert new_claims is not None and old_claims is not None
    assert new_claims["jti"] != old_claims["jti"]
    assert new_claims["exp"] - new_claims["iat"] == 30 * 86400
    assert "Expires=" in set_cookies(response)[-1]


async def test_session_with_a_role_in_the_token_runs_no_sql(
    client: httpx.AsyncClient, ana: UserRecord, sql_statements: StatementCounter
) -> None:
    token = CODEC.encode({"sub": ana.id, "email": ana.email, "role": "STAFF"}, 600)
    body = (await client.get("/api/auth/session", headers=cookie_header(token))).json()
    assert body["user"]["role"] == "STAFF"
    assert sql_statements.count == 0


async def test_session_without_a_role_looks_the_user_up_once(
    client: httpx.AsyncClient, ana: UserRecord, sql_statements: StatementCounter
) -> None:
    token = CODEC.encode({"sub": ana.id, "email": ana.email}, 600)
    response = await client.get("/api/auth/session", headers=cookie_header(token))
    assert response.json()["user"]["role"] == "ADMIN"
    assert sql_statements.count == 1
    reissued = CODEC.decode(session_token_from(response))
    assert reissued is not None and reissued["role"] == "ADMIN"


def tampered(token: str) -> str:
    parts = token.split(".")
    middle = len(parts[3]) // 2
    parts[3] = (
        parts[3][:middle] + ("A" if parts[3][middle] != "A" else "B") + parts[3][middle + 1 :]
    )
    return ".".join(parts)


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "tampered": lambda: tampered(CODEC.encode({"sub": "u", "role": "ADMIN"}, 600)),
    "expired": lambda: CODEC.encode({"sub": "u"}, 60, now=time.time() - 3600),
    "other secret": lambda: TokenCodec([OTHER_SECRET]).encode({"sub": "u"}, 600),
    "oversized": lambda: CODEC.encode({"sub": "u", "blob": "x" * 20_000}, 600),
    "garbage": lambda: "not-a-token",
    "check cookie": lambda: CODEC.encode({"value": "v", "provider": "github"}, 600),
    "bad role": lambda: CODEC.encode({"sub": "u", "role": "root"}, 600),
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_bad_cookie_gives_empty_session_and_clears_it(
    client: httpx.AsyncClient, kind: str
) -> None:
    response = await client.get("/api/auth/session", headers=cookie_header(BAD_TOKENS[kind]()))
    assert (response.status_code, response.json()) == (200, {})
    assert f"{SESSION}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax" in set_cookies(response)


async def test_bad_chunked_cookie_clears_every_chunk(client: httpx.AsyncClient) -> None:
    cookie = "; ".join(f"{SESSION}.{i}=junk{i}" for i in range(3))
    response = await client.get("/api/auth/session", headers={"cookie": cookie})
    assert response.json() == {}
    cleared = [c for c in set_cookies(response) if "Max-Age=0" in c]
    assert [c.split("=")[0] for c in cleared] == [f"{SESSION}.{i}" for i in range(3)]


async def big_jwt(params: JwtParams) -> dict[str, Any]:
    return {**params.token, "blob": "x" * (CHUNK * 2)}


async def test_large_session_is_chunked_and_read_back(
    app: AuthService, client: httpx.AsyncClient, ana: UserRecord
) -> None:
    app.dependency_overrides[get_jwt_callback] = lambda: big_jwt
    response = await sign_in(client)
    names = [c.split("=")[0] for c in set_cookies(response) if c.startswith(SESSION)]
    assert names == [f"{SESSION}.{i}" for i in range(3)]
    assert (await client.get("/api/auth/session")).json()["user"]["email"] == ana.email


async def test_large_session_chunks_are_3933_characters_in_4096_byte_lines(
    app: AuthService, client: httpx.AsyncClient, ana: UserRecord
) -> None:
    app.dependency_overrides[get_jwt_callback] = lambda: big_jwt
    lines = [c for c in set_cookies(await sign_in(client)) if c.startswith(SESSION)]
    values = [line.split(";")[0].split("=", 1)[1] for line in lines]
    assert [len(value) for value in values[:2]] == [CHUNK, CHUNK]
    assert all(len(line.encode()) <= MAX_SET_COOKIE_BYTES for line in lines)


# --- credentials sign-in --------------------------------------------------------------


async def test_sign_in_in_json_mode_answers_the_callback_url_and_sets_the_session(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await sign_in(client, callbackUrl=f"{BASE}/dashboard", json="true")
    assert response.status_code == 200
    assert response.json() == {"url": f"{BASE}/dashboard"}
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    claims = CODEC.decode(session_token_from(response))
    assert claims is not None
    assert {k: claims[k] for k in ("sub", "id", "email", "role", "fundraiserId", "avatar")} == {
        "sub": ana.id,
        "id": ana.id,
        "email": "ana@example.com",
        "role": "ADMIN",
        "fundraiserId": "fr_1",
        "avatar": "https://example.com/a.png",
    }


async def test_sign_in_from_a_form_redirects_to_the_callback_url(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await sign_in(client, callbackUrl="/dashboard")
    assert (response.status_code, response.headers["location"]) == (302, f"{BASE}/dashboard")
    assert session_token_from(response)


async def test_sign_in_accepts_a_json_body(client: httpx.AsyncClient, ana: UserRecord) -> None:
    body = {"email": "ANA@example.com", "password": PASSWORD, "csrfToken": await csrf_token(client)}
    response = await client.post("/api/auth/callback/credentials", json=body)
    assert response.status_code == 302 and session_token_from(response)


async def test_wrong_password_in_json_mode_is_401_credentials_signin(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await sign_in(client, password="wrong-password", json="true")
    assert response.status_code == 401
    assert response.json() == {
        "url": f"{BASE}/api/auth/error?error=CredentialsSignin&provider=credentials"
    }
    assert not session_token_from(response)


async def test_wrong_password_from_a_form_redirects_to_the_error_page(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await sign_in(client, password="wrong-password")
    assert response.status_code == 302
    assert response.headers["location"] == (
        f"{BASE}/api/auth/error?error=CredentialsSignin&provider=credentials"
    )


async def test_unknown_email_and_wrong_password_get_identical_answers(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    wrong = await sign_in(client, password="wrong-password", json="true")
    unknown = await sign_in(client, email="nobody@example.com", json="true")
    assert (wrong.status_code, wrong.content) == (unknown.status_code, unknown.content)
    assert set_cookies(wrong) == set_cookies(unknown)


async def test_sign_in_as_an_unknown_email_spends_a_full_argon2_check(
    settings: Settings, hasher: PasswordHasher
) -> None:
    spy = Argon2Spy()
    async with app_client(settings, PasswordHasher(spy)) as client:
        response = await sign_in(client, email="nobody@example.com", json="true")
    assert response.status_code == 401
    real_cost = argon2.extract_parameters(await hasher.hash(PASSWORD))
    assert [parameters for parameters, _ in spy.verified] == [real_cost]


async def test_boolean_json_flag_still_gets_a_redirect(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    body = {"email": ana.email, "password": "nope", "csrfToken": await csrf_token(client)}
    response = await client.post("/api/auth/callback/credentials", json={**body, "json": True})
    assert response.status_code == 302


@pytest.mark.parametrize(
    "form",
    [{}, {"csrfToken": "f" * 64}, {"csrfToken": ""}],
    ids=["missing", "mismatched", "empty"],
)
async def test_sign_in_without_the_right_csrf_token_goes_back_to_signin(
    client: httpx.AsyncClient,
    ana: UserRecord,
    sql_statements: StatementCounter,
    form: dict[str, str],
) -> None:
    await csrf_token(client)
    body = {"email": ana.email, "password": PASSWORD, "json": "true", **form}
    response = await client.post("/api/auth/callback/credentials", data=body)
    assert response.json() == {"url": f"{BASE}/api/auth/signin?csrf=true"}
    assert not session_token_from(response)
    assert sql_statements.count == 0


@pytest.mark.parametrize(
    "headers",
    [{"origin": "https://evil.example"}, {"origin": "null"}, {"sec-fetch-site": "cross-site"}],
)
async def test_cross_site_post_is_refused_even_with_a_valid_token(
    client: httpx.AsyncClient, ana: UserRecord, headers: dict[str, str]
) -> None:
    form = {"email": ana.email, "password": PASSWORD, "csrfToken": await csrf_token(client)}
    response = await client.post("/api/auth/callback/credentials", data=form, headers=headers)
    assert response.headers["location"] == f"{BASE}/api/auth/signin?csrf=true"
    assert not session_token_from(response)


async def test_same_origin_post_is_accepted(client: httpx.AsyncClient, ana: UserRecord) -> None:
    form = {"email": ana.email, "password": PASSWORD, "csrfToken": await csrf_token(client)}
    headers = {"origin": BASE, "sec-fetch-site": "same-origin"}
    response = await client.post("/api/auth/callback/credentials", data=form, headers=headers)
    assert session_token_from(response)


async def test_sign_in_replaces_a_planted_session_with_a_new_token(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    planted = CODEC.encode({"sub": "attacker", "role": "CUSTOMER"}, 600)
    client.cookies.set(SESSION, planted)
    response = await sign_in(client)
    token = session_token_from(response)
    claims = CODEC.decode(token)
    assert token != planted and claims is not None and claims["sub"] == ana.id


async def test_legacy_bcrypt_user_signs_in_and_is_upgraded_to_argon2id(
    app: AuthService, client: httpx.AsyncClient
) -> None:
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode().replace("$2b$", "$2a$")
    await app.services.users.create(email="old@example.com", password_hash=legacy)
    response = await sign_in(client, email="old@example.com")
    assert session_token_from(response)
    stored = await app.services.users.get_by_email("old@example.com")
    assert stored is not None and (stored.password_hash or "").startswith("$argon2id$")


async def test_credentials_callback_rejects_get_with_a_4xx(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/auth/callback/credentials")).status_code == 405


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"x" * 70_000, "application/x-www-form-urlencoded", 413),
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b"\xff\xfe", "application/x-www-form-urlencoded", 400),
        (b"a=1", "text/plain", 415),
        (
            "&".join(f"k{i}=v" for i in range(200)).encode(),
            "application/x-www-form-urlencoded",
            400,
        ),
    ],
)
async def test_unreadable_bodies_get_a_clear_4xx(
    client: httpx.AsyncClient, content: bytes, content_type: str, status: int
) -> None:
    response = await client.post(
        "/api/auth/callback/credentials", content=content, headers={"content-type": content_type}
    )
    assert response.status_code == status
    assert "message" in response.json()


# --- POST /session (update) -----------------------------------------------------------


async def test_update_refreshes_the_token_from_the_database(
    app: AuthService, client: httpx.AsyncClient, ana: UserRecord
) -> None:
    await sign_in(client)
    await app.services.users.set_role(ana.email, Role.STAFF)
    body = {"csrfToken": await csrf_token(client), "data": {"role": "ADMIN", "name": "Hacker"}}
    response = await client.post("/api/auth/session", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "cache-control" not in response.headers
    user = response.json()["user"]
    assert (user["role"], user["name"]) == ("STAFF", "Ana")
    claims = CODEC.decode(session_token_from(response))
    assert claims is not None and claims["role"] == "STAFF"


async def test_update_without_csrf_is_400_empty_and_changes_no_cookie(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    await sign_in(client)
    response = await client.post("/api/auth/session", json={"data": {}})
    assert (response.status_code, response.content) == (400, b"{}")
    assert set_cookies(response) == []


async def test_update_without_a_session_is_an_empty_object(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/session", json={"csrfToken": await csrf_token(client)})
    assert (response.status_code, response.json()) == (200, {})


# --- sign-out -------------------------------------------------------------------------


async def test_sign_out_clears_every_chunk_and_answers_the_callback_url(
    client: httpx.AsyncClient,
) -> None:
    csrf = await csrf_token(client)
    for i in range(3):
        client.cookies.set(f"{SESSION}.{i}", f"chunk{i}")
    response = await client.post(
        "/api/auth/signout", data={"csrfToken": csrf, "callbackUrl": "/bye", "json": "true"}
    )
    assert response.json() == {"url": f"{BASE}/bye"}
    cleared = [c for c in set_cookies(response) if c.startswith(SESSION)]
    assert cleared == [
        f"{SESSION}.{i}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax" for i in range(3)
    ]


async def test_sign_out_without_csrf_goes_to_the_signout_page(client: httpx.AsyncClient) -> None:
    client.cookies.set(SESSION, "x")
    response = await client.post("/api/auth/signout", data={"json": "true"})
    assert response.json() == {"url": f"{BASE}/api/auth/signout?csrf=true"}
    assert not [c for c in set_cookies(response) if c.startswith(SESSION)]


async def test_signed_out_session_is_gone(client: httpx.AsyncClient, ana: UserRecord) -> None:
    await sign_in(client)
    await client.post("/api/auth/signout", data={"csrfToken": await csrf_token(client)})
    assert (await client.get("/api/auth/session")).json() == {}


# --- pages, errors, unknown actions ---------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [("AccessDenied", 403), ("Verification", 403), ("Configuration", 500), ("Whatever", 200)],
)
async def test_error_page_status_follows_next_auth(
    client: httpx.AsyncClient, code: str, status: int
) -> None:
    response = await client.get("/api/auth/error", params={"error": code})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")


async def test_sign_in_error_codes_redirect_to_the_sign_in_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/error", params={"error": "CredentialsSignin"})
    assert response.status_code == 302
    assert response.headers["location"] == f"{BASE}/api/auth/signin?error=CredentialsSignin"


async def test_sign_in_page_shows_the_error_message_and_a_csrf_field(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/api/auth/signin", params={"error": "CredentialsSignin"})
    assert "Sign in failed. Check the details you provided are correct." in page.text
    assert f'name="csrfToken" value="{page.cookies["next-auth.csrf-token"][:64]}"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


async def test_sign_in_page_escapes_what_the_client_sends(client: httpx.AsyncClient) -> None:
    page = await client.get("/api/auth/signin", params={"callbackUrl": '/"><script>x()</script>'})
    assert "<script>" not in page.text


async def test_unknown_action_is_400_like_next_auth(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/foo")
    assert response.status_code == 400
    assert response.text == "Error: This action with HTTP GET is not supported by NextAuth.js"


async def test_openapi_docs_list_the_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/api/auth/session", "/api/auth/csrf", "/api/auth/callback/credentials"):
        assert path in paths
    assert (await client.get("/docs")).status_code == 200


# --- https deployment -----------------------------------------------------------------


@pytest.fixture
async def https_client(
    database_url: str, hasher: PasswordHasher
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(url="https://shop.example.com", database_url=database_url)
    app = create_app(settings, hasher=hasher)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal:8000") as c:
        yield c
    await app.services.database.dispose()


async def test_https_url_uses_secure_cookie_names_whatever_the_request_host(
    https_client: httpx.AsyncClient,
) -> None:
    response = await https_client.get(
        "/api/auth/csrf", headers={"x-forwarded-host": "evil.example", "host": "evil.example"}
    )
    cookies = set_cookies(response)
    assert cookies[0].startswith("__Host-next-auth.csrf-token=") and "; Secure;" in cookies[0]
    assert unquote(cookies[1].split(";")[0].split("=", 1)[1]) == "https://shop.example.com"


async def test_https_session_is_not_read_under_the_plain_name(
    https_client: httpx.AsyncClient,
) -> None:
    token = CODEC.encode({"sub": "u", "role": "ADMIN"}, 600)
    plain = await https_client.get("/api/auth/session", headers=cookie_header(token))
    secure = await https_client.get(
        "/api/auth/session", headers=cookie_header(token, f"__Secure-{SESSION}")
    )
    assert plain.json() == {}
    assert secure.json()["user"]["role"] == "ADMIN"


# --- pluggable callbacks, logs --------------------------------------------------------


async def test_application_can_replace_both_callbacks(
    app: AuthService, client: httpx.AsyncClient, ana: UserRecord
) -> None:
    async def jwt(params: JwtParams) -> dict[str, Any]:
        token = dict(params.token)
        if params.user is not None:
            token["tier"] = "gold" if params.user.role is Role.ADMIN else "basic"
        return token

    async def session(params: SessionParams) -> dict[str, Any]:
        return {"user": {"tier": params.token.get("tier")}, "expires": params.session["expires"]}

    app.dependency_overrides[get_jwt_callback] = lambda: jwt
    app.dependency_overrides[get_session_callback] = lambda: session
    await sign_in(client)
    assert (await client.get("/api/auth/session")).json()["user"] == {"tier": "gold"}


async def test_no_token_or_secret_reaches_the_logs(
    client: httpx.AsyncClient, ana: UserRecord, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await sign_in(client)
    await client.get("/api/auth/session")
    await client.get("/api/auth/session", headers=cookie_header("garbage"))
    await sign_in(client, password="wrong-password")
    assert "eyJhbGciOiJkaXIi" not in caplog.text
    assert SECRET not in caplog.text and PASSWORD not in caplog.text


async def test_a_failing_jwt_callback_answers_no_session_and_keeps_the_cookie(
    app: AuthService, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(params: JwtParams) -> dict[str, Any]:
        raise RuntimeError(f"boom {SECRET}")

    app.dependency_overrides[get_jwt_callback] = lambda: broken
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        token = CODEC.encode({"sub": "u", "role": "ADMIN"}, 600)
        response = await client.get("/api/auth/session", headers=cookie_header(token))
    assert (response.status_code, response.json()) == (200, {})
    assert not any(c.startswith(SESSION) for c in response.headers.get_list("set-cookie"))
    assert "jwt callback failed: RuntimeError" in caplog.text and SECRET not in caplog.text


async def test_unexpected_failure_is_a_bare_500_without_details(
    app: AuthService, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(self: TokenCodec, raw: str, now: float | None = None) -> None:
        raise RuntimeError(f"boom {SECRET}")

    monkeypatch.setattr(TokenCodec, "decode", explode)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        token = CODEC.encode({"sub": "u", "role": "ADMIN"}, 600)
        response = await client.get("/api/auth/session", headers=cookie_header(token))
    assert (response.status_code, response.json()) == (500, {"message": "internal error"})
    assert "Traceback" not in response.text and SECRET not in caplog.text


@pytest.mark.parametrize("field", ["password", "email", "csrfToken", "callbackUrl"])
async def test_lone_surrogate_escapes_in_a_json_body_are_a_400(
    client: httpx.AsyncClient, field: str
) -> None:
    body = {"email": "a@example.com", "password": "x" * 10, "csrfToken": await csrf_token(client)}
    raw = json.dumps({**body, field: "\ud800"})
    response = await client.post(
        "/api/auth/callback/credentials",
        content=raw,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400


@pytest.fixture
async def custom_pages(
    database_url: str, hasher: PasswordHasher
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url=database_url,
        pages_signin="/login",
        pages_signout="https://shop.example.com/bye",
        pages_error="/oops?from=auth",
    )
    app = create_app(settings, hasher=hasher)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c
    await app.services.database.dispose()


async def test_a_custom_sign_in_page_gets_the_callback_url_and_the_error(
    custom_pages: httpx.AsyncClient,
) -> None:
    response = await custom_pages.get(
        "/api/auth/signin", params={"callbackUrl": "/cart", "error": "CredentialsSignin"}
    )
    assert response.status_code == 302
    assert response.headers["location"] == (
        f"{BASE}/login?callbackUrl=http%3A%2F%2Flocalhost%3A3000%2Fcart&error=CredentialsSignin"
    )


async def test_a_custom_sign_out_page_is_redirected_to(custom_pages: httpx.AsyncClient) -> None:
    response = await custom_pages.get("/api/auth/signout")
    assert response.headers["location"].startswith("https://shop.example.com/bye?callbackUrl=")


async def test_errors_go_to_the_custom_error_page_but_sign_in_errors_to_sign_in(
    custom_pages: httpx.AsyncClient,
) -> None:
    denied = await custom_pages.get("/api/auth/error", params={"error": "AccessDenied"})
    assert denied.headers["location"] == f"{BASE}/oops?from=auth&error=AccessDenied"
    signin = await custom_pages.get("/api/auth/error", params={"error": "CredentialsSignin"})
    assert signin.headers["location"] == f"{BASE}/api/auth/signin?error=CredentialsSignin"


def test_a_custom_page_must_be_a_path_or_an_https_url() -> None:
    with pytest.raises(ConfigError, match="AUTHSVC_PAGES_SIGNIN"):
        make_settings(pages_signin="javascript:alert(1)")
