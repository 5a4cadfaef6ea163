"""The callbacks: the default pair (the storefront's design), and an application's own,
given to `create_app`, extending them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from authsvc.app import AuthService, create_app
from authsvc.callbacks import (
    Callbacks,
    JwtParams,
    SessionParams,
    SignInParams,
    default_jwt,
    default_redirect,
    default_session,
    default_sign_in,
)
from authsvc.deps import get_redirect_callback, get_session_callback, get_sign_in_callback
from authsvc.migrations import upgrade
from authsvc.tokens import Claims, TokenCodec
from authsvc.users.models import Role
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import UserRecord
from tests.conftest import BASE, SECRET, make_settings
from tests.fakes import InMemoryUsers, services_over

SESSION = "next-auth.session-token"
PASSWORD = "correct-horse-battery"
CODEC = TokenCodec([SECRET])

ANA = UserRecord(
    id="ckv1user0000000000000001",
    email="ana@example.com",
    name="Ana",
    image="https://example.com/a.png",
    role=Role.ADMIN,
    fundraiser_id=None,
)


async def jwt(users: InMemoryUsers, token: Claims, **params: Any) -> Claims:
    """The default jwt callback, over this user store."""
    return await default_jwt(JwtParams(token=token, services=services_over(users), **params))


async def test_sign_in_copies_id_role_fundraiser_and_avatar_from_the_user() -> None:
    users = InMemoryUsers()
    token = await jwt(users, {"sub": ANA.id}, user=ANA)
    assert token == {
        "sub": ANA.id,
        "id": ANA.id,
        "role": "ADMIN",
        "fundraiserId": None,
        "avatar": "https://example.com/a.png",
    }
    assert users.lookups == 0


async def test_token_with_a_role_is_used_as_is_without_a_lookup() -> None:
    users = InMemoryUsers(ANA)
    token = {"sub": ANA.id, "email": ANA.email, "role": "CUSTOMER"}
    assert await jwt(users, token) == token
    assert users.lookups == 0


async def test_token_without_a_role_is_completed_from_the_user_found_by_email() -> None:
    users = InMemoryUsers(ANA)
    token = await jwt(users, {"sub": ANA.id, "email": ANA.email})
    assert (token["role"], token["id"], users.lookups) == ("ADMIN", ANA.id, 1)


async def test_unknown_user_leaves_the_token_without_a_role() -> None:
    users = InMemoryUsers()
    token = await jwt(users, {"sub": "x", "email": "x@y.co"})
    assert "role" not in token


async def test_database_failure_during_the_lookup_fails_closed_on_the_role(
    caplog: pytest.LogCaptureFixture,
) -> None:
    users = InMemoryUsers(ANA, fail=True)
    token = await jwt(users, {"sub": ANA.id, "email": ANA.email})
    assert "role" not in token
    assert "OperationalError" in caplog.text


async def test_update_ignores_client_data_and_rereads_the_user() -> None:
    users = InMemoryUsers(ANA)
    token = await jwt(
        users,
        {"sub": ANA.id, "id": ANA.id, "role": "CUSTOMER", "name": "Old"},
        trigger="update",
        session={"role": "DEVELOPER", "name": "Mallory"},
    )
    assert (token["role"], token["name"]) == ("ADMIN", "Ana")


async def test_session_callback_maps_token_fields_onto_the_user() -> None:
    params = SessionParams(
        session={
            "user": {"name": "Ana", "email": ANA.email},
            "expires": "2026-12-28T00:00:00.000Z",
        },
        token={
            "sub": ANA.id,
            "id": ANA.id,
            "role": "FUNDRAISER",
            "fundraiserId": "fr_9",
            "avatar": "https://example.com/a.png",
            "name": "Ana",
        },
        services=services_over(InMemoryUsers()),
    )
    session = await default_session(params)
    assert session == {
        "user": {
            "name": "Ana",
            "email": ANA.email,
            "id": ANA.id,
            "role": "FUNDRAISER",
            "fundraiserId": "fr_9",
            "image": "https://example.com/a.png",
        },
        "expires": "2026-12-28T00:00:00.000Z",
    }


async def test_session_callback_leaves_out_an_unset_fundraiser_id() -> None:
    params = SessionParams(
        session={"user": {}, "expires": "x"},
        token={"sub": "u", "fundraiserId": None},
        services=services_over(InMemoryUsers()),
    )
    user = (await default_session(params))["user"]
    assert "fundraiserId" not in user and user["id"] == "u"


# --- an application's own callbacks, given to create_app -------------------------------------


async def tiered_jwt(params: JwtParams) -> Claims:
    """The documented way: the default first, then the application's claim."""
    token = await default_jwt(params)
    if params.user is not None:
        token["tier"] = "gold" if params.user.role is Role.ADMIN else "basic"
    return token


async def tiered_session(params: SessionParams) -> dict[str, Any]:
    session = await default_session(params)
    session["user"]["tier"] = params.token.get("tier")
    return session


@pytest.fixture
async def shop(tmp_path: Path, hasher: PasswordHasher) -> AsyncIterator[AuthService]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'authsvc.db'}"
    await asyncio.to_thread(upgrade, url)
    callbacks = Callbacks(jwt=tiered_jwt, session=tiered_session)
    app = create_app(
        make_settings(database_url=url, revocation=True, role_max_age=60),
        hasher=hasher,
        callbacks=callbacks,
    )
    await app.services.users.create(
        email=ANA.email, password_hash=await hasher.hash(PASSWORD), role=Role.ADMIN
    )
    yield app
    await app.services.aclose()


