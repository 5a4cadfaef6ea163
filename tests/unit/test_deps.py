"""Dependency overrides: one resolution for every route, the hot `/verify` included.

An override may have any FastAPI signature (`Request`, sub-dependencies, `def`, `async
def`, `yield`); whatever it replaces is replaced everywhere that part is used: on `/verify`
(a plain ASGI handler), `/session`, sign-in, the default jwt callback's role lookup and
revocation.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, Request

from authsvc.app import AuthService, create_app
from authsvc.callbacks import JwtCallback, JwtParams, default_jwt
from authsvc.deps import get_jwt_callback, get_settings, get_user_repository
from authsvc.migrations import upgrade
from authsvc.tokens import Claims, TokenCodec
from authsvc.users.models import Role
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import UserRecord, UserRepository
from tests.conftest import BASE, SECRET, make_settings

SESSION = "next-auth.session-token"
PASSWORD = "correct-horse-battery"
CODEC = TokenCodec([SECRET])
VERIFY = "/api/auth/verify"


@pytest.fixture
async def app(tmp_path: Path, hasher: PasswordHasher) -> AsyncIterator[AuthService]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'authsvc.db'}"
    await asyncio.to_thread(upgrade, url)
    application = create_app(make_settings(database_url=url, revocation=True), hasher=hasher)
    yield application
    await application.services.aclose()


@pytest.fixture
async def client(app: AuthService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


@pytest.fixture
async def ana(app: AuthService) -> UserRecord:
    return await app.services.users.create(
        email="ana@example.com",
        password_hash=await app.services.hasher.hash(PASSWORD),
        role=Role.STAFF,
    )


def cookie(**claims: Any) -> dict[str, str]:
    return {"cookie": f"{SESSION}={CODEC.encode(claims, 600)}"}


async def sign_in(client: httpx.AsyncClient, **headers: str) -> httpx.Response:
    csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    form = {"email": "ana@example.com", "password": PASSWORD, "csrfToken": csrf}
    return await client.post("/api/auth/callback/credentials", data=form, headers=headers)


class CountingUsers:
    """The app's own store, counting what each request asked of it."""

    def __init__(self, users: UserRepository, asked: list[str], tenant: str) -> None:
        self._users = users
        self._asked = asked
        self._tenant = tenant

    def __getattr__(self, name: str) -> Any:
        self._asked.append(f"{self._tenant}:{name}")
        return getattr(self._users, name)


def tenant(request: Request) -> str:
    """A sub-dependency, as a plain `def` (FastAPI runs it in its thread pool)."""
    return request.headers.get("x-tenant", "none")


# --- an override that needs the request -----------------------------------------------------


@pytest.fixture
def tenant_jwt(app: AuthService) -> None:
    """A jwt callback chosen per request from a header, through a sub-dependency."""

    async def for_tenant(request: Request, name: Annotated[str, Depends(tenant)]) -> JwtCallback:
        assert request.url.path.startswith("/api/auth/")

        async def jwt(params: JwtParams) -> Claims:
            token = await default_jwt(params)
            token["tenant"] = name
            if name == "support":
                token["role"] = "STAFF"
            return token

        return jwt

    app.dependency_overrides[get_jwt_callback] = for_tenant


