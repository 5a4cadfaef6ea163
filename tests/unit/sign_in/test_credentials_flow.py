"""The email + password sign-in flow without HTTP (sign_in/credentials_flow.py), on the real
user store (SQLite and PostgreSQL) and the real Argon2id hasher.

What the route makes of each result (statuses, Retry-After, cookies) is tested over HTTP
in tests/unit/routes/test_auth.py, tests/unit/test_throttle.py and tests/e2e/test_faults.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import argon2
import bcrypt
import pytest

from authsvc.app import AuthService
from authsvc.callbacks import Callbacks, JwtParams, SignInParams
from authsvc.db import Database
from authsvc.events import Events, SignInEvent
from authsvc.services import Services
from authsvc.sign_in.credentials_flow import UNAVAILABLE_RETRY_AFTER, sign_in_with_password
from authsvc.sign_in.result import THROTTLED_ERROR, UNAVAILABLE_ERROR, SignedIn, SignInFailure
from authsvc.throttle import SignInThrottle
from authsvc.users.models import Role
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import SqlAlchemyUserRepository, UserRecord
from tests.conftest import make_settings
from tests.servers import free_port
from tests.unit.users.test_passwords import Argon2Spy

PASSWORD = "correct-horse-battery"
ADDRESS = "203.0.113.7"


@pytest.fixture
async def ana(app: AuthService) -> UserRecord:
    user: UserRecord = await app.services.users.create(
        email="ana@example.com",
        name="Ana",
        password_hash=await app.services.hasher.hash(PASSWORD),
        role=Role.ADMIN,
    )
    return user


def posted(email: str, password: str) -> dict[str, Any]:
    """The form as next-auth/react posts it (the flow ignores what it does not need)."""
    return {"email": email, "password": password, "csrfToken": "checked-by-the-route"}


def with_parts(services: Services, **parts: Any) -> Services:
    return dataclasses.replace(services, **parts)


async def test_the_right_password_gives_the_claims_and_the_sign_in_event(
    app: AuthService, ana: UserRecord
) -> None:
    outcome = await sign_in_with_password(
        posted("ANA@example.com", PASSWORD), ADDRESS, app.services
    )
    assert isinstance(outcome, SignedIn)
    assert outcome.claims["sub"] == ana.id
    assert outcome.claims["id"] == ana.id
    assert outcome.claims["email"] == "ana@example.com"
    assert outcome.claims["role"] == "ADMIN"
    assert outcome.event.user.id == ana.id
    assert outcome.event.account.provider == "credentials"
    assert outcome.event.account.type == "credentials"
    assert outcome.event.account.provider_account_id == ana.id


async def test_the_flow_tells_no_event_itself_the_route_does_once_the_session_is_issued(
    app: AuthService, ana: UserRecord
) -> None:
    told: list[SignInEvent] = []

    async def record(event: SignInEvent) -> None:
        told.append(event)

    services = with_parts(app.services, events=Events(sign_in=record))
    outcome = await sign_in_with_password(posted(ana.email, PASSWORD), ADDRESS, services)
    assert isinstance(outcome, SignedIn)
    assert told == []


@pytest.mark.parametrize(
    ("email", "password"),
    [("ana@example.com", "wrong-password"), ("nobody@example.com", PASSWORD), ("not-an-email", "")],
    ids=["wrong-password", "unknown-email", "invalid-email"],
)
async def test_a_wrong_password_and_an_unknown_account_are_the_same_failure(
    app: AuthService, ana: UserRecord, email: str, password: str
) -> None:
    outcome = await sign_in_with_password(posted(email, password), ADDRESS, app.services)
    assert outcome == SignInFailure("CredentialsSignin", "unknown email or wrong password")
    assert outcome.outcome == "failure"
    assert outcome.retry_after is None


@pytest.mark.parametrize("email", ["ana@example.com", "nobody@example.com"])
async def test_known_or_not_the_attempt_costs_one_full_argon2_verification(
    app: AuthService, ana: UserRecord, email: str
) -> None:
    """R29: the timing of a failure does not tell whether the account exists."""
    spy = Argon2Spy()
    services = with_parts(app.services, hasher=PasswordHasher(spy))
    outcome = await sign_in_with_password(posted(email, "wrong-password"), ADDRESS, services)
    assert isinstance(outcome, SignInFailure)
    real_cost = argon2.extract_parameters(await app.services.hasher.hash(PASSWORD))
    assert [parameters for parameters, _ in spy.verified] == [real_cost]


async def test_past_the_account_limit_the_attempt_is_refused_before_any_password_check(
    app: AuthService, ana: UserRecord
) -> None:
    spy = Argon2Spy()
    throttle = SignInThrottle.from_settings(make_settings(rate_limit_account="2/hour"))
    services = with_parts(app.services, hasher=PasswordHasher(spy), throttle=throttle)
    try:
        for _ in range(2):
            wrong = await sign_in_with_password(posted(ana.email, "nope-nope"), ADDRESS, services)
            assert isinstance(wrong, SignInFailure) and wrong.code == "CredentialsSignin"
        checks = len(spy.verified)
        outcome = await sign_in_with_password(posted(ana.email, PASSWORD), ADDRESS, services)
    finally:
        await throttle.aclose()
    assert isinstance(outcome, SignInFailure)
    assert outcome.code == THROTTLED_ERROR
    assert outcome.outcome == "throttled"
    assert outcome.retry_after is not None and 1 <= outcome.retry_after <= 3600
    assert len(spy.verified) == checks  # the right password was not even checked


async def test_a_user_store_that_cannot_answer_is_a_failure_to_try_again_later(
    app: AuthService,
) -> None:
    nowhere = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/test", timeout=1)
    users = SqlAlchemyUserRepository(nowhere.sessions, app.services.user_tables)
    try:
        outcome = await sign_in_with_password(
            posted("ana@example.com", PASSWORD), ADDRESS, with_parts(app.services, users=users)
        )
    finally:
        await nowhere.dispose()
    assert outcome == SignInFailure(
        UNAVAILABLE_ERROR, "user store unavailable", retry_after=UNAVAILABLE_RETRY_AFTER
    )
    assert outcome.outcome == "unavailable"


@pytest.mark.parametrize("answer", [False, "/blocked"], ids=["false", "a-url"])
async def test_a_refusing_sign_in_callback_is_access_denied_with_its_answer(
    app: AuthService, ana: UserRecord, answer: bool | str
) -> None:
    seen: list[SignInParams] = []

    async def refuse(params: SignInParams) -> bool | str:
        seen.append(params)
        return answer

    services = with_parts(app.services, callbacks=Callbacks(sign_in=refuse))
    form = posted(ana.email, PASSWORD)
    outcome = await sign_in_with_password(form, ADDRESS, services)
    assert outcome == SignInFailure("AccessDenied", "signIn callback refused", refusal=answer)
    assert outcome.outcome == "denied"
    [params] = seen
    assert params.user is not None and params.user.id == ana.id
    assert params.credentials == form
    assert params.account.provider == "credentials"


async def test_a_failing_jwt_callback_is_a_configuration_failure(
    app: AuthService, ana: UserRecord
) -> None:
    async def broken(params: JwtParams) -> dict[str, Any]:
        raise RuntimeError("boom")

    services = with_parts(app.services, callbacks=Callbacks(jwt=broken))
    outcome = await sign_in_with_password(posted(ana.email, PASSWORD), ADDRESS, services)
    assert outcome == SignInFailure("Configuration", "jwt callback failed")
    assert outcome.outcome == "failure"


async def test_a_legacy_bcrypt_hash_is_upgraded_only_when_the_settings_say_so(
    app: AuthService,
) -> None:
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    user = await app.services.users.create(email="bea@example.com", password_hash=legacy)
    kept = with_parts(app.services, settings=make_settings(password_rehash=False))
    assert isinstance(
        await sign_in_with_password(posted(user.email, PASSWORD), None, kept), SignedIn
    )
    stored = await app.services.users.get_by_id(user.id)
    assert stored is not None and stored.password_hash == legacy
    assert isinstance(
        await sign_in_with_password(posted(user.email, PASSWORD), None, app.services), SignedIn
    )
    upgraded = await app.services.users.get_by_id(user.id)
    assert upgraded is not None and upgraded.password_hash is not None
    assert upgraded.password_hash.startswith("$argon2id$")
