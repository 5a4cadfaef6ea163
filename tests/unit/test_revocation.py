"""Opt-in revocation ("sign out everywhere", deleted users) and role freshness (issue 6)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from authsvc.app import AuthService, create_app
from authsvc.callbacks import JwtParams, default_jwt
from authsvc.cli import run
from authsvc.freshness import RoleFreshness
from authsvc.lookups import BoundedLookups
from authsvc.revocation import RevocationCheck, now_ms
from authsvc.tokens import TokenCodec
from authsvc.users.models import Role, User
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import UserRecord
from tests.conftest import BASE, SECRET, StatementCounter, make_settings
from tests.fakes import InMemoryUsers, services_over

SESSION = "next-auth.session-token"
PASSWORD = "correct-horse-battery"
CODEC = TokenCodec([SECRET])


def lookups(timeout: float = 1) -> BoundedLookups:
    return BoundedLookups(timeout=timeout, slots=10, background_limit=10)


ANA = UserRecord(id="u-ana", email="ana@example.com", name="Ana", role=Role.ADMIN)


@pytest.fixture
async def revoking(database_url: str, hasher: PasswordHasher) -> AsyncIterator[AuthService]:
    app = create_app(
        # A generous lookup deadline: these tests are about revocation, not about timeouts
        # (tests/e2e/test_faults.py bounds the wait), and CI machines can be slow.
        make_settings(
            database_url=database_url,
            revocation=True,
            revocation_cache_ttl=60,
            session_lookup_timeout=5,
        ),
        hasher=hasher,
    )
    async with app.services.database.engine.begin() as conn:
        await conn.execute(delete(User))
    yield app
    await app.services.database.dispose()


def browser(app: AuthService) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


async def sign_in(app: AuthService, client: httpx.AsyncClient) -> UserRecord:
    user: UserRecord = await app.services.users.create(
        email="ana@example.com",
        password_hash=await app.services.hasher.hash(PASSWORD),
        role=Role.STAFF,
    )
    csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    await client.post(
        "/api/auth/callback/credentials",
        data={"email": "ana@example.com", "password": PASSWORD, "csrfToken": csrf},
    )
    assert client.cookies.get(SESSION)
    return user


async def test_a_cookie_copied_before_sign_out_stops_working_everywhere(
    revoking: AuthService,
) -> None:
    async with browser(revoking) as client:
        await sign_in(revoking, client)
        stolen = client.cookies[SESSION]
        csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
        await client.post("/api/auth/signout", data={"csrfToken": csrf})
        client.cookies.clear()
        replay = {"cookie": f"{SESSION}={stolen}"}
        assert (await client.get("/api/auth/verify", headers=replay)).status_code == 401
        assert (await client.get("/api/auth/session", headers=replay)).json() == {}


async def test_signing_in_again_after_revocation_works(revoking: AuthService) -> None:
    async with browser(revoking) as client:
        user = await sign_in(revoking, client)
        assert revoking.services.revocation is not None
        await revoking.services.revocation.revoke(user.id, revoking.services.users)
        assert (await client.get("/api/auth/session")).json() == {}
        csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
        await client.post(
            "/api/auth/callback/credentials",
            data={"email": "ana@example.com", "password": PASSWORD, "csrfToken": csrf},
        )
        assert (await client.get("/api/auth/session")).json()["user"]["id"] == user.id


async def test_a_deleted_user_loses_access(revoking: AuthService) -> None:
    async with browser(revoking) as client:
        user = await sign_in(revoking, client)
        async with revoking.services.database.engine.begin() as conn:
            await conn.execute(delete(User).where(User.id == user.id))
        revoking.services.revocation._cache.clear()  # type: ignore[union-attr]  # as if the cache entry had expired
        assert (await client.get("/api/auth/verify")).status_code == 401


async def test_the_revocation_lookup_is_cached(
    revoking: AuthService, sql_statements: StatementCounter
) -> None:
    async with browser(revoking) as client:
        await sign_in(revoking, client)
        await client.get("/api/auth/verify")
        before = sql_statements.count
        for _ in range(5):
            assert (await client.get("/api/auth/verify")).status_code == 200
        assert sql_statements.count == before


async def test_a_revocation_check_that_cannot_reach_the_database_fails_closed() -> None:
    check = RevocationCheck(ttl=30, lookups=lookups(0.1))
    users = InMemoryUsers(ANA, fail=True)
    assert not await check.allows({"sub": ANA.id, "authTime": now_ms()}, users)


async def test_a_failed_lookup_within_one_more_ttl_uses_the_state_read_last() -> None:
    # Found by the fleet test (bench/fleet.py): a PostgreSQL restart, or lookups late under
    # load, signed out everyone whose cached state expired meanwhile.
    users = InMemoryUsers(ANA)
    check = RevocationCheck(ttl=0.2, lookups=lookups(0.1))
    claims = {"sub": ANA.id, "authTime": now_ms()}
    assert await check.allows(claims, users)
    await asyncio.sleep(0.25)
    users.fail = True
    assert await check.allows(claims, users)


async def test_during_an_outage_many_expired_states_cost_one_read_not_one_each() -> None:
    # Found by the fleet test: while PostgreSQL restarted, every request whose cached state
    # had expired sent its own connection attempt.
    people = [
        UserRecord(id=f"u-{n}", email=f"p{n}@example.com", name="P", role=Role.CUSTOMER)
        for n in range(20)
    ]
    users = InMemoryUsers(*people)
    check = RevocationCheck(ttl=0.2, lookups=lookups(0.1))
    began = now_ms()
    for person in people:
        assert await check.allows({"sub": person.id, "authTime": began}, users)
    await asyncio.sleep(0.25)
    users.fail, before = True, users.lookups
    for person in people:
        assert await check.allows({"sub": person.id, "authTime": began}, users)
    assert users.lookups - before == 1


async def test_a_session_whose_revocation_state_cannot_be_read_is_refused_but_kept(
    revoking: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by the fleet test: a replica's first lookup for a user, late under load, cleared
    # the cookie, so a blip signed people out for good.
    async def unreachable(user_id: str) -> UserRecord | None:
        raise OSError("connection refused")

    async with browser(revoking) as client:
        await sign_in(revoking, client)
        revoking.services.revocation._cache.clear()  # type: ignore[union-attr]  # a fresh replica
        monkeypatch.setattr(revoking.services.users, "get_by_id", unreachable)
        session = await client.get("/api/auth/session")
        verify = await client.get("/api/auth/verify")
    assert (session.json(), verify.status_code) == ({}, 401)
    assert not any(SESSION in header for header in session.headers.get_list("set-cookie"))


async def test_a_failed_lookup_past_one_more_ttl_fails_closed() -> None:
    users = InMemoryUsers(ANA)
    check = RevocationCheck(ttl=0.1, lookups=lookups(0.1))
    claims = {"sub": ANA.id, "authTime": now_ms()}
    assert await check.allows(claims, users)
    await asyncio.sleep(0.25)
    users.fail = True
    assert not await check.allows(claims, users)


async def test_a_failed_lookup_after_a_revocation_here_fails_closed() -> None:
    users = InMemoryUsers(ANA)
    check = RevocationCheck(ttl=0.2, lookups=lookups(0.1))
    claims = {"sub": ANA.id, "authTime": now_ms()}
    assert await check.allows(claims, users)
    await asyncio.sleep(0.002)
    await check.revoke(ANA.id, users)
    users.fail = True
    assert not await check.allows(claims, users)


async def test_a_token_started_before_the_revocation_is_refused_and_a_later_one_allowed() -> None:
    users = InMemoryUsers(ANA)
    check = RevocationCheck(ttl=30, lookups=lookups(1))
    before = now_ms()
    await asyncio.sleep(0.002)
    await check.revoke(ANA.id, users)
    await asyncio.sleep(0.002)
    assert not await check.allows({"sub": ANA.id, "authTime": before}, users)
    assert await check.allows({"sub": ANA.id, "authTime": now_ms()}, users)


async def test_a_next_auth_token_without_auth_time_is_judged_by_its_iat() -> None:
    users = InMemoryUsers(ANA)
    check = RevocationCheck(ttl=30, lookups=lookups(1))
    await check.revoke(ANA.id, users)
    assert not await check.allows({"sub": ANA.id, "iat": int(time.time()) - 60}, users)


async def test_revocation_is_off_by_default(database_url: str, hasher: PasswordHasher) -> None:
    app = create_app(make_settings(database_url=database_url), hasher=hasher)
    assert app.services.revocation is None
    await app.services.database.dispose()


def test_the_cli_revokes_a_users_sessions(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cli.db")
    assert run(["create-user", "--email", "bo@example.com", "--password", PASSWORD]) == 0
    assert run(["revoke-sessions", "--email", "bo@example.com"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert run(["revoke-sessions", "--email", "nobody@example.com"]) == 1


# --- role freshness ----------------------------------------------------------------------


async def test_without_role_freshness_a_token_role_is_used_as_is() -> None:
    users = InMemoryUsers(ANA)
    params = JwtParams(token={"sub": ANA.id, "role": "CUSTOMER"}, services=services_over(users))
    token = await default_jwt(params)
    assert (token["role"], users.lookups) == ("CUSTOMER", 0)


async def test_a_stale_role_is_read_again_by_user_id() -> None:
    users = InMemoryUsers(ANA)
    stale = time.time() - 120
    token: dict[str, Any] = {
        "sub": ANA.id,
        "id": ANA.id,
        "role": "CUSTOMER",
        "roleCheckedAt": stale,
    }
    await RoleFreshness(max_age=60, lookups=lookups()).refresh(token, users)
    assert token["role"] == "ADMIN"
    assert time.time() - token["roleCheckedAt"] < 5


async def test_a_fresh_role_is_not_read_again() -> None:
    users = InMemoryUsers(ANA)
    token = {"sub": ANA.id, "role": "CUSTOMER", "roleCheckedAt": time.time() - 10}
    await RoleFreshness(max_age=60, lookups=lookups()).refresh(token, users)
    assert (token["role"], users.lookups) == ("CUSTOMER", 0)


async def test_the_role_lookup_is_cached_between_requests() -> None:
    users = InMemoryUsers(ANA)
    freshness = RoleFreshness(max_age=60, lookups=lookups())
    for _ in range(5):
        await freshness.refresh({"sub": ANA.id, "role": "CUSTOMER", "roleCheckedAt": 0}, users)
    assert users.lookups == 1


async def test_a_user_who_no_longer_exists_loses_the_role() -> None:
    token = {"sub": "gone", "role": "ADMIN", "roleCheckedAt": 0}
    await RoleFreshness(max_age=60, lookups=lookups()).refresh(token, InMemoryUsers())
    assert "role" not in token


async def test_a_failed_role_refresh_keeps_the_tokens_role() -> None:
    token = {"sub": ANA.id, "role": "STAFF", "roleCheckedAt": 0}
    await RoleFreshness(max_age=60, lookups=lookups()).refresh(token, InMemoryUsers(ANA, fail=True))
    assert token["role"] == "STAFF"


async def test_sign_in_records_when_the_role_was_read(
    database_url: str, hasher: PasswordHasher
) -> None:
    app = create_app(make_settings(database_url=database_url, role_max_age=60), hasher=hasher)
    async with app.services.database.engine.begin() as conn:
        await conn.execute(delete(User))
    async with browser(app) as client:
        await sign_in(app, client)
        claims = CODEC.decode(client.cookies[SESSION])
    assert claims is not None and time.time() - claims["roleCheckedAt"] < 5
    await app.services.database.dispose()


async def test_a_demoted_user_is_denied_by_verify_once_the_role_is_stale(
    database_url: str, hasher: PasswordHasher
) -> None:
    app = create_app(make_settings(database_url=database_url, role_max_age=60), hasher=hasher)
    async with app.services.database.engine.begin() as conn:
        await conn.execute(delete(User))
    user: UserRecord = await app.services.users.create(email="staff@example.com", role=Role.STAFF)
    old = CODEC.encode(
        {"sub": user.id, "id": user.id, "email": user.email, "role": "ADMIN", "roleCheckedAt": 0},
        600,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        response = await c.get(
            "/api/auth/verify",
            params={"allowed_roles": "ADMIN"},
            headers={"cookie": f"{SESSION}={old}"},
        )
    assert response.status_code == 403
    await app.services.database.dispose()


async def test_a_session_begun_in_the_same_millisecond_as_the_revocation_is_ended() -> None:
    users = InMemoryUsers(ANA)
    check = RevocationCheck(ttl=30, lookups=lookups(1))
    started = now_ms()
    await check.revoke(ANA.id, users)
    assert not await check.allows({"sub": ANA.id, "authTime": started}, users)


async def test_concurrent_checks_for_one_user_share_a_single_lookup() -> None:
    class SlowUsers(InMemoryUsers):
        async def get_by_id(self, user_id: str) -> UserRecord | None:
            await asyncio.sleep(0.05)
            return await super().get_by_id(user_id)

    users = SlowUsers(ANA)
    check = RevocationCheck(ttl=30, lookups=lookups(1))
    claims = {"sub": ANA.id, "authTime": now_ms()}
    results = await asyncio.gather(*(check.allows(claims, users) for _ in range(64)))
    assert all(results)
    assert users.lookups == 1
