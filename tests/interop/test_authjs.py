"""Interoperability with the real Auth.js v5 core, `@auth/core` 0.41.3, run through Node
(tests/node/authjs-oracle.mjs), with authsvc in Auth.js v5 mode.

Tokens go both ways: minted by `@auth/core/jwt` `encode` (fresh on every run, salted with
the cookie name, with one secret and with several) and read by authsvc's routes; minted by
authsvc and read by `@auth/core`'s `decode`, `getToken` and its own `/session` handler.
Each recorded v5 vector is checked against the real library and authsvc alike, and each
format is refused by the other mode.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
import pytest

from authsvc.app import AuthService
from authsvc.settings import Settings
from authsvc.tokens import TokenCodec
from authsvc.tokens_v5 import AuthjsTokenCodec
from authsvc.users.passwords import PasswordHasher
from tests.authjs_vectors import recorded_decodes
from tests.conftest import SECRET, StatementCounter, add_user, app_client, make_settings
from tests.node_oracle import (
    LARGE,
    MAPPED_USER,
    STOREFRONT,
    Oracle,
    chunked,
    cookie_header,
    credentials_sign_in,
    get_session,
    oracle_process,
    set_cookies,
    without_times,
)

pytestmark = pytest.mark.node

CHUNK = 3936  # Auth.js v5's SessionStore chunk size, restated here on purpose
SESSION_COOKIE = "authjs.session-token"
SECURE_SESSION_COOKIE = "__Secure-authjs.session-token"
NEW_SECRET = "new-rotated-secret-0000000000000000000000"
CODEC = AuthjsTokenCodec([SECRET], salt=SESSION_COOKIE)
Secret = str | list[str]


class AuthCore(Oracle):
    """`@auth/core/jwt` and `Auth()`, through tests/node/authjs-oracle.mjs."""

    def encode(
        self,
        token: Mapping[str, Any],
        *,
        secret: Secret = SECRET,
        max_age: int = 3600,
        salt: str = SESSION_COOKIE,
    ) -> str:
        result: str = self.call("encode", token=token, secret=secret, maxAge=max_age, salt=salt)
        return result

    def decode(
        self, token: str, *, secret: Secret = SECRET, salt: str = SESSION_COOKIE
    ) -> dict[str, Any] | None:
        """The payload, or None where @auth/core's decode throws (its way of refusing)."""
        result: dict[str, Any] | None = self.call("decode", token=token, secret=secret, salt=salt)
        if result is not None and set(result) == {"error"}:
            return None
        return result

    def get_token(
        self, headers: Mapping[str, str], *, secret: Secret = SECRET, secure_cookie: bool = False
    ) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.call(
            "getToken", headers=headers, secret=secret, secureCookie=secure_cookie
        )
        return result

    def session(self, headers: Mapping[str, str], *, secret: Secret = SECRET) -> dict[str, Any]:
        """What @auth/core's own GET /session handler answers: status, body, setCookie."""
        result: dict[str, Any] = self.call("session", headers=headers, secret=secret)
        return result


@pytest.fixture(scope="session")
def auth_core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthCore]:
    """The real @auth/core, as a Node process that lives for the whole run."""
    stderr_dir = tmp_path_factory.mktemp("authjs-oracle")
    with oracle_process("authjs-oracle.mjs", "@auth/core", stderr_dir) as process:
        yield AuthCore(process, "@auth/core")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url=database_url, mode="authjs-v5")


# Other deployments beside the `client` fixture's (v5 mode, http, one secret).
DEPLOYMENTS: dict[str, dict[str, Any]] = {
    # Mid-rotation: AUTH_SECRET_1 (new) encrypts, AUTH_SECRET (old) still reads.
    "rotating": {"mode": "authjs-v5", "auth_secret_1": NEW_SECRET},
    "https": {"mode": "authjs-v5", "url": "https://shop.example.com"},
    "next-auth v4": {},
}


@pytest.fixture
async def deployment(
    request: pytest.FixtureRequest, database_url: str, hasher: PasswordHasher
) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the deployment named by the test's `deployment` parameter."""
    settings = make_settings(database_url=database_url, **DEPLOYMENTS[request.param])
    async with app_client(settings, hasher) as client:
        yield client


def chunks(token: str) -> dict[str, str]:
    """`.0 … .n` session cookies, the way Auth.js v5's SessionStore splits a token."""
    return chunked(token, SESSION_COOKIE, CHUNK)


def session_cookies(response: httpx.Response, name: str = SESSION_COOKIE) -> dict[str, str]:
    return {k: v for k, v in set_cookies(response, raw=True).items() if k.startswith(name)}


# @auth/core → authsvc --------------------------------------------------------------------


