"""`/api/auth/verify` over HTTP, as nginx, Traefik, Caddy and Envoy call it."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from authsvc.app import AuthService, create_app
from authsvc.callbacks import Callbacks, JwtParams
from authsvc.forward_auth import IDENTITY_HEADERS
from authsvc.tokens import TokenCodec
from authsvc.users.models import Role
from authsvc.users.repository import UserRecord
from tests.conftest import BASE, OTHER_SECRET, SECRET, StatementCounter, make_settings

SESSION = "next-auth.session-token"
CODEC = TokenCodec([SECRET])
VERIFY = "/api/auth/verify"
ANA = {"sub": "u1", "id": "u1", "email": "ana@example.com", "role": "ADMIN", "name": "Ana"}


def token(**claims: Any) -> str:
    return CODEC.encode({**ANA, **claims}, 600)


def cookie(value: str) -> dict[str, str]:
    return {"cookie": f"{SESSION}={value}"}


def identity(response: httpx.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in IDENTITY_HEADERS if name in response.headers}


async def make_client(app: AuthService, client_ip: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(client_ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url=BASE)


@pytest.fixture
async def tokens_only() -> AsyncIterator[httpx.AsyncClient]:
    """authsvc on an empty in-memory database: every answer must come from the token."""
    app = create_app(make_settings())
    async with await make_client(app) as http:
        yield http
    await app.services.database.dispose()


# --- allow --------------------------------------------------------------------------------


async def test_a_valid_cookie_is_200_with_every_identity_header(
    tokens_only: httpx.AsyncClient,
) -> None:
    response = await tokens_only.get(VERIFY, headers=cookie(token()))
    assert response.status_code == 200
    assert identity(response) == {
        "X-Auth-Request-User": "u1",
        "X-Auth-Request-Email": "ana@example.com",
        "X-Auth-Request-Preferred-Username": "ana@example.com",
        "X-Auth-Request-Groups": "ADMIN",
        "X-Auth-Request-Role": "ADMIN",
        "X-Auth-Request-Name": "Ana",
    }
    assert response.json() == {
        "id": "u1",
        "email": "ana@example.com",
        "role": "ADMIN",
        "name": "Ana",
    }


@pytest.mark.parametrize(
    "method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "MKCOL"]
)
async def test_every_http_method_gets_the_same_answer(
    tokens_only: httpx.AsyncClient, method: str
) -> None:
    response = await tokens_only.request(method, VERIFY, headers=cookie(token()))
    assert response.status_code == 200
    assert response.headers["x-auth-request-user"] == "u1"


async def test_the_request_body_is_ignored(tokens_only: httpx.AsyncClient) -> None:
    response = await tokens_only.post(
        VERIFY,
        content=b"{not json",
        headers={**cookie(token()), "content-type": "application/json"},
    )
    assert response.status_code == 200


async def test_a_chunked_session_cookie_is_reassembled(tokens_only: httpx.AsyncClient) -> None:
    value = token(blob="x" * 5000)
    half = len(value) // 2
    chunks = f"{SESSION}.0={value[:half]}; {SESSION}.1={value[half:]}"
    response = await tokens_only.get(VERIFY, headers={"cookie": chunks})
    assert response.status_code == 200


async def test_a_non_ascii_name_is_sent_as_utf8_bytes(tokens_only: httpx.AsyncClient) -> None:
    response = await tokens_only.get(VERIFY, headers=cookie(token(name="Zoë 李")))
    raw = dict(response.headers.raw)
    assert raw[b"x-auth-request-name"] == "Zoë 李".encode()


async def test_a_name_with_line_breaks_cannot_add_a_header(tokens_only: httpx.AsyncClient) -> None:
    response = await tokens_only.get(VERIFY, headers=cookie(token(name="Ana\r\nX-Evil: 1")))
    assert response.headers["x-auth-request-name"] == "AnaX-Evil: 1"
    assert "x-evil" not in response.headers


# --- deny -----------------------------------------------------------------------------------


async def test_no_session_is_401_with_www_authenticate(tokens_only: httpx.AsyncClient) -> None:
    response = await tokens_only.get(VERIFY)
    assert (response.status_code, response.json()) == (401, {"message": "no valid session"})
    assert response.headers["www-authenticate"] == 'Bearer realm="authsvc"'
    assert identity(response) == {}


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        TokenCodec([OTHER_SECRET]).encode(ANA, 600),
        CODEC.encode(ANA, 60, now=time.time() - 3600),
        CODEC.encode({"value": "v", "provider": "github"}, 600),
    ],
    ids=["garbage", "other secret", "expired", "check cookie"],
)
async def test_an_invalid_session_cookie_is_401(tokens_only: httpx.AsyncClient, value: str) -> None:
    assert (await tokens_only.get(VERIFY, headers=cookie(value))).status_code == 401


async def test_inbound_identity_headers_are_never_reflected(
    tokens_only: httpx.AsyncClient,
) -> None:
    spoofed = {
        "X-Auth-Request-User": "admin",
        "X_Auth_Request_User": "admin",
        "X-Auth-Request-Role": "ADMIN",
    }
    denied = await tokens_only.get(VERIFY, headers=spoofed)
    allowed = await tokens_only.get(VERIFY, headers={**spoofed, **cookie(token(role="CUSTOMER"))})
    assert identity(denied) == {}
    assert allowed.headers.get_list("x-auth-request-user") == ["u1"]
    assert allowed.headers.get_list("x-auth-request-role") == ["CUSTOMER"]


async def test_a_session_failing_allowed_roles_is_403(tokens_only: httpx.AsyncClient) -> None:
    response = await tokens_only.get(
        VERIFY, params={"allowed_roles": "STAFF,WHOLESALE"}, headers=cookie(token())
    )
    assert (response.status_code, response.json()) == (403, {"message": "forbidden by policy"})
    assert identity(response) == {}


async def test_a_session_passing_every_policy_kind_is_allowed(
    tokens_only: httpx.AsyncClient,
) -> None:
    params = httpx.QueryParams(
        [
            ("allowed_roles", "STAFF"),
            ("allowed_roles", "ADMIN"),
            ("allowed_emails", "ana@example.com"),
            ("allowed_email_domains", ".example.com"),
        ]
    )
    response = await tokens_only.get(VERIFY, params=params, headers=cookie(token()))
    assert response.status_code == 200


async def test_an_unknown_role_in_the_policy_is_400(tokens_only: httpx.AsyncClient) -> None:
    response = await tokens_only.get(
        VERIFY, params={"allowed_roles": "root"}, headers=cookie(token())
    )
    assert response.status_code == 400
    assert "'ROOT'" in response.json()["message"]


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({}, {}),
        ({}, {"cookie": f"{SESSION}=garbage"}),
        ({"allowed_roles": "STAFF"}, {"cookie": f"{SESSION}=" + token()}),
        ({"allowed_roles": "nope"}, {}),
        ({}, {"cookie": f"{SESSION}=" + token()}),
    ],
    ids=["401", "401 bad cookie", "403", "400", "200"],
)
async def test_every_answer_is_no_store_and_never_a_redirect(
    tokens_only: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str]
) -> None:
    response = await tokens_only.get(VERIFY, params=params, headers=headers)
    assert response.headers["cache-control"] == "no-store"
    assert not 300 <= response.status_code < 400
    assert "location" not in response.headers


# --- bearer tokens (next-auth's getToken rule) ------------------------------------------------


async def test_a_bearer_token_is_accepted_without_a_cookie(tokens_only: httpx.AsyncClient) -> None:
    response = await tokens_only.get(VERIFY, headers={"authorization": f"Bearer {token()}"})
    assert response.status_code == 200


async def test_a_percent_encoded_bearer_token_is_decoded(tokens_only: httpx.AsyncClient) -> None:
    encoded = token().replace(".", "%2E")
    response = await tokens_only.get(VERIFY, headers={"authorization": f"Bearer {encoded}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "Bearer %E0%A4%A",
        "Bearer %",
        "Bearer %FF",
        "bearer {t}",
        "Token {t}",
        "Bearer",
        "Bearer  {t}",
    ],
)
async def test_a_bearer_header_that_does_not_decode_is_401_never_500(
    tokens_only: httpx.AsyncClient, header: str
) -> None:
    response = await tokens_only.get(VERIFY, headers={"authorization": header.format(t=token())})
    assert response.status_code == 401


async def test_a_session_cookie_takes_precedence_over_a_bearer_token(
    tokens_only: httpx.AsyncClient,
) -> None:
    headers = {**cookie("garbage"), "authorization": f"Bearer {token()}"}
    assert (await tokens_only.get(VERIFY, headers=headers)).status_code == 401


# --- Envoy ext_authz (HTTP service): original method and path under the prefix, 200 only ------


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PATCH", "PROPFIND"])
async def test_envoy_shaped_requests_with_the_original_path_are_200(
    tokens_only: httpx.AsyncClient, method: str
) -> None:
    # Envoy forwards Host, :method, :path, Content-Length and (via allowed_headers) Cookie.
    response = await tokens_only.request(
        method,
        f"{VERIFY}/orders/42/items?page=2",
        headers={**cookie(token()), "content-length": "0"},
    )
    assert response.status_code == 200  # exactly 200: Envoy treats 202/204 as a denial
    assert response.headers["x-auth-request-role"] == "ADMIN"


async def test_envoy_shaped_request_without_a_session_is_401(
    tokens_only: httpx.AsyncClient,
) -> None:
    assert (await tokens_only.delete(f"{VERIFY}/orders/42")).status_code == 401


async def test_policy_parameters_on_the_envoy_path_are_refused(
    tokens_only: httpx.AsyncClient,
) -> None:
    response = await tokens_only.get(
        f"{VERIFY}/orders?allowed_roles=CUSTOMER", headers=cookie(token())
    )
    assert response.status_code == 400


# --- Traefik ForwardAuth: GET with the original request in X-Forwarded-* ----------------------


TRAEFIK = {
    "x-forwarded-method": "POST",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "shop.example.com",
    "x-forwarded-uri": "/admin/orders?sort=desc",
    "x-forwarded-for": "203.0.113.7",
}


async def test_traefik_shaped_request_is_200_with_identity(tokens_only: httpx.AsyncClient) -> None:
    response = await tokens_only.get(
        VERIFY, params={"allowed_roles": "ADMIN"}, headers={**TRAEFIK, **cookie(token())}
    )
    assert response.status_code == 200
    assert response.headers["x-auth-request-email"] == "ana@example.com"


async def test_traefik_shaped_request_failing_the_policy_is_403(
    tokens_only: httpx.AsyncClient,
) -> None:
    response = await tokens_only.get(
        VERIFY, params={"allowed_roles": "STAFF"}, headers={**TRAEFIK, **cookie(token())}
    )
    assert response.status_code == 403


async def test_the_log_names_the_forwarded_client_only_for_a_trusted_proxy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="authsvc")
    app = create_app(make_settings(trusted_proxies="10.0.0.0/8"))
    async with (
        await make_client(app, "10.1.1.1") as trusted,
        await make_client(app, "198.51.100.9") as untrusted,
    ):
        await trusted.get(VERIFY, headers=TRAEFIK)
        await untrusted.get(VERIFY, headers=TRAEFIK)
    lines = [r.getMessage() for r in caplog.records if r.name == "authsvc.verify"]
    assert lines == [
        "verify unauthenticated POST /admin/orders user=- client=203.0.113.7",
        "verify unauthenticated GET /api/auth/verify user=- client=198.51.100.9",
    ]


# --- database use ----------------------------------------------------------------------------


async def test_a_token_with_a_role_runs_no_sql(
    client: httpx.AsyncClient, sql_statements: StatementCounter
) -> None:
    response = await client.get(VERIFY, headers=cookie(token()))
    assert response.status_code == 200
    assert sql_statements.count == 0


@pytest.fixture
async def staff(app: AuthService) -> UserRecord:
    user: UserRecord = await app.services.users.create(
        email="sam@example.com", name="Sam", role=Role.STAFF
    )
    return user


async def test_a_token_without_a_role_gets_it_from_one_lookup(
    client: httpx.AsyncClient, staff: UserRecord, sql_statements: StatementCounter
) -> None:
    legacy = CODEC.encode({"sub": staff.id, "email": staff.email}, 600)
    response = await client.get(VERIFY, params={"allowed_roles": "STAFF"}, headers=cookie(legacy))
    assert response.status_code == 200
    assert response.headers["x-auth-request-user"] == staff.id
    assert sql_statements.count == 1


async def test_a_token_without_a_role_for_an_unknown_user_is_401(
    client: httpx.AsyncClient,
) -> None:
    legacy = CODEC.encode({"sub": "gone", "email": "gone@example.com"}, 600)
    assert (await client.get(VERIFY, headers=cookie(legacy))).status_code == 401


async def test_a_token_without_a_role_is_401_when_the_database_is_unreachable() -> None:
    settings = make_settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none")
    app = create_app(settings)
    legacy = CODEC.encode({"sub": "u1", "email": "ana@example.com"}, 600)
    async with await make_client(app) as http:
        response = await http.get(VERIFY, headers=cookie(legacy))
    assert response.status_code == 401


# --- failures fail closed ----------------------------------------------------------------------


async def broken_jwt(params: JwtParams) -> dict[str, Any]:
    raise RuntimeError(f"boom {SECRET}")


async def jwt_returning_a_list(params: JwtParams) -> Any:
    return [params.token]


@pytest.mark.parametrize("callback", [broken_jwt, jwt_returning_a_list])
async def test_a_failing_jwt_callback_fails_closed_with_a_401(
    caplog: pytest.LogCaptureFixture, callback: Any
) -> None:
    app = create_app(make_settings(), callbacks=Callbacks(jwt=callback))
    async with await make_client(app) as http:
        response = await http.get(VERIFY, headers=cookie(token()))
    assert (response.status_code, response.json()) == (401, {"message": "no valid session"})
    assert response.headers["cache-control"] == "no-store"
    assert [r.message for r in caplog.records if r.name == "authsvc.callbacks"] == [
        "jwt callback failed: RuntimeError"
        if callback is broken_jwt
        else "jwt callback returned list, not a dict: no session"
    ]
    assert SECRET not in caplog.text and "eyJ" not in caplog.text
    await app.services.database.dispose()


async def test_a_failing_token_codec_is_a_500_not_an_allow(
    tokens_only: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(self: TokenCodec, raw: str, now: float | None = None) -> None:
        raise ValueError("decrypt exploded")

    monkeypatch.setattr(TokenCodec, "decode", explode)
    assert (await tokens_only.get(VERIFY, headers=cookie(token()))).status_code == 500


async def test_verify_is_not_answered_by_the_next_auth_fallback(
    tokens_only: httpx.AsyncClient,
) -> None:
    response = await tokens_only.post(VERIFY)
    assert response.headers["content-type"] == "application/json"
    assert "not supported by NextAuth.js" not in response.text


# --- cookie refresh (off by default) ------------------------------------------------------------


async def test_verify_sets_no_cookie_by_default(tokens_only: httpx.AsyncClient) -> None:
    response = await tokens_only.get(VERIFY, headers=cookie(token()))
    assert response.headers.get_list("set-cookie") == []


@pytest.fixture
async def refreshing() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(verify_refresh=True))
    async with await make_client(app) as http:
        yield http
    await app.services.database.dispose()


async def test_refresh_reissues_the_cookie_with_a_fresh_expiry(
    refreshing: httpx.AsyncClient,
) -> None:
    old = CODEC.encode(ANA, 600, now=time.time() - 300)
    response = await refreshing.get(VERIFY, headers=cookie(old))
    [set_cookie] = response.headers.get_list("set-cookie")
    new = CODEC.decode(set_cookie.split(";")[0].split("=", 1)[1])
    assert new is not None and new["exp"] - new["iat"] == 30 * 86400
    assert "; Expires=" in set_cookie and "HttpOnly" in set_cookie


async def test_refresh_never_sets_a_cookie_for_a_bearer_token(
    refreshing: httpx.AsyncClient,
) -> None:
    response = await refreshing.get(VERIFY, headers={"authorization": f"Bearer {token()}"})
    assert response.status_code == 200
    assert response.headers.get_list("set-cookie") == []
