"""The built-in pages in a real browser: headless Chromium (Debian's) driven by Playwright.

A person opens the sign-in page, types an email and a password, and lands on the callback
URL signed in; a wrong password shows next-auth's message; signing out works. Screenshots
go to test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    async_playwright,
)

from authsvc.app import create_app
from authsvc.db import Database
from authsvc.migrations import upgrade
from authsvc.users.models import Role
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import SqlAlchemyUserRepository
from tests.conftest import make_settings
from tests.servers import free_port, serve_in_thread

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
# What a root, headless Chromium needs on a machine with no network beyond loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EMAIL = "ana@example.com"
PASSWORD = "correct-horse-battery"
FAILED = "Sign in failed. Check the details you provided are correct."


async def _add_person(database_url: str) -> None:
    database = Database(database_url)
    hasher = PasswordHasher()
    users = SqlAlchemyUserRepository(database.sessions)
    await users.create(
        email=EMAIL, name="Ana", password_hash=await hasher.hash(PASSWORD), role=Role.ADMIN
    )
    await database.dispose()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """authsvc under uvicorn on loopback, with one person who can sign in."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: `.ci/run` installs Debian's chromium package")
    database_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('browser') / 'authsvc.db'}"
    upgrade(database_url)
    asyncio.run(_add_person(database_url))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(make_settings(url=url, database_url=database_url))
    with serve_in_thread(app, port):
        yield url


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
def violations() -> list[str]:
    """Content-Security-Policy violations the browser reported."""
    return []


@pytest.fixture
async def page(chromium: Browser, violations: list[str]) -> AsyncIterator[Page]:
    """A fresh browser profile (no cookies)."""
    context: BrowserContext = await chromium.new_context()
    page = await context.new_page()

    def record(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", record)
    yield page
    await context.close()


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def session_of(page: Page, base: str) -> dict[str, object]:
    await page.goto(f"{base}/api/auth/session")
    body: dict[str, object] = json.loads(await page.inner_text("body"))
    return body


async def sign_in(page: Page, base: str, password: str) -> None:
    await page.goto(f"{base}/api/auth/signin?callbackUrl=%2Fapi%2Fauth%2Fsession")
    await page.get_by_label("Email").fill(EMAIL)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in with email").click()
    await page.wait_for_load_state()


async def test_a_person_signs_in_and_lands_on_the_callback_url_signed_in(
    page: Page, base: str
) -> None:
    await page.goto(f"{base}/api/auth/signin?callbackUrl=%2Fapi%2Fauth%2Fsession")
    await shot(page, "signin-page")
    await sign_in(page, base, PASSWORD)
    assert page.url == f"{base}/api/auth/session"
    await shot(page, "signed-in")
    session = json.loads(await page.inner_text("body"))
    assert session["user"]["email"] == EMAIL
    assert session["user"]["role"] == "ADMIN"


async def test_a_wrong_password_shows_the_sign_in_error(page: Page, base: str) -> None:
    await sign_in(page, base, "not-the-password")
    assert "/api/auth/signin?error=CredentialsSignin" in page.url
    alert = page.get_by_role("alert")
    assert await alert.inner_text() == FAILED
    await shot(page, "signin-error")
    assert await session_of(page, base) == {}


async def test_signing_out_from_the_built_in_page_ends_the_session(page: Page, base: str) -> None:
    await sign_in(page, base, PASSWORD)
    await page.goto(f"{base}/api/auth/signout")
    await shot(page, "signout-page")
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_load_state()
    assert await session_of(page, base) == {}


async def test_the_pages_render_under_their_content_security_policy(
    page: Page, base: str, violations: list[str]
) -> None:
    for path in ("/api/auth/signin", "/api/auth/signout", "/api/auth/error?error=AccessDenied"):
        await page.goto(base + path)
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(243, 244, 246)"  # the inline stylesheet was applied
    assert violations == []


# --- /docs with the network off ------------------------------------------------------------
# An air-gapped cluster: every request that would leave loopback is refused (and recorded).


@pytest.fixture
async def offline_page(page: Page) -> tuple[Page, list[str]]:
    """The page, with every request to a host other than this machine aborted."""
    left_the_machine: list[str] = []

    async def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            await route.continue_()
        else:
            left_the_machine.append(route.request.url)
            await route.abort("internetdisconnected")

    await page.route("**/*", only_loopback)
    return page, left_the_machine


async def test_the_api_docs_render_every_route_without_the_network(
    offline_page: tuple[Page, list[str]], base: str, violations: list[str]
) -> None:
    page, left_the_machine = offline_page
    response = await page.goto(f"{base}/docs")
    assert (
        response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    )
    await page.locator(".opblock").first.wait_for(timeout=15_000)
    await shot(page, "api-docs")
    paths = await page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/api/auth/session", "/api/auth/csrf", "/api/auth/verify", "/healthz"} <= {
        path.replace("\u200b", "") for path in paths
    }
    # Opening an operation renders its examples (highlighted code) under the same policy.
    await page.locator(".opblock-summary").filter(has_text="/api/auth/csrf").first.click()
    await page.locator(".opblock-body").first.wait_for(timeout=5_000)
    assert left_the_machine == []
    assert violations == []