def test_token_minted_by_auth_core_decodes_here(auth_core: AuthCore) -> None:
    token = auth_core.encode(STOREFRONT, max_age=3600)

    claims = CODEC.decode(token)

    assert claims is not None
    assert without_times(claims) == STOREFRONT
    assert claims["exp"] - claims["iat"] == 3600
    assert uuid.UUID(claims["jti"]).version == 4


async def test_cookie_minted_by_auth_core_gives_the_mapped_session_without_sql(
    auth_core: AuthCore, client: httpx.AsyncClient, sql_statements: StatementCounter
) -> None:
    response = await get_session(client, {SESSION_COOKIE: auth_core.encode(STOREFRONT)})

    assert response.status_code == 200
    assert response.json()["user"] == MAPPED_USER
    assert sql_statements.statements == []


async def test_chunked_cookie_minted_by_auth_core_gives_the_mapped_session(
    auth_core: AuthCore, client: httpx.AsyncClient
) -> None:
    cookies = chunks(auth_core.encode(LARGE))
    assert list(cookies) == [f"{SESSION_COOKIE}.{i}" for i in range(3)]

    response = await get_session(client, cookies)

    assert response.json()["user"] == MAPPED_USER


@pytest.mark.parametrize(
    ("deployment", "cookie", "secret"),
    [
        pytest.param("https", SECURE_SESSION_COOKIE, SECRET, id="secure cookie on https"),
        pytest.param("rotating", SESSION_COOKIE, [NEW_SECRET, SECRET], id="several secrets"),
        pytest.param("rotating", SESSION_COOKIE, SECRET, id="minted before the rotation"),
    ],
    indirect=["deployment"],
)
async def test_cookie_minted_by_auth_core_gives_the_mapped_session_in_each_deployment(
    auth_core: AuthCore, deployment: httpx.AsyncClient, cookie: str, secret: Secret
) -> None:
    token = auth_core.encode(STOREFRONT, secret=secret, salt=cookie)

    response = await get_session(deployment, {cookie: token})

    assert response.json()["user"] == MAPPED_USER


async def test_check_cookie_payload_from_auth_core_is_not_a_session(
    auth_core: AuthCore, client: httpx.AsyncClient
) -> None:
    token = auth_core.encode({"value": "v", "provider": "google"}, max_age=900)

    response = await get_session(client, {SESSION_COOKIE: token})

    assert response.content == b"null"


# authsvc → @auth/core --------------------------------------------------------------------


def test_token_encoded_here_decodes_in_auth_core(auth_core: AuthCore) -> None:
    token = CODEC.encode(STOREFRONT, 3600)

    claims = auth_core.decode(token)

    assert claims == CODEC.decode(token)
    assert claims is not None and without_times(claims) == STOREFRONT


def test_token_encoded_with_several_secrets_decodes_in_auth_core(auth_core: AuthCore) -> None:
    token = AuthjsTokenCodec([NEW_SECRET, SECRET], salt=SESSION_COOKIE).encode(STOREFRONT, 3600)

    claims = auth_core.decode(token, secret=[NEW_SECRET, SECRET])

    assert claims is not None and without_times(claims) == STOREFRONT


def test_token_encoded_with_the_new_secret_is_refused_by_auth_core_with_the_old_one(
    auth_core: AuthCore,
) -> None:
    token = AuthjsTokenCodec([NEW_SECRET, SECRET], salt=SESSION_COOKIE).encode(STOREFRONT, 3600)
    assert auth_core.decode(token, secret=SECRET) is None


def test_token_encoded_here_is_read_by_get_token_from_a_bearer_header(
    auth_core: AuthCore,
) -> None:
    token = CODEC.encode(STOREFRONT, 3600)

    claims = auth_core.get_token({"authorization": f"Bearer {token}"})

    assert claims is not None and without_times(claims) == STOREFRONT


async def test_credentials_sign_in_sets_a_cookie_auth_core_decodes(
    auth_core: AuthCore, client: httpx.AsyncClient, app: AuthService
) -> None:
    user = await add_user(app, "ana@example.com", "correct horse battery staple", name="Ana")

    response = await credentials_sign_in(
        client,
        "authjs.csrf-token",
        {"email": "ana@example.com", "password": "correct horse battery staple"},
        {"X-Auth-Return-Redirect": "1"},
    )
    assert response.status_code == 200, response.text
    claims = auth_core.get_token({"cookie": cookie_header(session_cookies(response))})

    assert claims is not None
    assert claims["sub"] == claims["id"] == user.id
    assert (claims["role"], claims["email"]) == ("ADMIN", "ana@example.com")


