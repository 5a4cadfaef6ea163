"""The frontend's routes on the hot path answer exactly as the FastAPI routes do.

`/session`, `/csrf` and `/providers` are answered by `routes.frontend` before FastAPI's
machinery; every answer here is compared with what FastAPI's own route (all middleware
included) answers the same request. Only what is random or depends on the clock differs:
the session token and a freshly minted CSRF token, the Expires date and `expires`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request

from authsvc.app import AuthService, create_app
from authsvc.csrf import CsrfState
from authsvc.migrations import upgrade
from authsvc.routes.context import AuthContext, auth_context, build_context
from authsvc.tokens import TokenCodec
from authsvc.users.passwords import PasswordHasher
from tests.conftest import BASE, SECRET, add_user, asgi_client, make_settings

SESSION = "next-auth.session-token"
CSRF = "next-auth.csrf-token"
CALLBACK = "next-auth.callback-url"
CODEC = TokenCodec([SECRET])
# Set-Cookie values that are new on every answer.
RANDOM_VALUES = (SESSION, CSRF)


@pytest.fixture
async def app(tmp_path: Path, hasher: PasswordHasher) -> AsyncIterator[AuthService]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'authsvc.db'}"
    await asyncio.to_thread(upgrade, url)
    application = create_app(make_settings(database_url=url), hasher=hasher)
    yield application
    await application.services.database.dispose()


@pytest.fixture
async def browser(app: AuthService) -> dict[str, str]:
    """A signed-in browser: session, CSRF and callback-url cookies as authsvc set them."""
    user = await add_user(app, "ana@example.com", "correct-horse-battery")
    token = CODEC.encode(
        {"sub": user.id, "id": user.id, "email": user.email, "role": "ADMIN"}, 3600
    )
    async with asgi_client(app) as http:
        answer = await http.get("/api/auth/csrf")
    jar = {name: value for name, value in _set_cookies(answer)}
    return {SESSION: token, **jar, "csrfToken": answer.json()["csrfToken"]}


def _set_cookies(answer: httpx.Response) -> list[tuple[str, str]]:
    pairs = []
    for line in answer.headers.get_list("set-cookie"):
        name, _, rest = line.partition("=")
        pairs.append((name, rest.split(";", 1)[0]))
    return pairs


def _shape(answer: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    minted = dict(_set_cookies(answer)).get(CSRF)
    headers = []
    for name, value in answer.headers.multi_items():
        if name == "date":
            continue
        if name == "set-cookie":
            cookie, _, attributes = value.partition(";")
            cookie_name, _, cookie_value = cookie.partition("=")
            if cookie_name in RANDOM_VALUES and cookie_value:
                cookie_value = "<random>"
            attributes = re.sub(r"Expires=[^;]+", "Expires=<date>", attributes)
            value = f"{cookie_name}={cookie_value};{attributes}"
        headers.append((name, value))
    body: Any = answer.content
    if answer.headers.get("content-type", "").startswith("application/json"):
        body = json.loads(answer.content)
        if isinstance(body, dict) and isinstance(body.get("expires"), str):
            body["expires"] = re.sub(r"\d", "0", body["expires"])
        if isinstance(body, dict) and minted and minted.startswith(body.get("csrfToken", "-")):
            body["csrfToken"] = "<random>"  # the token of the CSRF cookie minted just now
    return answer.status_code, headers, body


async def _both(app: AuthService, method: str, path: str, **request: Any) -> list[Any]:
    """The answer of the app as served, and of FastAPI's own route, to the same request."""
    shapes = []
    for target in (app, app.through_fastapi):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=target), base_url=BASE
        ) as http:
            shapes.append(_shape(await http.request(method, path, **request)))
    return shapes


def _cookie_header(browser: dict[str, str], *names: str) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={browser[name]}" for name in names)}


SIGNED_IN = (SESSION, CSRF, CALLBACK)
SIGNED_OUT = (CSRF, CALLBACK)


