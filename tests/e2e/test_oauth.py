"""OAuth sign-in end to end, against a real OpenID Connect provider process.

authsvc runs under uvicorn on loopback; the provider is oauth2-mock-server
(tests/node/idp.mjs). An httpx client plays the browser and follows every redirect:
sign-in POST → provider's authorize → authsvc's callback → the callback URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from authsvc.app import AuthService, create_app
from authsvc.db import Database
from authsvc.tokens import TokenCodec
from authsvc.users.models import Account, User
from authsvc.users.passwords import PasswordHasher
from tests.conftest import SECRET, make_settings
from tests.servers import free_port, node_idp, serve_in_thread

CODEC = TokenCodec([SECRET])


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with node_idp() as url:
        yield url


@dataclass
class Live:
    app: AuthService
    base: str
    database_url: str


async def _clean(database_url: str) -> None:
    database = Database(database_url)
    async with database.engine.begin() as conn:
        for table in ("accounts", "oauth_used_checks", "users"):
            await conn.exec_driver_sql(f"DELETE FROM {table}")  # noqa: S608 - fixed names
    await database.dispose()


async def _live(database_url: str, hasher: PasswordHasher, issuer: str, **extra: Any) -> Live:
    await _clean(database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(
        url=base,
        database_url=database_url,
        oidc={
            "issuer": issuer,
            "client_id": "authsvc-test",
            "client_secret": "oidc-client-secret",
            "name": "Company SSO",
        },
        google={
            "client_id": "google-client-id",
            "client_secret": "google-client-secret",
            "issuer": issuer,
        },
        **extra,
    )
    return Live(create_app(settings, hasher=hasher), base, database_url)


@pytest.fixture
async def live(database_url: str, hasher: PasswordHasher, issuer: str) -> AsyncIterator[Live]:
    server = await _live(database_url, hasher, issuer)
    with serve_in_thread(server.app, int(server.base.rsplit(":", 1)[1])):
        yield server


@pytest.fixture
async def live_linking(
    database_url: str, hasher: PasswordHasher, issuer: str
) -> AsyncIterator[Live]:
    server = await _live(database_url, hasher, issuer, link_accounts_by_email=True)
    with serve_in_thread(server.app, int(server.base.rsplit(":", 1)[1])):
        yield server


def new_browser(live: Live) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=live.base, follow_redirects=True, timeout=10)


async def browser_sign_in(
    browser: httpx.AsyncClient, live: Live, provider: str, hint: str = "ada@example.com"
) -> httpx.Response:
    """Click "sign in with <provider>" and follow the redirects to the session."""
    csrf = (await browser.get("/api/auth/csrf")).json()["csrfToken"]
    response = await browser.post(
        f"/api/auth/signin/{provider}",
        params={"login_hint": hint},
        data={"csrfToken": csrf, "callbackUrl": f"{live.base}/api/auth/session"},
    )
    return response


async def count(live: Live, model: type[Any]) -> int:
    database = Database(live.database_url)
    async with database.sessions() as session:
        total = await session.scalar(select(func.count()).select_from(model))
    await database.dispose()
    return int(total or 0)


async def test_person_signs_in_with_the_generic_oidc_provider_as_a_customer(live: Live) -> None:
    async with new_browser(live) as browser:
        response = await browser_sign_in(browser, live, "oidc")
        assert response.status_code == 200
        session = response.json()
        assert session["user"]["email"] == "ada@example.com"
        assert session["user"]["role"] == "CUSTOMER"
        token = browser.cookies.get("next-auth.session-token")
        claims = CODEC.decode(token or "")
        assert claims is not None
        assert claims["role"] == "CUSTOMER" and claims["id"] == session["user"]["id"]
    assert await count(live, User) == 1


async def test_google_pointed_at_a_local_issuer_signs_in(live: Live) -> None:
    async with new_browser(live) as browser:
        response = await browser_sign_in(browser, live, "google", hint="grace@example.com")
        assert response.json()["user"]["email"] == "grace@example.com"
        assert response.json()["user"]["image"].startswith("https://images.example.com/")


async def test_signing_in_twice_keeps_one_user_and_one_link(live: Live) -> None:
    async with new_browser(live) as first, new_browser(live) as second:
        one = await browser_sign_in(first, live, "oidc")
        two = await browser_sign_in(second, live, "oidc")
        assert one.json()["user"]["id"] == two.json()["user"]["id"]
    assert (await count(live, User), await count(live, Account)) == (1, 1)


async def test_check_cookies_are_cleared_on_the_callback(live: Live) -> None:
    async with new_browser(live) as browser:
        await browser_sign_in(browser, live, "oidc")
        names = {cookie.name for cookie in browser.cookies.jar}
    assert "next-auth.session-token" in names
    assert not names & {"next-auth.state", "next-auth.pkce.code_verifier", "next-auth.nonce"}


async def test_authorization_request_carries_state_pkce_and_nonce(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.base) as browser:
        csrf = (await browser.get("/api/auth/csrf")).json()["csrfToken"]
        response = await browser.post(
            "/api/auth/signin/oidc",
            params={"prompt": "consent", "redirect_uri": "https://evil.example/cb"},
            data={"csrfToken": csrf},
        )
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["redirect_uri"] == [f"{live.base}/api/auth/callback/oidc"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["state"][0]) == 43 and len(query["nonce"][0]) == 43
    assert query["prompt"] == ["consent"]
    assert query["scope"] == ["openid email profile"]
    set_cookies = response.headers.get_list("set-cookie")
    for name in ("next-auth.state", "next-auth.pkce.code_verifier", "next-auth.nonce"):
        cookie = next(c for c in set_cookies if c.startswith(f"{name}="))
        assert "Max-Age=900" in cookie and "HttpOnly" in cookie


async def test_sign_in_in_json_mode_answers_the_authorization_url(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.base) as browser:
        csrf = (await browser.get("/api/auth/csrf")).json()["csrfToken"]
        response = await browser.post(
            "/api/auth/signin/google", data={"csrfToken": csrf, "json": "true"}
        )
    assert response.status_code == 200
    assert urlsplit(response.json()["url"]).path == "/authorize"


async def test_providers_lists_the_enabled_oauth_providers(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.base) as browser:
        providers = (await browser.get("/api/auth/providers")).json()
    assert providers["oidc"]["name"] == "Company SSO"
    assert providers["google"]["type"] == "oauth"
    assert providers["google"]["callbackUrl"] == f"{live.base}/api/auth/callback/google"


async def test_same_email_through_another_provider_is_not_linked(live: Live) -> None:
    async with new_browser(live) as first, new_browser(live) as second:
        await browser_sign_in(first, live, "oidc")
        response = await browser_sign_in(second, live, "google")
        assert response.url.path == "/api/auth/signin"
        assert response.url.params["error"] == "OAuthAccountNotLinked"
        assert "next-auth.session-token" not in second.cookies
    assert await count(live, User) == 1


async def test_linking_by_verified_email_joins_the_same_user(live_linking: Live) -> None:
    async with new_browser(live_linking) as first, new_browser(live_linking) as second:
        one = await browser_sign_in(first, live_linking, "oidc")
        two = await browser_sign_in(second, live_linking, "google")
        assert one.json()["user"]["id"] == two.json()["user"]["id"]
    assert (await count(live_linking, User), await count(live_linking, Account)) == (1, 2)