async def test_chunked_cookies_set_here_reassemble_in_get_token(
    auth_core: AuthCore, client: httpx.AsyncClient
) -> None:
    # A large session comes back from /session re-encoded, so again in three chunks.
    response = await get_session(client, chunks(CODEC.encode(LARGE, 3600)))
    cookies = session_cookies(response)
    assert list(cookies) == [f"{SESSION_COOKIE}.{i}" for i in range(3)]

    claims = auth_core.get_token({"cookie": cookie_header(cookies)})

    assert claims is not None and without_times(claims) == LARGE


@pytest.mark.parametrize("deployment", ["https"], indirect=True)
async def test_secure_cookie_set_here_is_read_by_get_token_as_a_secure_cookie(
    auth_core: AuthCore, deployment: httpx.AsyncClient
) -> None:
    token = AuthjsTokenCodec([SECRET], salt=SECURE_SESSION_COOKIE).encode(STOREFRONT, 3600)
    response = await get_session(deployment, {SECURE_SESSION_COOKIE: token})
    cookies = session_cookies(response, SECURE_SESSION_COOKIE)

    claims = auth_core.get_token({"cookie": cookie_header(cookies)}, secure_cookie=True)

    assert claims is not None and without_times(claims) == STOREFRONT


async def test_cookie_set_here_works_in_auth_cores_own_session_route(
    auth_core: AuthCore, client: httpx.AsyncClient
) -> None:
    response = await get_session(client, {SESSION_COOKIE: CODEC.encode(STOREFRONT, 3600)})

    answer = auth_core.session({"cookie": cookie_header(session_cookies(response))})

    assert answer["status"] == 200
    assert answer["body"]["user"] == {"name": "Ana", "email": "ana@example.com"}


async def test_session_refresh_issues_a_token_auth_core_reads_with_fresh_iat_exp_jti(
    auth_core: AuthCore, client: httpx.AsyncClient, app: AuthService
) -> None:
    issued = int(time.time()) - 3600
    old = CODEC.decode(CODEC.encode(STOREFRONT, 7200, now=issued))
    assert old is not None
    before = int(time.time())

    response = await get_session(client, {SESSION_COOKIE: CODEC.encode(old, 7200, now=issued)})
    claims = auth_core.decode(session_cookies(response)[SESSION_COOKIE])

    assert claims is not None
    assert without_times(claims) == STOREFRONT
    assert claims["iat"] >= before > old["iat"]
    assert claims["exp"] == claims["iat"] + app.services.settings.session_max_age
    assert claims["jti"] != old["jti"]


@pytest.mark.parametrize("deployment", ["rotating"], indirect=True)
async def test_token_of_a_rotated_deployment_decodes_in_auth_core_with_its_secret_list(
    auth_core: AuthCore, deployment: httpx.AsyncClient
) -> None:
    response = await get_session(deployment, {SESSION_COOKIE: CODEC.encode(STOREFRONT, 3600)})

    claims = auth_core.decode(
        session_cookies(response)[SESSION_COOKIE], secret=[NEW_SECRET, SECRET]
    )

    assert claims is not None and without_times(claims) == STOREFRONT


# The recorded vectors, against the real library and authsvc alike -----------------------


@pytest.mark.parametrize(("token", "salt", "secrets", "recorded"), recorded_decodes())
def test_each_recorded_decode_holds_in_auth_core_and_here(
    auth_core: AuthCore, token: str, salt: str, secrets: list[str], recorded: Any
) -> None:
    ours = AuthjsTokenCodec(secrets, salt=salt).decode(token)
    theirs = auth_core.decode(token, secret=secrets, salt=salt)
    assert (ours, theirs) == (recorded, recorded)


# Each mode refuses the other's tokens ----------------------------------------------------


async def test_next_auth_v4_token_is_refused_in_v5_mode(client: httpx.AsyncClient) -> None:
    v4_token = TokenCodec([SECRET]).encode(STOREFRONT, 3600)

    response = await get_session(client, {SESSION_COOKIE: v4_token})

    assert response.content == b"null"


@pytest.mark.parametrize("deployment", ["next-auth v4"], indirect=True)
async def test_auth_core_token_is_refused_in_v4_mode(
    auth_core: AuthCore, deployment: httpx.AsyncClient
) -> None:
    token = auth_core.encode(STOREFRONT, salt=SESSION_COOKIE)

    response = await get_session(deployment, {"next-auth.session-token": token})

    assert response.json() == {}


def test_next_auth_v4_token_encoded_here_is_refused_by_auth_core(auth_core: AuthCore) -> None:
    v4_token = TokenCodec([SECRET]).encode(STOREFRONT, 3600)
    assert auth_core.decode(v4_token) is None
