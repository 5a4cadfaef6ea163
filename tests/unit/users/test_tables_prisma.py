"""AUTHSVC_USER_SCHEMA=prisma: authsvc on the storefront's own Prisma tables, as they are.

Every test runs on a fresh PostgreSQL database built by the storefront's Prisma migrations
(tests/data/prisma, applied as `prisma migrate deploy` would), holding rows as the
storefront wrote them: emails as typed, bcrypt hashes made by the npm package `bcryptjs`
in Node, OAuth-only users with an `accounts` row, columns authsvc does not know. The
storefront's own password check (next-auth's Credentials `authorize` with
`bcrypt.compare`) runs in Node against the same row.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from authsvc.app import AuthService, create_app
from authsvc.db import Database
from authsvc.migrations import upgrade
from authsvc.settings import ConfigError, Settings
from authsvc.users.models import Role
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import SqlAlchemyUserRepository
from authsvc.users.tables import own_state_metadata
from tests.conftest import BASE, make_settings, throwaway_postgres
from tests.node_oracle import Oracle, oracle_process
from tests.prisma import (
    PRISMA,
    fetch_row,
    fetch_rows,
    insert_storefront_account,
    insert_storefront_user,
    schema_snapshot,
    storefront_database,
)
from tests.servers import free_port, node_idp, serve_in_thread

PASSWORD = "correct horse battery"
CUID_LIKE = re.compile(r"[a-z][a-z0-9]{24}")
# What the storefront's Prisma client reads back (`prisma.user.findUnique`), column by column.
PRISMA_USER = (
    'SELECT "id", "email", "name", "password", "role", "fundraiserId", "image", '
    '"emailVerified", "createdAt", "updatedAt", "marketingOptIn", "phone" '
    'FROM "users" WHERE "email" = $1'
)
PRISMA_ACCOUNTS = (
    'SELECT "id", "userId", "type", "provider", "providerAccountId", "access_token" '
    'FROM "accounts" WHERE "userId" = $1'
)


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oracle]:
    """The storefront's password code in Node (tests/node/storefront.cjs)."""
    with oracle_process(
        "storefront.cjs", "bcryptjs", tmp_path_factory.mktemp("storefront")
    ) as process:
        yield Oracle(process, "storefront")


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with storefront_database() as dsn:
        yield dsn


def prisma_settings(dsn: str, **extra: Any) -> Settings:
    return make_settings(database_url=dsn, user_schema="prisma", **extra)


STARTED: list[AuthService] = []


async def start(dsn: str, hasher: PasswordHasher, **extra: Any) -> AuthService:
    """authsvc in Prisma mode on `dsn`, used in the test's own event loop."""
    app = create_app(prisma_settings(dsn, **extra), hasher=hasher)
    STARTED.append(app)
    return app


@pytest.fixture(autouse=True)
async def dispose_started() -> AsyncIterator[None]:
    yield
    while STARTED:
        await STARTED.pop().services.database.dispose()


async def csrf(client: httpx.AsyncClient) -> str:
    token: str = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    return token


async def sign_in(app: AuthService, email: str, password: str = PASSWORD) -> httpx.Response:
    """A password sign-in through /api/auth/callback/credentials, as next-auth/react posts it."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        form = {"email": email, "password": password, "csrfToken": await csrf(client)}
        response = await client.post("/api/auth/callback/credentials", data=form)
        if response.status_code == 302 and "error=" not in response.headers["location"]:
            session = await client.get("/api/auth/session")
            response.extensions["session"] = session.json()
        return response


def signed_in(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 302, response.text
    assert "error=" not in response.headers["location"], response.headers["location"]
    session: dict[str, Any] = response.extensions["session"]
    return session


def refused(response: httpx.Response) -> bool:
    """next-auth's answer to a failed password sign-in from a form: back, with the error."""
    return response.status_code == 302 and "error=CredentialsSignin" in response.headers.get(
        "location", ""
    )


async def storefront_user(
    dsn: str, oracle: Oracle, email: str, *, library: str = "bcryptjs", **fields: Any
) -> str:
    """A user as the storefront's sign-up made them: bcryptjs hash, email as typed."""
    password_hash = oracle.call("hash", password=PASSWORD, cost=10, library=library)
    return await insert_storefront_user(dsn, email, password=password_hash, **fields)


# -- authsvc's own state lives apart ------------------------------------------------------