@pytest.mark.parametrize(
    ("path", "cookies", "query"),
    [
        ("/api/auth/session", SIGNED_IN, ""),
        ("/api/auth/session", SIGNED_OUT, ""),
        ("/api/auth/session", (), ""),
        ("/api/auth/csrf", SIGNED_IN, ""),
        ("/api/auth/csrf", (), ""),
        ("/api/auth/csrf", SIGNED_OUT, "?callbackUrl=%2Forders%3Fpage%3D2"),
        ("/api/auth/csrf", SIGNED_OUT, "?callbackUrl=https%3A%2F%2Fevil.example%2F"),
        ("/api/auth/providers", SIGNED_IN, ""),
        ("/api/auth/providers", (), ""),
    ],
)
async def test_get_routes_answer_as_fastapis_route_does(
    app: AuthService, browser: dict[str, str], path: str, cookies: tuple[str, ...], query: str
) -> None:
    served, reference = await _both(
        app, "GET", path + query, headers=_cookie_header(browser, *cookies)
    )
    assert served == reference


async def test_an_invalid_session_cookie_is_cleared_as_fastapis_route_clears_it(
    app: AuthService, browser: dict[str, str]
) -> None:
    headers = {"Cookie": f"{SESSION}=not-a-token; {SESSION}.1=stale"}
    served, reference = await _both(app, "GET", "/api/auth/session", headers=headers)
    assert served == reference
    assert [line for _, line in served[1] if line.startswith(SESSION)]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", "valid"),
        ("application/x-www-form-urlencoded", "valid"),
        ("application/json", "no-csrf"),
        ("application/json", "{not json"),
        ("application/json", "[1, 2]"),
        ("text/plain", "hello"),
    ],
)
async def test_posting_the_session_answers_as_fastapis_route_does(
    app: AuthService, browser: dict[str, str], content_type: str, body: str
) -> None:
    if body == "valid" and content_type == "application/json":
        body = json.dumps({"csrfToken": browser["csrfToken"], "data": {"name": "x"}})
    elif body == "valid":
        body = f"csrfToken={browser['csrfToken']}"
    elif body == "no-csrf":
        body = json.dumps({"data": {}})
    headers = {**_cookie_header(browser, *SIGNED_IN), "Content-Type": content_type}
    served, reference = await _both(app, "POST", "/api/auth/session", headers=headers, content=body)
    assert served == reference


async def test_a_body_over_the_limit_is_refused_as_fastapis_route_refuses_it(
    app: AuthService, browser: dict[str, str]
) -> None:
    headers = {**_cookie_header(browser, *SIGNED_IN), "Content-Type": "application/json"}
    body = json.dumps({"csrfToken": browser["csrfToken"], "data": "x" * 70_000})
    served, reference = await _both(app, "POST", "/api/auth/session", headers=headers, content=body)
    assert served == reference
    assert served[0] == 413


async def test_a_cross_site_post_is_refused_as_fastapis_route_refuses_it(
    app: AuthService, browser: dict[str, str]
) -> None:
    headers = {
        **_cookie_header(browser, *SIGNED_IN),
        "Content-Type": "application/json",
        "Sec-Fetch-Site": "cross-site",
    }
    body = json.dumps({"csrfToken": browser["csrfToken"], "data": {}})
    served, reference = await _both(app, "POST", "/api/auth/session", headers=headers, content=body)
    assert served == reference
    assert served[0] == 400


async def test_methods_the_routes_do_not_serve_get_fastapis_answer(
    app: AuthService, browser: dict[str, str]
) -> None:
    for method, path in (("PUT", "/api/auth/session"), ("POST", "/api/auth/csrf")):
        served, reference = await _both(app, method, path)
        assert served == reference
        assert served[0] in (400, 405)


async def test_an_override_of_a_routes_own_dependency_applies_on_the_hot_routes(
    app: AuthService,
) -> None:
    async def pinned_csrf(request: Request) -> AuthContext:
        context = await build_context(request, app.services)
        context.csrf = CsrfState(token="pinned", trusted=True)
        return context

    app.dependency_overrides[auth_context] = pinned_csrf
    async with asgi_client(app) as http:
        answer = await http.get("/api/auth/csrf")
    assert answer.json() == {"csrfToken": "pinned"}


async def test_hot_routes_are_counted_under_their_route_in_the_metrics(
    app: AuthService, browser: dict[str, str]
) -> None:
    async with asgi_client(app) as http:
        await http.get("/api/auth/session", headers=_cookie_header(browser, *SIGNED_IN))
        metrics = (await http.get("/metrics")).text
    assert 'authsvc_http_requests_total{method="GET",route="/api/auth/session",status="200"}' in (
        metrics
    )