def browser(app: AuthService) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


async def sign_in(client: httpx.AsyncClient, **extra: str) -> httpx.Response:
    csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    form = {"email": ANA.email, "password": PASSWORD, "csrfToken": csrf, **extra}
    return await client.post("/api/auth/callback/credentials", data=form)


def claims_of(client: httpx.AsyncClient) -> Claims:
    claims = CODEC.decode(client.cookies[SESSION])
    assert claims is not None
    return claims


async def test_an_extended_jwt_callback_keeps_the_role_and_adds_its_claim(
    shop: AuthService,
) -> None:
    async with browser(shop) as client:
        await sign_in(client)
        verify = await client.get("/api/auth/verify")
        session = (await client.get("/api/auth/session")).json()
        claims = claims_of(client)
    assert (verify.status_code, verify.headers["x-auth-request-role"]) == (200, "ADMIN")
    assert (session["user"]["role"], session["user"]["tier"]) == ("ADMIN", "gold")
    assert (claims["tier"], claims["role"]) == ("gold", "ADMIN")
    assert "roleCheckedAt" in claims  # role freshness is on: stamped whatever the callback


async def test_an_extended_jwt_callback_keeps_the_missing_role_lookup(shop: AuthService) -> None:
    user = await shop.services.users.get_by_email(ANA.email)
    assert user is not None
    legacy = CODEC.encode({"sub": user.id, "email": ANA.email, "authTime": 0}, 600)
    async with browser(shop) as client:
        verify = await client.get("/api/auth/verify", headers={"cookie": f"{SESSION}={legacy}"})
    assert (verify.status_code, verify.headers["x-auth-request-role"]) == (200, "ADMIN")


async def test_an_extended_jwt_callback_keeps_update_and_revocation(shop: AuthService) -> None:
    async with browser(shop) as client:
        await sign_in(client)
        await shop.services.users.set_role(ANA.email, Role.STAFF)
        csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
        updated = (await client.post("/api/auth/session", json={"csrfToken": csrf})).json()
        assert updated["user"]["role"] == "STAFF"
        assert claims_of(client)["tier"] == "gold"  # the claim made at sign-in stays
        revocation = shop.services.revocation
        assert revocation is not None
        await revocation.revoke(claims_of(client)["id"], shop.services.users)
        assert (await client.get("/api/auth/verify")).status_code == 401


async def test_a_sign_in_callback_sees_the_user_and_the_posted_credentials(
    shop: AuthService,
) -> None:
    seen: list[SignInParams] = []

    async def only_gold(params: SignInParams) -> bool:
        seen.append(params)
        return params.user is not None and params.user.role is Role.ADMIN

    shop.dependency_overrides[get_sign_in_callback] = lambda: only_gold
    async with browser(shop) as client:
        assert (await sign_in(client)).status_code == 302
    [params] = seen
    assert params.account.provider == "credentials" and params.credentials is not None
    assert (params.user.email if params.user else None, params.credentials["email"]) == (
        ANA.email,
        ANA.email,
    )


@pytest.mark.parametrize(
    ("answer", "location"),
    [
        (False, f"{BASE}/api/auth/error?error=AccessDenied"),
        ("/blocked", f"{BASE}/blocked"),
        ("https://evil.example/", BASE),
        (None, f"{BASE}/api/auth/error?error=AccessDenied"),
    ],
)
async def test_a_sign_in_callback_that_says_no_leaves_no_session(
    shop: AuthService, answer: object, location: str
) -> None:
    async def refuse(params: SignInParams) -> Any:
        return answer

    shop.dependency_overrides[get_sign_in_callback] = lambda: refuse
    async with browser(shop) as client:
        response = await sign_in(client)
        json_mode = await sign_in(client, json="true")
    assert (response.status_code, response.headers["location"]) == (302, location)
    assert json_mode.json() == {"url": location}
    assert SESSION not in client.cookies


async def test_a_session_callback_returning_the_wrong_type_is_no_session_and_keeps_the_cookie(
    shop: AuthService, caplog: pytest.LogCaptureFixture
) -> None:
    async def wrong(params: SessionParams) -> Any:
        return "Ana"

    shop.dependency_overrides[get_session_callback] = lambda: wrong
    async with browser(shop) as client:
        await sign_in(client)
        response = await client.get("/api/auth/session")
        assert (await client.get("/api/auth/verify")).status_code == 200
    assert response.json() == {}
    assert not response.headers.get_list("set-cookie")
    assert "session callback returned str, not a dict: no session" in caplog.text


async def test_a_redirect_callback_decides_where_the_sign_in_goes(shop: AuthService) -> None:
    def to_account(url: str, base_url: str) -> str:
        return f"{base_url}/account"

    shop.dependency_overrides[get_redirect_callback] = lambda: to_account
    async with browser(shop) as client:
        response = await sign_in(client, callbackUrl="/cart")
    assert response.headers["location"] == f"{BASE}/account"


def test_callbacks_left_out_are_the_defaults() -> None:
    callbacks = Callbacks(jwt=tiered_jwt)
    assert (callbacks.session, callbacks.sign_in, callbacks.redirect) == (
        default_session,
        default_sign_in,
        default_redirect,
    )
