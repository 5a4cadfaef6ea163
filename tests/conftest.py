"""Shared fixtures: settings, real databases (SQLite and PostgreSQL), the app and a client.

PostgreSQL is required: a missing server fails the run rather than skipping tests.
Set AUTHSVC_TEST_POSTGRES to point elsewhere (default: postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event, text

from authsvc.app import AuthService, create_app
from authsvc.migrations import upgrade
from authsvc.settings import Settings
from authsvc.users.models import Role
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import UserRecord

if TYPE_CHECKING:
    from tests.node_oracle import NextAuth

SECRET = "test-secret-do-not-use-in-production-0123456789"
OTHER_SECRET = "a-completely-different-secret-9876543210"
BASE = "http://localhost:3000"
# RFC 6265 §6.1: browsers need keep no more than 4096 bytes per cookie, name and attributes
# included; a longer Set-Cookie may be dropped without a word, and the session with it.
MAX_SET_COOKIE_BYTES = 4096
# Recorded vectors, transcripts and corpora (tests/data/README.md says where each came from).
DATA = Path(__file__).resolve().parent / "data"
PG_ADMIN_DSN = os.environ.get("AUTHSVC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "secret": SECRET,
        "url": BASE,
        "database_url": "sqlite+aiosqlite:///:memory:",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values).check()


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "vectors" / "vectors.json").read_text())
    return data


@pytest.fixture(scope="session")
def vector(vectors: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in vectors["vectors"]}


@pytest.fixture(scope="session")
async def postgres_database() -> AsyncIterator[str]:
    """A throw-away PostgreSQL database for this run, migrated to head."""
    name = f"authsvc_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is required for the tests ({PG_ADMIN_DSN}): {exc}")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    await asyncio.to_thread(upgrade, url)
    yield url
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database-backed test runs on a fresh SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'authsvc.db'}"
        upgrade(url)
        return url
    postgres_url: str = request.getfixturevalue("postgres_database")
    return postgres_url


@pytest.fixture(scope="session")
def hasher() -> PasswordHasher:
    return PasswordHasher()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
async def app(settings: Settings, hasher: PasswordHasher) -> AsyncIterator[AuthService]:
    application = create_app(settings, hasher=hasher)
    database = application.services.database
    if settings.database_url.startswith("postgresql"):
        async with database.engine.begin() as conn:
            await conn.execute(text("TRUNCATE users CASCADE"))
    yield application
    await database.dispose()


async def _set_cookies_fit_a_browser(response: httpx.Response) -> None:
    for line in response.headers.get_list("set-cookie"):
        size = len(line.encode())
        assert size <= MAX_SET_COOKIE_BYTES, f"a browser may drop this {size}-byte Set-Cookie"


def asgi_client(app: AuthService, base_url: str = BASE) -> httpx.AsyncClient:
    """A client of `app` in-process; every Set-Cookie it receives must fit in a browser."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=base_url,
        event_hooks={"response": [_set_cookies_fit_a_browser]},
    )


@pytest.fixture
async def client(app: AuthService) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as http:
        yield http


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, *args: Any) -> None:
        self.statements.append(str(args[2]))

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def sql_statements(app: AuthService) -> Iterator[StatementCounter]:
    """Every SQL statement the app sends from now on."""
    counter = StatementCounter()
    engine = app.services.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", counter)
    yield counter
    event.remove(engine, "before_cursor_execute", counter)


@asynccontextmanager
async def app_client(
    settings: Settings, hasher: PasswordHasher, base_url: str = BASE
) -> AsyncIterator[httpx.AsyncClient]:
    """A client for a second app, built from other settings than the `app` fixture's."""
    application = create_app(settings, hasher=hasher)
    async with asgi_client(application, base_url) as http:
        yield http
    await application.services.database.dispose()


async def add_user(app: AuthService, email: str, password: str, **fields: Any) -> UserRecord:
    """A user who signs in with this password (role ADMIN unless `role` says otherwise)."""
    user: UserRecord = await app.services.users.create(
        email=email,
        password_hash=await app.services.hasher.hash(password),
        **{"role": Role.ADMIN, **fields},
    )
    return user


@asynccontextmanager
async def throwaway_postgres(prefix: str = "authsvc_empty") -> AsyncIterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; yields its plain
    `postgresql://` DSN, as Prisma and hosting platforms write DATABASE_URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is required for the tests ({PG_ADMIN_DSN}): {exc}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def empty_postgres() -> AsyncIterator[str]:
    """A fresh empty PostgreSQL database for one test (its plain `postgresql://` DSN)."""
    async with throwaway_postgres() as dsn:
        yield dsn


@pytest.fixture(scope="session")
def next_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NextAuth]:
    """The real next-auth, as a Node process that lives for the whole run."""
    from tests.node_oracle import NextAuth, oracle_process  # imports this module

    with oracle_process("oracle.js", "next-auth", tmp_path_factory.mktemp("oracle")) as process:
        yield NextAuth(process, "next-auth")


@pytest.fixture
async def example_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """What an example reads when it builds its app: a secret, a URL, a migrated SQLite."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'authsvc.db'}"
    await asyncio.to_thread(upgrade, url)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("NEXTAUTH_URL", BASE)
    monkeypatch.setenv("DATABASE_URL", url)
    return url