@pytest.mark.usefixtures("tenant_jwt")
async def test_a_request_taking_override_works_on_sign_in_session_and_verify(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    signed_in = await sign_in(client, **{"x-tenant": "shop"})
    assert signed_in.status_code == 302
    token = CODEC.decode(client.cookies[SESSION])
    assert token is not None and token["tenant"] == "shop"
    session = await client.get("/api/auth/session", headers={"x-tenant": "support"})
    assert session.json()["user"]["role"] == "STAFF"
    verify = await client.get(VERIFY, headers={"x-tenant": "support"})
    assert (verify.status_code, verify.headers["x-auth-request-role"]) == (200, "STAFF")
    verify = await client.get(VERIFY, headers={"x-tenant": "shop"})
    assert (verify.status_code, verify.headers["x-auth-request-role"]) == (200, "STAFF")
    verify = await client.get(VERIFY, params={"allowed_roles": "ADMIN"})
    assert verify.status_code == 403


async def test_a_plain_def_override_taking_the_request_works_on_verify(
    app: AuthService, client: httpx.AsyncClient, ana: UserRecord
) -> None:
    def for_request(request: Request) -> JwtCallback:
        async def jwt(params: JwtParams) -> Claims:
            return {**(await default_jwt(params)), "role": request.headers["x-role"]}

        return jwt

    app.dependency_overrides[get_jwt_callback] = for_request
    claims = {"sub": ana.id, "id": ana.id, "email": ana.email, "role": "CUSTOMER", "authTime": 0}
    response = await client.get(VERIFY, headers={**cookie(**claims), "x-role": "WHOLESALE"})
    assert (response.status_code, response.headers["x-auth-request-role"]) == (200, "WHOLESALE")


async def test_a_yield_override_is_cleaned_up_after_the_verify_answer(
    app: AuthService, client: httpx.AsyncClient, ana: UserRecord
) -> None:
    steps: list[str] = []

    async def scoped(request: Request) -> AsyncIterator[UserRepository]:
        steps.append("open")
        yield app.services.users
        steps.append("close")

    app.dependency_overrides[get_user_repository] = scoped
    claims = {"sub": ana.id, "id": ana.id, "email": ana.email, "authTime": 0}
    response = await client.get(VERIFY, headers=cookie(**claims))
    assert (response.status_code, steps) == (200, ["open", "close"])


async def test_a_failing_override_on_verify_is_a_bare_500(
    app: AuthService, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: Request) -> UserRepository:
        raise RuntimeError(f"boom {SECRET}")

    app.dependency_overrides[get_user_repository] = broken
    response = await client.get(VERIFY, headers=cookie(sub="u1", role="ADMIN", email="a@b.co"))
    assert (response.status_code, response.json()) == (500, {"message": "internal error"})
    assert "verify failed: RuntimeError" in caplog.text and SECRET not in caplog.text


# --- the user store, everywhere ---------------------------------------------------------------


@pytest.fixture
def asked(app: AuthService) -> list[str]:
    """Every use of the user store, by the tenant the request named."""
    calls: list[str] = []

    async def per_tenant(name: Annotated[str, Depends(tenant)]) -> UserRepository:
        return CountingUsers(app.services.users, calls, name)

    app.dependency_overrides[get_user_repository] = per_tenant
    return calls


async def test_an_overridden_store_signs_in(
    client: httpx.AsyncClient, ana: UserRecord, asked: list[str]
) -> None:
    response = await sign_in(client, **{"x-tenant": "eu"})
    assert response.status_code == 302
    assert "eu:get_by_email" in asked


async def test_an_overridden_store_answers_the_role_lookup_on_verify_and_session(
    client: httpx.AsyncClient, ana: UserRecord, asked: list[str]
) -> None:
    no_role = cookie(sub=ana.id, id=ana.id, email=ana.email, authTime=0)
    verify = await client.get(VERIFY, headers={**no_role, "x-tenant": "eu"})
    assert (verify.status_code, verify.headers["x-auth-request-role"]) == (200, "STAFF")
    session = await client.get("/api/auth/session", headers={**no_role, "x-tenant": "us"})
    assert session.json()["user"]["role"] == "STAFF"
    # Revocation asks the store by id once, then caches the answer for its TTL.
    assert asked == ["eu:get_by_id", "eu:get_by_email", "us:get_by_email"]


async def test_an_overridden_store_decides_revocation(
    app: AuthService, client: httpx.AsyncClient, ana: UserRecord
) -> None:
    class Gone:
        async def get_by_id(self, user_id: str) -> None:
            return None

    app.dependency_overrides[get_user_repository] = lambda: Gone()
    claims = {"sub": ana.id, "id": ana.id, "email": ana.email, "role": "STAFF", "authTime": 0}
    assert (await client.get(VERIFY, headers=cookie(**claims))).status_code == 401
    del app.dependency_overrides[get_user_repository]
    assert app.services.revocation is not None
    app.services.revocation._cache.clear()  # the first answer is cached for the TTL
    assert (await client.get(VERIFY, headers=cookie(**claims))).status_code == 200


# --- resolved once when it can be --------------------------------------------------------------


async def test_an_override_without_parameters_is_called_once(
    app: AuthService, client: httpx.AsyncClient, ana: UserRecord
) -> None:
    calls: list[int] = []

    async def jwt(params: JwtParams) -> Claims:
        return {**(await default_jwt(params)), "role": "DEVELOPER"}

    def once() -> JwtCallback:
        calls.append(1)
        return jwt

    app.dependency_overrides[get_jwt_callback] = once
    claims = {"sub": ana.id, "id": ana.id, "email": ana.email, "role": "STAFF", "authTime": 0}
    for _ in range(3):
        response = await client.get(VERIFY, headers=cookie(**claims))
        assert response.headers["x-auth-request-role"] == "DEVELOPER"
    session = await client.get("/api/auth/session", headers=cookie(**claims))
    assert (session.json()["user"]["role"], calls) == ("DEVELOPER", [1])
    assert app.resolver.services is not None  # no per-request resolution was needed


async def test_a_once_resolved_override_is_kept_while_other_overrides_come_and_go(
    app: AuthService, client: httpx.AsyncClient, ana: UserRecord
) -> None:
    calls: list[int] = []

    def once() -> JwtCallback:
        calls.append(1)
        return default_jwt

    claims = {"sub": ana.id, "id": ana.id, "email": ana.email, "role": "STAFF", "authTime": 0}
    app.dependency_overrides[get_jwt_callback] = once
    assert (await client.get(VERIFY, headers=cookie(**claims))).status_code == 200
    # A route's own dependency: the frontend's hot routes leave the request to FastAPI.
    app.dependency_overrides[tenant] = lambda: "eu"
    assert (await client.get(VERIFY, headers=cookie(**claims))).status_code == 200
    assert app.resolver.services is not None and app.resolver.direct is None
    del app.dependency_overrides[tenant]
    assert (await client.get(VERIFY, headers=cookie(**claims))).status_code == 200
    assert app.resolver.direct is app.resolver.services is not None
    assert (app.resolver.services.callbacks.jwt, calls) == (default_jwt, [1])


async def test_removing_the_overrides_restores_the_app_as_built(
    app: AuthService, client: httpx.AsyncClient, ana: UserRecord
) -> None:
    async def demote(params: JwtParams) -> Claims:
        return {**params.token, "role": "CUSTOMER"}

    def per_request(request: Request) -> JwtCallback:
        return demote

    claims = {"sub": ana.id, "id": ana.id, "email": ana.email, "role": "STAFF", "authTime": 0}
    for override in (lambda: demote, per_request):
        app.dependency_overrides[get_jwt_callback] = override
        assert (await client.get(VERIFY, headers=cookie(**claims))).headers[
            "x-auth-request-role"
        ] == "CUSTOMER"
        app.dependency_overrides.clear()
        response = await client.get(VERIFY, headers=cookie(**claims))
        assert response.headers["x-auth-request-role"] == "STAFF"
        assert app.resolver.services is app.services


async def test_an_override_may_depend_on_another_getter(
    app: AuthService, client: httpx.AsyncClient, ana: UserRecord
) -> None:
    """Getters read the container as built, never the resolved one: no cycle."""
    seen: list[object] = []

    async def users_for(settings: Annotated[Any, Depends(get_settings)]) -> UserRepository:
        seen.append(settings)
        return app.services.users

    app.dependency_overrides[get_user_repository] = users_for
    no_role = cookie(sub=ana.id, id=ana.id, email=ana.email, authTime=0)
    response = await client.get(VERIFY, headers=no_role)
    assert (response.status_code, seen) == (200, [app.services.settings])
