"""The session path: token → jwt callback → session callback, and a new session's claims."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from authsvc.callbacks import Account, Callbacks, JwtParams, SessionParams
from authsvc.dependencies import OwnServices
from authsvc.freshness import ROLE_CHECKED_AT, RoleFreshness
from authsvc.revocation import RevocationCheck
from authsvc.session import (
    default_session_user,
    iso_expires,
    resolve_session,
    resolve_token,
    session_owner,
    sign_in_claims,
)
from authsvc.users.models import Role
from authsvc.users.repository import UserRecord
from tests.fakes import InMemoryUsers, services_over

NOW = 1_790_000_000.0
MAX_AGE = 30 * 24 * 60 * 60
ANA = UserRecord("u1", "ana@shop.example.com", "Ana", "https://img.example/ana.png", Role.ADMIN)
ACCOUNT = Account(provider="credentials", type="credentials", provider_account_id="u1")
SESSION_CLAIMS = {"sub": "u1", "id": "u1", "email": ANA.email, "role": "ADMIN", "authTime": 0}


async def keep_token(params: JwtParams) -> dict[str, Any]:
    return dict(params.token)


def services(callbacks: Callbacks | None = None, *users: UserRecord) -> OwnServices:
    return services_over(InMemoryUsers(*users), callbacks or Callbacks(jwt=keep_token))


def sealed(svc: OwnServices, claims: dict[str, Any] | None = None) -> str:
    return svc.codec.encode(claims or SESSION_CLAIMS, MAX_AGE, now=NOW)


# --- the pieces ------------------------------------------------------------------------------


def test_expiry_is_written_like_javascripts_to_iso_string() -> None:
    assert iso_expires(1_790_000_000.25, 60) == "2026-09-21T14:14:20.250Z"


def test_the_default_session_user_takes_name_email_and_picture_as_image() -> None:
    claims = {"sub": "u1", "name": "Ana", "email": "a@b.c", "picture": "p.png", "role": "X"}
    assert default_session_user(claims) == {"name": "Ana", "email": "a@b.c", "image": "p.png"}


def test_the_default_session_user_leaves_out_what_the_token_lacks() -> None:
    assert default_session_user({"sub": "u1", "email": "a@b.c"}) == {"email": "a@b.c"}


def test_the_session_owner_is_the_id_before_the_subject() -> None:
    assert session_owner({"id": "from-id", "sub": "from-sub"}) == "from-id"


def test_the_session_owner_falls_back_to_the_subject() -> None:
    assert session_owner({"sub": "from-sub"}) == "from-sub"


def test_a_missing_session_or_a_non_string_id_has_no_owner() -> None:
    assert [session_owner(None), session_owner({"id": 7})] == [None, None]


# --- the token -------------------------------------------------------------------------------


async def test_no_token_is_no_session() -> None:
    outcome = await resolve_token(None, services(), now=NOW)
    assert outcome.kind == "none"


async def test_a_token_that_does_not_decode_is_an_invalid_session() -> None:
    outcome = await resolve_token("not.a.token", services(), now=NOW)
    assert (outcome.kind, outcome.token) == ("invalid", None)


async def test_a_valid_token_goes_through_the_jwt_callback() -> None:
    async def add_claim(params: JwtParams) -> dict[str, Any]:
        return {**params.token, "added": True}

    svc = services(Callbacks(jwt=add_claim))
    outcome = await resolve_token(sealed(svc), svc, now=NOW)
    assert outcome.kind == "valid"
    assert outcome.token is not None and outcome.token["added"] is True
    assert outcome.decoded is not None and "added" not in outcome.decoded


async def test_an_update_hands_the_posted_data_to_the_jwt_callback() -> None:
    seen: list[tuple[object, object]] = []

    async def record(params: JwtParams) -> dict[str, Any]:
        seen.append((params.trigger, params.session))
        return dict(params.token)

    svc = services(Callbacks(jwt=record))
    await resolve_token(sealed(svc), svc, trigger="update", data={"x": 1}, now=NOW)
    assert seen == [("update", {"x": 1})]


async def test_a_jwt_callback_that_raises_fails_the_session_without_invalidating_it() -> None:
    async def broken(params: JwtParams) -> dict[str, Any]:
        raise RuntimeError("boom")

    svc = services(Callbacks(jwt=broken))
    outcome = await resolve_token(sealed(svc), svc, now=NOW)
    assert (outcome.kind, outcome.token) == ("failed", None)


async def test_a_revoked_session_is_invalid_before_the_jwt_callback_runs() -> None:
    called: list[bool] = []

    async def record(params: JwtParams) -> dict[str, Any]:
        called.append(True)
        return dict(params.token)

    revoked = dataclasses.replace(ANA, sessions_valid_after=1)
    svc = services(Callbacks(jwt=record), revoked)
    svc = dataclasses.replace(svc, revocation=RevocationCheck(ttl=60, lookups=svc.lookups))
    outcome = await resolve_token(sealed(svc), svc, now=NOW)
    assert (outcome.kind, called) == ("invalid", [])


async def test_a_session_whose_revocation_state_cannot_be_read_fails_but_is_kept() -> None:
    svc = services_over(InMemoryUsers(ANA, fail=True), Callbacks(jwt=keep_token))
    svc = dataclasses.replace(svc, revocation=RevocationCheck(ttl=60, lookups=svc.lookups))
    outcome = await resolve_token(sealed(svc), svc, now=NOW)
    assert outcome.kind == "failed"


async def test_a_stale_role_is_refreshed_after_the_jwt_callback() -> None:
    demoted = dataclasses.replace(ANA, role=Role.CUSTOMER)
    svc = services(None, demoted)
    svc = dataclasses.replace(svc, freshness=RoleFreshness(max_age=60, lookups=svc.lookups))
    stale = sealed(svc, {**SESSION_CLAIMS, ROLE_CHECKED_AT: 0})
    outcome = await resolve_token(stale, svc, now=NOW)
    assert outcome.token is not None and outcome.token["role"] == "CUSTOMER"


async def test_an_update_does_not_refresh_the_role() -> None:
    demoted = dataclasses.replace(ANA, role=Role.CUSTOMER)
    svc = services(None, demoted)
    svc = dataclasses.replace(svc, freshness=RoleFreshness(max_age=60, lookups=svc.lookups))
    stale = sealed(svc, {**SESSION_CLAIMS, ROLE_CHECKED_AT: 0})
    outcome = await resolve_token(stale, svc, trigger="update", now=NOW)
    assert outcome.token is not None and outcome.token["role"] == "ADMIN"


# --- the session -----------------------------------------------------------------------------


async def test_the_session_callback_gets_the_default_user_from_the_token_as_decoded() -> None:
    seen: list[dict[str, Any]] = []

    async def rename(params: JwtParams) -> dict[str, Any]:
        return {**params.token, "name": "Renamed"}

    async def record(params: SessionParams) -> dict[str, Any]:
        seen.append(params.session)
        return params.session

    svc = services(Callbacks(jwt=rename, session=record))
    await resolve_session(sealed(svc, {**SESSION_CLAIMS, "name": "Ana"}), svc, now=NOW)
    assert seen[0]["user"] == {"name": "Ana", "email": ANA.email}


async def test_the_session_expires_max_age_after_now() -> None:
    svc = services()
    outcome = await resolve_session(sealed(svc), svc, now=NOW)
    assert outcome.session is not None
    assert svc.settings.session_max_age == MAX_AGE
    assert outcome.session["expires"] == "2026-10-21T14:13:20.000Z"


async def test_the_session_is_what_the_session_callback_answers() -> None:
    async def shaped(params: SessionParams) -> dict[str, Any]:
        return {"who": params.token["sub"]}

    svc = services(Callbacks(jwt=keep_token, session=shaped))
    outcome = await resolve_session(sealed(svc), svc, now=NOW)
    assert (outcome.kind, outcome.session) == ("valid", {"who": "u1"})


async def test_a_session_callback_returning_the_wrong_type_fails_the_session() -> None:
    async def wrong(params: SessionParams) -> Any:
        return "not a dict"

    svc = services(Callbacks(jwt=keep_token, session=wrong))
    outcome = await resolve_session(sealed(svc), svc, now=NOW)
    assert (outcome.kind, outcome.session) == ("failed", None)


async def test_an_invalid_token_never_reaches_the_session_callback() -> None:
    called: list[bool] = []

    async def record(params: SessionParams) -> dict[str, Any]:
        called.append(True)
        return params.session

    svc = services(Callbacks(jwt=keep_token, session=record))
    outcome = await resolve_session("garbage", svc, now=NOW)
    assert (outcome.kind, called) == ("invalid", [])


# --- sign-in ---------------------------------------------------------------------------------


async def test_sign_in_claims_start_from_the_users_name_email_picture_and_subject() -> None:
    before = int(time.time() * 1000)
    claims = await sign_in_claims(services(), ANA, ACCOUNT)
    assert claims is not None
    assert {key: claims[key] for key in ("name", "email", "picture", "sub")} == {
        "name": "Ana",
        "email": ANA.email,
        "picture": ANA.image,
        "sub": "u1",
    }
    assert claims["authTime"] >= before


async def test_sign_in_hands_the_user_account_and_profile_to_the_jwt_callback() -> None:
    seen: list[JwtParams] = []

    async def record(params: JwtParams) -> dict[str, Any]:
        seen.append(params)
        return dict(params.token)

    await sign_in_claims(services(Callbacks(jwt=record)), ANA, ACCOUNT, profile={"login": "ana"})
    params = seen[0]
    assert (params.user, params.account, params.profile) == (ANA, ACCOUNT, {"login": "ana"})
    assert (params.trigger, params.is_new_user) == ("signIn", False)


async def test_a_new_users_sign_in_is_a_sign_up() -> None:
    seen: list[JwtParams] = []

    async def record(params: JwtParams) -> dict[str, Any]:
        seen.append(params)
        return dict(params.token)

    await sign_in_claims(services(Callbacks(jwt=record)), ANA, ACCOUNT, is_new_user=True)
    assert (seen[0].trigger, seen[0].is_new_user) == ("signUp", True)


async def test_the_default_jwt_callback_copies_the_role_at_sign_in() -> None:
    claims = await sign_in_claims(services(Callbacks()), ANA, ACCOUNT)
    assert claims is not None and (claims["id"], claims["role"]) == ("u1", "ADMIN")


async def test_a_failing_jwt_callback_at_sign_in_gives_no_claims() -> None:
    async def broken(params: JwtParams) -> dict[str, Any]:
        raise RuntimeError("boom")

    assert await sign_in_claims(services(Callbacks(jwt=broken)), ANA, ACCOUNT) is None


async def test_sign_in_stamps_when_the_role_was_read_when_roles_expire() -> None:
    svc = services(Callbacks())
    svc = dataclasses.replace(svc, freshness=RoleFreshness(max_age=60, lookups=svc.lookups))
    before = int(time.time())
    claims = await sign_in_claims(svc, ANA, ACCOUNT)
    assert claims is not None and claims[ROLE_CHECKED_AT] >= before