async def test_migrate_creates_only_authsvcs_own_schema_and_leaves_prismas_untouched() -> None:
    async with storefront_database(migrated=False) as dsn:
        before = await schema_snapshot(dsn)
        await asyncio.to_thread(upgrade, dsn, own_schema="authsvc")
        await asyncio.to_thread(upgrade, dsn, own_schema="authsvc")  # twice: a no-op
        after = await schema_snapshot(dsn)
        own = await fetch_rows(
            dsn,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'authsvc' "
            "ORDER BY 1",
        )

    assert after == before
    assert [row["table_name"] for row in own] == [
        "alembic_version",
        "oauth_used_checks",
        "user_sessions",
    ]


async def test_the_prisma_branch_builds_exactly_authsvcs_own_state_tables(database: str) -> None:
    def differences(conn: Connection) -> list[Any]:
        def own_schema_only(name: str | None, kind: str, parent: Any) -> bool:
            return kind != "schema" or name == "authsvc"

        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_schemas": True,
                "include_name": own_schema_only,
                "version_table_schema": "authsvc",
            },
        )
        return list(compare_metadata(context, own_state_metadata("authsvc")[0]))

    database_ = Database(database)
    try:
        async with database_.engine.connect() as conn:
            found = await conn.run_sync(differences)
    finally:
        await database_.dispose()

    assert found == []


async def test_migrate_in_prisma_mode_runs_through_the_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from authsvc.cli import run

    async with storefront_database(migrated=False) as dsn:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("NEXTAUTH_SECRET", "x" * 40)
        monkeypatch.setenv("DATABASE_URL", dsn + "?schema=public")
        monkeypatch.setenv("AUTHSVC_USER_SCHEMA", "prisma")
        status = await asyncio.to_thread(run, ["migrate"])
        version = await fetch_row(dsn, "SELECT version_num FROM authsvc.alembic_version")
        public_versions = await fetch_rows(
            dsn,
            "SELECT 1 FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_name = 'alembic_version'",
        )

    assert status == 0, capsys.readouterr().err
    assert version == {"version_num": "p0001_authsvc_state"}
    assert public_versions == []


# -- password sign-in on the storefront's rows ------------------------------------------


@pytest.mark.node
@pytest.mark.parametrize(("library", "prefix"), [("bcryptjs", "$2b$"), ("bcryptjs-2", "$2a$")])
async def test_a_storefront_user_signs_in_and_next_auth_still_accepts_the_same_row(
    database: str, hasher: PasswordHasher, storefront: Oracle, library: str, prefix: str
) -> None:
    user_id = await storefront_user(
        database, storefront, "Ada.Lovelace@Example.COM", library=library, role="ADMIN"
    )
    row = await fetch_row(database, PRISMA_USER, "Ada.Lovelace@Example.COM")
    assert row is not None and row["password"].startswith(prefix)
    app = await start(database, hasher)

    session = signed_in(await sign_in(app, "ada.lovelace@example.com"))

    assert session["user"]["id"] == user_id
    assert session["user"]["role"] == "ADMIN"
    after = await fetch_row(database, PRISMA_USER, "Ada.Lovelace@Example.COM")
    assert after == row  # the hash, updatedAt and every other column as they were
    credentials = {"email": "Ada.Lovelace@Example.COM", "password": PASSWORD}
    user = storefront.call("authorize", credentials=credentials, row=_json(after), library=library)
    assert user == {
        "id": user_id,
        "email": "Ada.Lovelace@Example.COM",
        "name": None,
        "role": "ADMIN",
    }


@pytest.mark.node
async def test_a_wrong_password_is_refused_on_a_storefront_row(
    database: str, hasher: PasswordHasher, storefront: Oracle
) -> None:
    await storefront_user(database, storefront, "ada@example.com")
    app = await start(database, hasher)

    assert refused(await sign_in(app, "ada@example.com", "not the password"))


@pytest.mark.node
async def test_with_rehash_on_the_bcrypt_hash_becomes_argon2id_and_next_auth_can_no_longer_read_it(
    database: str, hasher: PasswordHasher, storefront: Oracle
) -> None:
    await storefront_user(database, storefront, "ada@example.com")
    app = await start(database, hasher, password_rehash=True)

    signed_in(await sign_in(app, "ada@example.com"))

    row = await fetch_row(database, PRISMA_USER, "ada@example.com")
    assert row is not None and row["password"].startswith("$argon2id$")
    assert row["updatedAt"] > row["createdAt"]
    signed_in(await sign_in(app, "ada@example.com"))  # the new hash works here
    credentials = {"email": "ada@example.com", "password": PASSWORD}
    assert storefront.call("authorize", credentials=credentials, row=_json(row)) is None


