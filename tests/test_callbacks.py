"""The default jwt and session callbacks: the storefront's design."""

from __future__ import annotations

import pytest

from authsvc.callbacks import (
    DefaultJwtCallback,
    DefaultSessionCallback,
    JwtParams,
    SessionParams,
)
from authsvc.users.models import Role
from authsvc.users.repository import UserRecord
from tests.fakes import InMemoryUsers

ANA = UserRecord(
    id="ckv1user0000000000000001",
    email="ana@example.com",
    name="Ana",
    image="https://example.com/a.png",
    role=Role.ADMIN,
    fundraiser_id=None,
)


async def test_sign_in_copies_id_role_fundraiser_and_avatar_from_the_user() -> None:
    users = InMemoryUsers()
    token = await DefaultJwtCallback(users)(JwtParams(token={"sub": ANA.id}, user=ANA))
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
    assert await DefaultJwtCallback(users)(JwtParams(token=token)) == token
    assert users.lookups == 0


async def test_token_without_a_role_is_completed_from_the_user_found_by_email() -> None:
    users = InMemoryUsers(ANA)
    token = await DefaultJwtCallback(users)(JwtParams(token={"sub": ANA.id, "email": ANA.email}))
    assert (token["role"], token["id"], users.lookups) == ("ADMIN", ANA.id, 1)


async def test_unknown_user_leaves_the_token_without_a_role() -> None:
    users = InMemoryUsers()
    token = await DefaultJwtCallback(users)(JwtParams(token={"sub": "x", "email": "x@y.co"}))
    assert "role" not in token


async def test_database_failure_during_the_lookup_fails_closed_on_the_role(
    caplog: pytest.LogCaptureFixture,
) -> None:
    users = InMemoryUsers(ANA, fail=True)
    token = await DefaultJwtCallback(users)(JwtParams(token={"sub": ANA.id, "email": ANA.email}))
    assert "role" not in token
    assert "OperationalError" in caplog.text


async def test_update_ignores_client_data_and_rereads_the_user() -> None:
    users = InMemoryUsers(ANA)
    params = JwtParams(
        token={"sub": ANA.id, "id": ANA.id, "role": "CUSTOMER", "name": "Old"},
        trigger="update",
        session={"role": "DEVELOPER", "name": "Mallory"},
    )
    token = await DefaultJwtCallback(users)(params)
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
    )
    session = await DefaultSessionCallback()(params)
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
        session={"user": {}, "expires": "x"}, token={"sub": "u", "fundraiserId": None}
    )
    user = (await DefaultSessionCallback()(params))["user"]
    assert "fundraiserId" not in user and user["id"] == "u"
