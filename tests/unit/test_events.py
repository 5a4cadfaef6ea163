"""next-auth's `events`: told after the fact, with next-auth's payloads; never in the way.

OAuth's events (createUser, linkAccount, updateUser) are in tests/unit/sign_in/test_oauth_flow.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from authsvc.app import AuthService, create_app
from authsvc.events import (
    CreateUserEvent,
    Events,
    SessionEvent,
    SignInEvent,
    SignOutEvent,
    UpdateUserEvent,
)
from authsvc.logs import JsonFormatter
from authsvc.migrations import upgrade
from authsvc.tokens import TokenCodec
from authsvc.users.models import Role
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import UserRecord
from tests.conftest import BASE, SECRET, make_settings

SESSION = "next-auth.session-token"
PASSWORD = "correct-horse-battery"
CODEC = TokenCodec([SECRET])


class Recorder:
    """An Events whose every handler keeps what it was told."""

    def __init__(self) -> None:
        self.told: list[Any] = []

    async def hear(self, event: Any) -> None:
        self.told.append(event)

    def events(self) -> Events:
        hear = self.hear
        return Events(
            sign_in=hear,
            sign_out=hear,
            create_user=hear,
            update_user=hear,
            link_account=hear,
            session=hear,
        )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def app(
    tmp_path: Path, hasher: PasswordHasher, recorder: Recorder
) -> AsyncIterator[AuthService]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'authsvc.db'}"
    await asyncio.to_thread(upgrade, url)
    application = create_app(
        make_settings(database_url=url), hasher=hasher, events=recorder.events()
    )
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
        role=Role.ADMIN,
    )


async def sign_in(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    form = {"email": "ana@example.com", "password": password, "csrfToken": csrf}
    return await client.post("/api/auth/callback/credentials", data=form)


async def sign_out(client: httpx.AsyncClient) -> httpx.Response:
    csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    return await client.post("/api/auth/signout", data={"csrfToken": csrf})


async def test_a_credentials_sign_in_tells_sign_in_with_the_user_and_account(
    client: httpx.AsyncClient, ana: UserRecord, recorder: Recorder
) -> None:
    assert (await sign_in(client)).status_code == 302
    [event] = recorder.told
    assert isinstance(event, SignInEvent)
    assert (event.user.id, event.account.provider, event.account.type) == (
        ana.id,
        "credentials",
        "credentials",
    )
    assert (event.is_new_user, event.profile) == (False, None)


async def test_a_failed_sign_in_tells_nothing(
    client: httpx.AsyncClient, ana: UserRecord, recorder: Recorder
) -> None:
    await sign_in(client, password="wrong-password")
    assert recorder.told == []


async def test_a_session_read_tells_session_with_what_was_answered(
    client: httpx.AsyncClient, ana: UserRecord, recorder: Recorder
) -> None:
    await sign_in(client)
    body = (await client.get("/api/auth/session")).json()
    event = recorder.told[-1]
    assert isinstance(event, SessionEvent)
    assert (event.session, event.token["id"]) == (body, ana.id)


async def test_verify_tells_no_session_event(
    client: httpx.AsyncClient, ana: UserRecord, recorder: Recorder
) -> None:
    await sign_in(client)
    assert (await client.get("/api/auth/verify")).status_code == 200
    assert [type(e) for e in recorder.told] == [SignInEvent]


async def test_sign_out_tells_sign_out_with_the_token(
    client: httpx.AsyncClient, ana: UserRecord, recorder: Recorder
) -> None:
    await sign_in(client)
    await sign_out(client)
    event = recorder.told[-1]
    assert isinstance(event, SignOutEvent)
    assert event.token is not None and event.token["id"] == ana.id


async def test_sign_out_with_a_broken_cookie_tells_sign_out_without_a_token(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    client.cookies.set(SESSION, "garbage")
    await sign_out(client)
    assert recorder.told == [SignOutEvent(token=None)]


async def test_sign_out_without_a_session_tells_nothing(
    client: httpx.AsyncClient, recorder: Recorder
) -> None:
    await sign_out(client)
    assert recorder.told == []


async def test_a_failing_handler_changes_nothing_for_the_user(
    tmp_path: Path, hasher: PasswordHasher, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(event: Any) -> None:
        raise RuntimeError(f"boom {SECRET}")

    url = f"sqlite+aiosqlite:///{tmp_path / 'authsvc.db'}"
    await asyncio.to_thread(upgrade, url)
    events = Events(sign_in=broken, session=broken, sign_out=broken)
    app = create_app(make_settings(database_url=url), hasher=hasher, events=events)
    await app.services.users.create(
        email="ana@example.com", password_hash=await hasher.hash(PASSWORD), role=Role.ADMIN
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        signed_in = await sign_in(client)
        session = await client.get("/api/auth/session")
        signed_out = await sign_out(client)
    assert (signed_in.status_code, signed_in.headers["location"]) == (302, BASE)
    assert SESSION in signed_in.headers.get("set-cookie", "")
    assert session.json()["user"]["role"] == "ADMIN"
    assert signed_out.status_code == 302
    failures = [r.getMessage() for r in caplog.records if r.name == "authsvc.events"]
    assert failures == [
        "signIn event handler failed: RuntimeError",
        "session event handler failed: RuntimeError",
        "signOut event handler failed: RuntimeError",
    ]
    assert SECRET not in caplog.text
    await app.services.aclose()


async def test_every_event_writes_one_audit_line_without_secrets(
    client: httpx.AsyncClient, ana: UserRecord, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="authsvc.audit")
    await sign_in(client)
    await client.get("/api/auth/session")
    await sign_out(client)
    audit = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "authsvc.audit"]
    assert audit == [
        ("INFO", f"signIn user={ana.id} provider=credentials new=False"),
        ("DEBUG", f"session user={ana.id}"),
        ("INFO", f"signOut user={ana.id}"),
    ]
    line = json.loads(JsonFormatter().format(caplog.records[-1]))
    assert (line["event"], line["user"]) == ("signOut", ana.id)
    assert SECRET not in caplog.text and "eyJ" not in caplog.text and PASSWORD not in caplog.text


async def test_an_event_without_a_handler_is_still_audited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="authsvc.audit")
    user = UserRecord(id="u1", email="a@example.com")
    await Events().emit(CreateUserEvent(user=user))
    await Events().emit(UpdateUserEvent(user=user))
    assert caplog.messages == ["createUser user=u1", "updateUser user=u1"]
