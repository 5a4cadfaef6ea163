"""docs/customising.md, run as written: each `python` block is a module whose `app` is
signed in to, its `dotenv` blocks are one environment (placeholders `<…>` filled in), and
its `sh` command is what it says it is."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from authsvc.app import AuthService, create_app
from authsvc.settings import load_settings
from authsvc.tokens import TokenCodec
from authsvc.users.models import Role
from tests.conftest import BASE, SECRET
from tests.processes import ROOT, run_authsvc

DOC = ROOT / "docs" / "customising.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PASSWORD = "correct-horse-battery"


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(DOC.read_text()) if lang == language]


def module(name: str) -> str:
    """The python block that starts with `# <name>`."""
    [code] = [code for code in blocks("python") if code.startswith(f"# {name}\n")]
    return code


async def app_of(name: str) -> AsyncIterator[AuthService]:
    namespace: dict[str, Any] = {"__name__": name}
    exec(compile(module(name), name, "exec"), namespace)  # noqa: S102 - our own documentation
    app: AuthService = namespace["app"]
    yield app
    await app.services.aclose()


@pytest.fixture
async def shop_auth(example_environment: str) -> AsyncIterator[AuthService]:
    async for app in app_of("shop_auth.py"):
        yield app


@pytest.fixture
async def shop_events(example_environment: str) -> AsyncIterator[AuthService]:
    async for app in app_of("shop_events.py"):
        yield app


async def add_user(app: AuthService, email: str, role: Role = Role.CUSTOMER) -> None:
    hashed = await app.services.hasher.hash(PASSWORD)
    await app.services.users.create(email=email, password_hash=hashed, role=role)


def browser(app: AuthService, base: str = BASE) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


async def sign_in(client: httpx.AsyncClient, email: str, **extra: str) -> httpx.Response:
    csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    form = {"csrfToken": csrf, "email": email, "password": PASSWORD, **extra}
    return await client.post("/api/auth/callback/credentials", data=form)


async def test_the_callbacks_example_adds_its_claim_and_keeps_the_role(
    shop_auth: AuthService,
) -> None:
    await add_user(shop_auth, "ana@shop.de", Role.ADMIN)
    async with browser(shop_auth) as client:
        await sign_in(client, "ana@shop.de")
        user = (await client.get("/api/auth/session")).json()["user"]
        verify = await client.get("/api/auth/verify")
    assert (user["locale"], user["role"]) == ("de-DE", "ADMIN")
    assert (verify.status_code, verify.headers["x-auth-request-role"]) == (200, "ADMIN")


async def test_the_callbacks_example_refuses_a_blocked_address(shop_auth: AuthService) -> None:
    await add_user(shop_auth, "eve@blocked.example")
    async with browser(shop_auth) as client:
        response = await sign_in(client, "eve@blocked.example")
        assert "next-auth.session-token" not in client.cookies
    assert "error=AccessDenied" in response.headers["location"]


async def test_the_callbacks_example_lets_a_sign_in_return_to_the_blog(
    shop_auth: AuthService,
) -> None:
    await add_user(shop_auth, "ana@shop.de")
    post = "https://blog.example.com/posts/1"
    async with browser(shop_auth) as client:
        blog = await sign_in(client, "ana@shop.de", callbackUrl=post)
        elsewhere = await sign_in(client, "ana@shop.de", callbackUrl="https://evil.example/")
    assert (blog.headers["location"], elsewhere.headers["location"]) == (post, BASE)


async def test_the_events_example_hears_sign_in_and_sign_out(
    shop_events: AuthService, caplog: pytest.LogCaptureFixture
) -> None:
    await add_user(shop_events, "ana@example.com")
    caplog.set_level(logging.INFO, logger="shop.events")
    async with browser(shop_events) as client:
        await sign_in(client, "ana@example.com")
        user = (await client.get("/api/auth/session")).json()["user"]
        csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
        await client.post("/api/auth/signout", data={"csrfToken": csrf})
    heard = [r.getMessage() for r in caplog.records if r.name == "shop.events"]
    assert heard == [f"signed in: {user['id']} via credentials", f"signed out: {user['id']}"]


def documented_environment() -> dict[str, str]:
    """Every `dotenv` block, placeholders filled in."""
    values: dict[str, str] = {}
    for block in blocks("dotenv"):
        for line in block.splitlines():
            name, _, value = line.partition("=")
            values[name] = f"test-{name.lower()}" if value.startswith("<") else value
    return values


@pytest.fixture
async def configured(
    example_environment: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AuthService]:
    for name, value in documented_environment().items():
        monkeypatch.setenv(name, value)
    app = create_app(load_settings())
    yield app
    await app.services.aclose()


async def test_the_documented_pages_are_where_sign_in_and_errors_go(
    configured: AuthService,
) -> None:
    async with browser(configured, "https://shop.example.com") as client:
        signin = await client.get("/api/auth/signin", params={"callbackUrl": "/cart"})
        error = await client.get("/api/auth/error", params={"error": "Configuration"})
    assert signin.headers["location"].startswith("https://shop.example.com/login?")
    assert parse_qs(urlsplit(signin.headers["location"]).query)["callbackUrl"] == [
        "https://shop.example.com/cart"
    ]
    assert error.headers["location"] == "https://shop.example.com/login/problem?error=Configuration"


async def test_the_documented_session_is_a_day_long_secure_cookie_for_the_domain(
    configured: AuthService,
) -> None:
    await add_user(configured, "ana@example.com")
    async with browser(configured, "https://shop.example.com") as client:
        response = await sign_in(client, "ana@example.com")
    [cookie] = [
        c
        for c in response.headers.get_list("set-cookie")
        if c.startswith("__Secure-next-auth.session-token=")
    ]
    assert "Secure" in cookie and "Domain=shop.example.com" in cookie
    claims = TokenCodec([SECRET]).decode(cookie.split(";")[0].split("=", 1)[1])
    assert claims is not None and claims["exp"] - claims["iat"] == 86400


async def test_the_documented_providers_are_offered(configured: AuthService) -> None:
    async with browser(configured, "https://shop.example.com") as client:
        providers = (await client.get("/api/auth/providers")).json()
    assert set(providers) == {"credentials", "google", "github"}


def test_the_documented_command_serves_the_callbacks_module(tmp_path: Path) -> None:
    (tmp_path / "shop_auth.py").write_text(module("shop_auth.py"))
    [command] = blocks("sh")
    assert command.split()[:2] == ["authsvc", "serve"]
    with run_authsvc(tmp_path, public_url=BASE, args=command.split()[2:]) as server:
        server.cli("create-user", "--email", "ana@shop.de", "--password", PASSWORD)
        with httpx.Client(base_url=server.url) as client:
            csrf = client.get("/api/auth/csrf").json()["csrfToken"]
            form = {"csrfToken": csrf, "email": "ana@shop.de", "password": PASSWORD}
            client.post("/api/auth/callback/credentials", data=form)
            user = client.get("/api/auth/session").json()["user"]
    assert (user["locale"], user["role"]) == ("de-DE", "CUSTOMER")
