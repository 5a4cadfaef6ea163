"""Interoperability with the real next-auth 4.24.15, run through Node (tests/node/oracle.js).

Tokens go both ways: minted by next-auth and read by authsvc, and minted by authsvc and
read by next-auth's `decode` and `getToken`, as cookies (whole and chunked) and over HTTP.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from authsvc.app import AuthService
from authsvc.tokens import TokenCodec
from tests.conftest import SECRET, StatementCounter, add_user
from tests.node_oracle import (
    AVATAR,
    LARGE,
    MAPPED_USER,
    STOREFRONT,
    USER_ID,
    NextAuth,
    chunked,
    credentials_sign_in,
    get_session,
    set_cookies,
    without_times,
)

pytestmark = pytest.mark.node

CHUNK = 3933  # next-auth v4's SessionStore chunk size, restated here on purpose

SESSION_COOKIE = "next-auth.session-token"
SECURE_SESSION_COOKIE = "__Secure-next-auth.session-token"
STATE_COOKIE = "next-auth.state"
CLEAR_SESSION = f"{SESSION_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"


# Helpers -----------------------------------------------------------------------------


def chunks(token: str) -> dict[str, str]:
    """`.0 … .n` session cookies, the way next-auth's SessionStore splits a token."""
    return chunked(token, SESSION_COOKIE, CHUNK)


def session_cookies(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in set_cookies(response).items() if k.startswith(SESSION_COOKIE)}


# next-auth → authsvc ----------------------------------------------------------------


def test_token_minted_by_next_auth_decodes_here(next_auth: NextAuth) -> None:
    token = next_auth.encode(STOREFRONT, max_age=3600)

    claims = TokenCodec([SECRET]).decode(token)

    assert claims is not None
    assert without_times(claims) == STOREFRONT
    assert claims["exp"] - claims["iat"] == 3600
    assert uuid.UUID(claims["jti"]).version == 4


async def test_chunked_cookie_minted_by_next_auth_gives_the_mapped_session(
    next_auth: NextAuth, client: httpx.AsyncClient
) -> None:
    token = next_auth.encode(LARGE)
    cookies = chunks(token)
    assert list(cookies) == [f"{SESSION_COOKIE}.{i}" for i in range(3)]

    response = await get_session(client, cookies)

    assert response.status_code == 200
    assert response.json()["user"] == MAPPED_USER


async def test_cookie_minted_by_next_auth_gives_the_mapped_session_without_sql(
    next_auth: NextAuth, client: httpx.AsyncClient, sql_statements: StatementCounter
) -> None:
    token = next_auth.encode(STOREFRONT)

    response = await get_session(client, {SESSION_COOKIE: token})

    assert response.status_code == 200
    user = response.json()["user"]
    assert (user["id"], user["role"], user["image"]) == (USER_ID, "ADMIN", AVATAR)
    assert sql_statements.statements == []


def test_state_check_cookie_from_next_auth_decodes_with_its_salt(next_auth: NextAuth) -> None:
    state = {"value": "random-state-value", "provider": "google"}
    token = next_auth.encode(state, max_age=900, salt=STATE_COOKIE)

    claims = TokenCodec([SECRET], salt=STATE_COOKIE).decode(token)

    assert claims is not None
    assert without_times(claims) == state


async def test_state_check_cookie_from_next_auth_is_not_a_session(
    next_auth: NextAuth, client: httpx.AsyncClient
) -> None:
    token = next_auth.encode({"value": "v", "provider": "google"}, max_age=900, salt=STATE_COOKIE)

    response = await get_session(client, {SESSION_COOKIE: token})

    assert response.status_code == 200
    assert response.json() == {}
    assert CLEAR_SESSION in response.headers.get_list("set-cookie")


