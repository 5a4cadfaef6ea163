"""Frontends on another subdomain: the CORS allow-list and the shared cookie Domain."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from authsvc.app import AuthService, create_app
from authsvc.settings import Settings
from authsvc.users.models import Role
from tests.conftest import BASE, make_settings

API = "https://api.example.com"
SHOP = "https://shop.example.com"
EVIL = "https://evil.example"
PASSWORD = "correct-horse-battery"


@pytest.fixture
def settings(database_url: str) -> Settings:
    """shop.example.com calls api.example.com; both share the session cookie."""
    return make_settings(
        url=API, database_url=database_url, cors_origins=SHOP, cookie_domain="example.com"
    )


@pytest.fixture
async def api(app: AuthService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=API) as http:
        yield http


async def test_a_listed_origin_may_read_with_credentials(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/auth/session", headers={"origin": SHOP})
    assert response.headers["access-control-allow-origin"] == SHOP
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in response.headers["vary"]


async def test_an_unlisted_origin_gets_no_allow_origin(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/auth/session", headers={"origin": EVIL})
    assert "access-control-allow-origin" not in response.headers


async def test_a_preflight_from_a_listed_origin_is_allowed(api: httpx.AsyncClient) -> None:
    response = await api.options(
        "/api/auth/signout",
        headers={
            "origin": SHOP,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SHOP


async def test_a_preflight_from_an_unlisted_origin_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.options(
        "/api/auth/signout", headers={"origin": EVIL, "access-control-request-method": "POST"}
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_without_an_allow_list_no_origin_is_ever_allowed() -> None:
    app = create_app(make_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        response = await http.get("/api/auth/session", headers={"origin": SHOP})
    assert "access-control-allow-origin" not in response.headers


async def test_a_listed_origin_passes_the_csrf_origin_check(api: httpx.AsyncClient) -> None:
    csrf = (await api.get("/api/auth/csrf")).json()["csrfToken"]
    response = await api.post(
        "/api/auth/signout",
        data={"csrfToken": csrf, "json": "true"},
        headers={"origin": SHOP, "sec-fetch-site": "same-site"},
    )
    assert response.json() == {"url": API}


async def test_an_unlisted_origin_fails_the_csrf_origin_check(api: httpx.AsyncClient) -> None:
    csrf = (await api.get("/api/auth/csrf")).json()["csrfToken"]
    response = await api.post(
        "/api/auth/signout", data={"csrfToken": csrf, "json": "true"}, headers={"origin": EVIL}
    )
    assert response.json() == {"url": f"{API}/api/auth/signout?csrf=true"}


async def test_the_session_cookie_is_shared_with_the_parent_domain(
    app: AuthService, api: httpx.AsyncClient
) -> None:
    await app.services.users.create(
        email="ana@example.com",
        password_hash=await app.services.hasher.hash(PASSWORD),
        role=Role.ADMIN,
    )
    csrf_response = await api.get("/api/auth/csrf")
    form = {
        "email": "ana@example.com",
        "password": PASSWORD,
        "csrfToken": csrf_response.json()["csrfToken"],
    }
    response = await api.post("/api/auth/callback/credentials", data=form)
    session = [c for c in response.headers.get_list("set-cookie") if "session-token" in c]
    assert session and all("; Domain=example.com; " in c for c in session)
    csrf_cookie = csrf_response.headers.get_list("set-cookie")[0]
    assert csrf_cookie.startswith("__Host-") and "Domain" not in csrf_cookie