@pytest.mark.parametrize(
    "stored",
    [
        "sha256$b5d4045c3f466fa91fe2cc6abe79232a1a57cdf104f7a26e716e0a1e2789df78",
        "$2x$10$abcdefghijklmnopqrstuu5Tk0dzs2S0Hmd4K5cwH7y9wkx8rqC6a",
        "correct horse battery",
        "$argon2id$v=19$m=65536,t=3,p=4$broken",
    ],
)
async def test_an_unknown_hash_format_is_a_generic_failure_and_one_warning_without_the_hash(
    database: str,
    hasher: PasswordHasher,
    caplog: pytest.LogCaptureFixture,
    stored: str,
) -> None:
    user_id = await insert_storefront_user(database, "ada@example.com", password=stored)
    app = await start(database, hasher)

    with caplog.at_level(logging.WARNING, logger="authsvc"):
        unknown_format = await sign_in(app, "ada@example.com", stored)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    wrong_password = await sign_in(app, "nobody@example.com", stored)

    assert refused(unknown_format) and refused(wrong_password)
    assert unknown_format.headers["location"] == wrong_password.headers["location"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert user_id in message and "cannot verify" in message
    assert stored not in message and stored[:12] not in message


async def test_a_user_with_a_role_authsvc_does_not_know_cannot_sign_in_and_nothing_breaks(
    database: str, hasher: PasswordHasher, caplog: pytest.LogCaptureFixture
) -> None:
    conn = await asyncpg.connect(database)
    await conn.execute("ALTER TYPE \"UserRole\" ADD VALUE 'VIP'")
    await conn.close()
    await insert_storefront_user(
        database, "vip@example.com", password=await hasher.hash(PASSWORD), role="VIP"
    )
    app = await start(database, hasher)

    with caplog.at_level(logging.WARNING, logger="authsvc"):
        response = await sign_in(app, "vip@example.com")

    assert refused(response)
    assert "a role authsvc does not know" in caplog.text


async def test_two_legacy_rows_differing_only_in_case_sign_neither_in(
    database: str, hasher: PasswordHasher, caplog: pytest.LogCaptureFixture
) -> None:
    password_hash = await hasher.hash(PASSWORD)
    await insert_storefront_user(database, "Ada@example.com", password=password_hash)
    await insert_storefront_user(database, "ada@EXAMPLE.com", password=password_hash)
    app = await start(database, hasher)

    with caplog.at_level(logging.WARNING, logger="authsvc"):
        response = await sign_in(app, "ada@example.com")

    assert refused(response)
    assert "share this email up to case" in caplog.text


# -- OAuth first sign-in writes rows Prisma reads -----------------------------------------


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with node_idp() as url:
        yield url


def oauth_settings(dsn: str, base: str, issuer: str, **extra: Any) -> Settings:
    return prisma_settings(
        dsn,
        url=base,
        oidc={"issuer": issuer, "client_id": "authsvc-test", "client_secret": "oidc-client-secret"},
        **extra,
    )


async def oauth_sign_in(app: AuthService, base: str, hint: str) -> httpx.Response:
    """Click "sign in with OIDC" and follow every redirect to the session (tests/node/idp.mjs)."""
    with serve_in_thread(app, int(base.rsplit(":", 1)[1])):
        async with httpx.AsyncClient(base_url=base, follow_redirects=True, timeout=10) as browser:
            token = (await browser.get("/api/auth/csrf")).json()["csrfToken"]
            return await browser.post(
                "/api/auth/signin/oidc",
                params={"login_hint": hint},
                data={"csrfToken": token, "callbackUrl": f"{base}/api/auth/session"},
            )


@pytest.mark.node
async def test_an_oauth_first_sign_in_creates_rows_the_storefronts_prisma_client_reads(
    database: str, hasher: PasswordHasher, issuer: str
) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    app = create_app(oauth_settings(database, base, issuer), hasher=hasher)

    response = await oauth_sign_in(app, base, "grace@example.com")

    session = response.json()
    assert session["user"]["email"] == "grace@example.com"
    user = await fetch_row(database, PRISMA_USER, "grace@example.com")
    assert user is not None
    assert CUID_LIKE.fullmatch(user["id"]) and user["id"] == session["user"]["id"]
    assert user["role"] == "CUSTOMER" and user["password"] is None
    assert user["emailVerified"] is not None
    assert user["updatedAt"] is not None and user["createdAt"] is not None
    assert user["marketingOptIn"] is False  # the storefront's own default, left to it
    accounts = await fetch_rows(database, PRISMA_ACCOUNTS, user["id"])
    assert [(a["type"], a["provider"]) for a in accounts] == [("oauth", "oidc")]
    assert accounts[0]["providerAccountId"] and CUID_LIKE.fullmatch(accounts[0]["id"])


@pytest.mark.node
async def test_an_oauth_only_storefront_user_signs_in_as_themselves(
    database: str, hasher: PasswordHasher, issuer: str
) -> None:
    # next-auth linked them earlier; the test provider's subject is "sub-<email>".
    user_id = await insert_storefront_user(database, "Linus@Example.com", role="STAFF")
    await insert_storefront_account(database, user_id, "oidc", "sub-linus@example.com")
    before = await fetch_rows(database, 'SELECT * FROM "accounts"')
    base = f"http://127.0.0.1:{free_port()}"
    app = create_app(oauth_settings(database, base, issuer), hasher=hasher)

    session = (await oauth_sign_in(app, base, "linus@example.com")).json()

    assert session["user"]["id"] == user_id and session["user"]["role"] == "STAFF"
    assert await fetch_rows(database, 'SELECT * FROM "accounts"') == before
    assert len(await fetch_rows(database, 'SELECT 1 FROM "users"')) == 1


@pytest.mark.node
async def test_after_migrate_and_a_day_of_use_prisma_sees_exactly_its_own_schema(
    hasher: PasswordHasher, storefront: Oracle, issuer: str
) -> None:
    async with storefront_database(migrated=False) as dsn:
        before = await schema_snapshot(dsn)
        await asyncio.to_thread(upgrade, dsn, own_schema="authsvc")
        user_id = await storefront_user(dsn, storefront, "Ada@Example.com")
        base = f"http://127.0.0.1:{free_port()}"
        settings = oauth_settings(dsn, base, issuer, revocation=True)
        app = create_app(settings, hasher=hasher)
        signed_in(await sign_in(app, "ada@example.com"))
        await app.services.users.set_role("ada@example.com", Role.WHOLESALE)
        assert app.services.revocation is not None
        await app.services.revocation.revoke(user_id, app.services.users)
        await app.services.database.dispose()
        # A served app runs in its server's own event loop: a fresh one for that.
        await oauth_sign_in(create_app(settings, hasher=hasher), base, "grace@example.com")
        after = await schema_snapshot(dsn)
        users = await fetch_rows(dsn, 'SELECT "email", "role" FROM "users" ORDER BY 1')
        checks = await fetch_rows(dsn, "SELECT 1 FROM authsvc.oauth_used_checks")

    assert after == before
    assert users == [
        {"email": "Ada@Example.com", "role": "WHOLESALE"},
        {"email": "grace@example.com", "role": "CUSTOMER"},
    ]
    assert len(checks) == 1


# -- revocation keys on the user id in authsvc's table ----------------------------------


async def test_sign_out_everywhere_marks_the_user_in_authsvcs_table_not_on_users(
    database: str, hasher: PasswordHasher
) -> None:
    user_id = await insert_storefront_user(
        database, "ada@example.com", password=await hasher.hash(PASSWORD)
    )
    app = await start(database, hasher, revocation=True, revocation_cache_ttl=0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        form = {"email": "ada@example.com", "password": PASSWORD, "csrfToken": await csrf(client)}
        await client.post("/api/auth/callback/credentials", data=form)
        assert (await client.get("/api/auth/session")).json()["user"]["id"] == user_id

        revocation = app.services.revocation
        assert revocation is not None
        assert await revocation.revoke(user_id, app.services.users)

        assert (await client.get("/api/auth/session")).json() == {}
    marks = await fetch_rows(database, "SELECT user_id FROM authsvc.user_sessions")
    assert marks == [{"user_id": user_id}]


# -- other names, other schemas ------------------------------------------------------------


def _renamed(sql: str) -> str:
    """The fixture as Prisma generates it without `@@map`, and with one `@map`ped field."""
    sql = sql.replace('"users"', '"User"').replace('"accounts"', '"Account"')
    sql = sql.replace('"users_', '"User_').replace('"accounts_', '"Account_')
    return sql.replace('"fundraiserId"', '"fundraiser_id"')


async def test_prismas_default_table_names_and_a_mapped_column_work_through_the_map(
    hasher: PasswordHasher,
) -> None:
    sql = _renamed((PRISMA / "migrations" / "20240115093000_init" / "migration.sql").read_text())
    async with throwaway_postgres() as dsn:
        conn = await asyncpg.connect(dsn)
        await conn.execute(sql)
        await conn.close()
        settings = prisma_settings(
            dsn, prisma_map="User=User, Account=Account, User.fundraiserId=fundraiser_id"
        )
        await asyncio.to_thread(upgrade, dsn, own_schema="authsvc")
        app = create_app(settings, hasher=hasher)
        users = app.services.users
        assert isinstance(users, SqlAlchemyUserRepository)
        created = await users.create(
            email="ada@example.com",
            password_hash=await hasher.hash(PASSWORD),
            fundraiser_id="fund-7",
        )
        await users.link_account(created.id, "github", "42")

        session = signed_in(await sign_in(app, "ada@example.com"))
        stored = await fetch_rows(dsn, 'SELECT "fundraiser_id" FROM "User"')
        linked = await users.get_by_account("github", "42")
        await app.services.database.dispose()

    assert session["user"]["fundraiserId"] == "fund-7"
    assert stored == [{"fundraiser_id": "fund-7"}]
    assert linked is not None and linked.id == created.id


async def test_a_storefront_in_another_schema_is_found_through_prismas_schema_parameter(
    hasher: PasswordHasher,
) -> None:
    async with throwaway_postgres() as dsn:
        conn = await asyncpg.connect(dsn)
        await conn.execute('CREATE SCHEMA shop; SET search_path TO "shop"')
        await conn.execute(
            (PRISMA / "migrations" / "20240115093000_init" / "migration.sql").read_text()
        )
        await conn.close()
        url = dsn + "?schema=shop"
        await asyncio.to_thread(upgrade, url, own_schema="authsvc")
        app = create_app(prisma_settings(url), hasher=hasher)
        await app.services.users.create(
            email="ada@example.com", password_hash=await hasher.hash(PASSWORD)
        )

        signed_in(await sign_in(app, "ada@example.com"))
        in_shop = await fetch_rows(dsn, 'SELECT email FROM shop."users"')
        await app.services.database.dispose()

    assert in_shop == [{"email": "ada@example.com"}]


# -- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({"database_url": "sqlite+aiosqlite:///./x.db"}, "runs on the storefront's PostgreSQL"),
        ({"db_schema": "public"}, "must not be the storefront's schema (public)"),
        (
            {"database_url": "postgresql://u@h/db?schema=shop", "db_schema": "shop"},
            "must not be the storefront's schema (shop)",
        ),
        ({"prisma_map": "Customer=customers"}, "unknown model 'Customer'"),
        ({"prisma_map": "User.nickname=nick"}, "unknown field 'User.nickname'"),
        ({"prisma_map": "User"}, "entries are Name=table or Model.field=column"),
    ],
)
def test_a_prisma_mode_misconfiguration_stops_start_up_with_one_line(
    overrides: dict[str, Any], said: str
) -> None:
    values = {"database_url": "postgresql://u@h/db", "user_schema": "prisma", **overrides}

    with pytest.raises(ConfigError) as raised:
        make_settings(**values)

    assert said in str(raised.value) and "\n" not in str(raised.value)


def test_rehash_is_off_by_default_in_prisma_mode_and_on_in_authsvcs_own() -> None:
    prisma = make_settings(database_url="postgresql://u@h/db", user_schema="prisma")

    assert prisma.rehash_bcrypt is False
    assert make_settings().rehash_bcrypt is True
    assert make_settings(
        database_url="postgresql://u@h/db", user_schema="prisma", password_rehash=True
    ).rehash_bcrypt


def _json(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """A row as the Prisma client hands it to JavaScript (dates as ISO strings)."""
    if row is None:
        return None
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