async def test_check_cookie_payload_under_the_session_key_is_not_a_session(
    next_auth: NextAuth, client: httpx.AsyncClient
) -> None:
    # Same key as sessions (no salt), so it decrypts: only its shape gives it away (R6).
    token = next_auth.encode({"value": "v", "provider": "google"}, max_age=900)

    response = await get_session(client, {SESSION_COOKIE: token})

    assert response.json() == {}
    assert CLEAR_SESSION in response.headers.get_list("set-cookie")


# authsvc → next-auth ----------------------------------------------------------------


def test_token_encoded_here_decodes_in_next_auth(next_auth: NextAuth) -> None:
    codec = TokenCodec([SECRET])
    token = codec.encode(STOREFRONT, 3600)

    claims = next_auth.decode(token)

    assert claims == codec.decode(token)
    assert claims is not None
    assert without_times(claims) == STOREFRONT


def test_token_encoded_here_is_read_by_get_token_from_the_session_cookie(
    next_auth: NextAuth,
) -> None:
    token = TokenCodec([SECRET]).encode(STOREFRONT, 3600)

    claims = next_auth.get_token({SESSION_COOKIE: token})

    assert claims is not None
    assert without_times(claims) == STOREFRONT


def test_token_encoded_here_is_read_by_get_token_from_the_secure_session_cookie(
    next_auth: NextAuth,
) -> None:
    token = TokenCodec([SECRET]).encode(STOREFRONT, 3600)

    claims = next_auth.get_token({SECURE_SESSION_COOKIE: token}, secure_cookie=True)

    assert claims is not None
    assert without_times(claims) == STOREFRONT


def test_token_encoded_here_is_read_by_get_token_from_a_bearer_header(
    next_auth: NextAuth,
) -> None:
    token = TokenCodec([SECRET]).encode(STOREFRONT, 3600)

    claims = next_auth.get_token({}, {"authorization": f"Bearer {token}"})

    assert claims is not None
    assert without_times(claims) == STOREFRONT


async def test_chunked_cookies_set_here_reassemble_in_get_token(
    next_auth: NextAuth, client: httpx.AsyncClient
) -> None:
    # A large session comes back from /session re-encoded, so again in three chunks.
    response = await get_session(client, chunks(next_auth.encode(LARGE)))
    cookies = session_cookies(response)
    assert list(cookies) == [f"{SESSION_COOKIE}.{i}" for i in range(3)]

    claims = next_auth.get_token(cookies)

    assert claims is not None
    assert without_times(claims) == LARGE


async def test_session_refresh_issues_a_token_next_auth_reads_with_fresh_iat_exp_jti(
    next_auth: NextAuth, client: httpx.AsyncClient, app: AuthService
) -> None:
    issued = int(time.time()) - 3600
    old = TokenCodec([SECRET]).decode(TokenCodec([SECRET]).encode(STOREFRONT, 7200, now=issued))
    assert old is not None
    before = int(time.time())

    response = await get_session(
        client, {SESSION_COOKIE: TokenCodec([SECRET]).encode(old, 7200, now=issued)}
    )
    claims = next_auth.decode(session_cookies(response)[SESSION_COOKIE])

    assert claims is not None
    assert without_times(claims) == STOREFRONT
    assert claims["iat"] >= before > old["iat"]
    assert claims["exp"] == claims["iat"] + app.services.settings.session_max_age
    assert claims["jti"] != old["jti"]
    assert uuid.UUID(claims["jti"]).version == 4


async def test_credentials_sign_in_sets_a_cookie_next_auth_decodes(
    next_auth: NextAuth, client: httpx.AsyncClient, app: AuthService
) -> None:
    user = await add_user(app, "ana@example.com", "correct horse battery staple", name="Ana")

    response = await credentials_sign_in(
        client,
        "next-auth.csrf-token",
        {"email": "ana@example.com", "password": "correct horse battery staple", "json": "true"},
    )
    assert response.status_code == 200, response.text
    claims = next_auth.decode(session_cookies(response)[SESSION_COOKIE])

    assert claims is not None
    assert claims["sub"] == claims["id"] == user.id
    assert claims["role"] == "ADMIN"
    assert claims["email"] == "ana@example.com"
