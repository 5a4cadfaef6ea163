"""DATABASE_URL as Prisma and hosting platforms write it: mapped for asyncpg, or refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from authsvc.cli import run
from authsvc.database_url import DatabaseTarget, parse_database_url
from authsvc.db import Database
from authsvc.dependencies import SessionAuth
from authsvc.migrations import upgrade
from authsvc.settings import ConfigError, load_settings
from authsvc.users.repository import SqlAlchemyUserRepository
from tests.conftest import SECRET

HOST = "postgresql+asyncpg://shop:s3cr%40t@db.example.com:5432/shop"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("postgresql://shop:s3cr%40t@db.example.com:5432/shop", DatabaseTarget(HOST)),
        ("postgres://shop:s3cr%40t@db.example.com:5432/shop", DatabaseTarget(HOST)),
        (HOST, DatabaseTarget(HOST)),
        (
            "postgresql://shop:s3cr%40t@db.example.com:5432/shop?schema=public",
            DatabaseTarget(HOST, {"server_settings": {"search_path": '"public"'}}, schema="public"),
        ),
        (
            "postgresql://shop:s3cr%40t@db.example.com:5432/shop?schema=Shop",
            DatabaseTarget(HOST, {"server_settings": {"search_path": '"Shop"'}}, schema="Shop"),
        ),
        (
            "postgres://shop:s3cr%40t@db.example.com:5432/shop?sslmode=require",
            DatabaseTarget(HOST, {"ssl": "require"}),
        ),
        (
            "postgres://shop:s3cr%40t@db.example.com:5432/shop?sslmode=require&sslaccept=strict",
            DatabaseTarget(HOST, {"ssl": "verify-full"}),
        ),
        (
            "postgres://shop:s3cr%40t@db.example.com:5432/shop"
            "?connection_limit=5&pool_timeout=10&connect_timeout=15",
            DatabaseTarget(HOST, pool_size=5, pool_timeout=10.0, connect_timeout=15.0),
        ),
        (
            "postgres://shop:s3cr%40t@db.example.com:5432/shop?application_name=authsvc",
            DatabaseTarget(HOST, {"server_settings": {"application_name": "authsvc"}}),
        ),
        (
            "postgres://u@/shop?host=/var/run/postgresql",
            DatabaseTarget("postgresql+asyncpg://u@/shop?host=%2Fvar%2Frun%2Fpostgresql"),
        ),
        ("sqlite:///./authsvc.db", DatabaseTarget("sqlite+aiosqlite:///./authsvc.db")),
        ("sqlite+aiosqlite:///./authsvc.db", DatabaseTarget("sqlite+aiosqlite:///./authsvc.db")),
    ],
)
def test_urls_as_prisma_and_platforms_write_them_are_mapped_for_asyncpg(
    written: str, expected: DatabaseTarget
) -> None:
    assert parse_database_url(written) == expected


def test_pgbouncer_mode_turns_every_statement_cache_off() -> None:
    args = parse_database_url("postgres://u@h/db?pgbouncer=true&connection_limit=1").connect_args

    assert args["statement_cache_size"] == 0
    assert args["prepared_statement_cache_size"] == 0
    assert args["prepared_statement_name_func"]() != args["prepared_statement_name_func"]()


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("mysql://u@h/db", "scheme 'mysql'"),
        ("postgresql+psycopg2://u@h/db", "scheme 'postgresql+psycopg2'"),
        ("not a url", "not a database URL"),
        ("postgres://u@h/db?sslmode=bogus", "sslmode must be one of"),
        ("postgres://u@h/db?sslcert=./ca.pem", "PGSSLROOTCERT"),
        ("postgres://u@h/db?channel_binding=require", "'channel_binding' is not supported"),
        ("postgres://u@h/db?statement_cache_size=0", "'statement_cache_size' is not supported"),
        ("postgres://u@h/db?sslaccept=maybe", "sslaccept must be strict or accept_invalid_certs"),
        ("postgres://u@h/db?sslmode=disable&sslaccept=strict", "needs TLS"),
        ("postgres://u@h/db?connection_limit=0", "'connection_limit' must be a positive number"),
        ("postgres://u@h/db?pool_timeout=soon", "'pool_timeout' must be a positive number"),
        ("postgres://u@h/db?pgbouncer=maybe", "'pgbouncer' must be true or false"),
        ("postgres://u@h/db?schema=" + "s" * 64, "?schema= must name a PostgreSQL schema"),
        ("postgres://u@h/db?schema=a&schema=b", "'schema' is given more than once"),
    ],
)
def test_an_unusable_database_url_stops_start_up_with_one_line_saying_what_to_do(
    written: str, said: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(_env_file=None, secret=SECRET, database_url=written)

    message = str(raised.value)
    assert said in message and "\n" not in message
    assert message.startswith("DATABASE_URL")


async def test_a_postgres_url_with_a_prisma_schema_connects_with_that_search_path(
    empty_postgres: str,
) -> None:
    database = Database(empty_postgres.replace("postgresql://", "postgres://") + "?schema=shop")
    try:
        async with database.engine.connect() as conn:
            search_path = await conn.scalar(text("SHOW search_path"))
    finally:
        await database.dispose()

    assert search_path == '"shop"'


async def test_migrating_with_a_prisma_schema_creates_the_tables_in_that_schema(
    empty_postgres: str,
) -> None:
    database = Database(empty_postgres)
    async with database.engine.begin() as conn:
        await conn.execute(text("CREATE SCHEMA shop"))
    await asyncio.to_thread(upgrade, empty_postgres + "?schema=shop")
    try:
        async with database.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT table_schema, table_name FROM information_schema.tables "
                    "WHERE table_schema IN ('shop', 'public') ORDER BY 1, 2"
                )
            )
            tables = [tuple(row) for row in rows]
    finally:
        await database.dispose()

    assert ("shop", "users") in tables
    assert all(schema == "shop" for schema, _ in tables)


async def test_connection_limit_bounds_the_pool(empty_postgres: str) -> None:
    database = Database(empty_postgres + "?connection_limit=2")
    try:
        assert database.engine.pool.size() == 2  # type: ignore[attr-defined]
    finally:
        await database.dispose()


async def test_pgbouncer_mode_runs_the_same_query_again_without_a_statement_cache(
    postgres_database: str,
) -> None:
    plain = postgres_database.replace("postgresql+asyncpg://", "postgresql://")
    database = Database(plain + "?pgbouncer=true&connection_limit=1")
    users = SqlAlchemyUserRepository(database.sessions)
    try:
        for _ in range(3):
            assert await users.get_by_email("nobody@example.com") is None
    finally:
        await database.dispose()


def test_the_library_dependency_accepts_the_storefronts_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv(
        "DATABASE_URL", "postgresql://shop:pw@db.internal:5432/shop?schema=public&sslmode=require"
    )

    auth = SessionAuth.from_env()

    assert auth.settings.database_url.startswith("postgresql://")


def test_the_library_dependency_leaves_a_database_url_it_never_uses_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The service importing authsvc.dependencies owns DATABASE_URL; no database is read."""
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db?sslcert=./ca.pem")

    auth = SessionAuth.from_env()

    assert auth.settings.database_url == "postgres://u@h/db?sslcert=./ca.pem"


def test_the_cli_migrates_and_adds_users_through_a_postgres_url(
    empty_postgres: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray `.env` is read
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("DATABASE_URL", empty_postgres.replace("postgresql://", "postgres://"))

    migrated = run(["migrate"])
    created = run(["create-user", "--email", "ada@example.com", "--password", "correct horse"])

    assert (migrated, created) == (0, 0), capsys.readouterr().err
    assert "created user" in capsys.readouterr().out


async def test_connection_limit_in_the_url_takes_precedence_over_the_pool_size_setting(
    empty_postgres: str,
) -> None:
    database = Database(empty_postgres + "?connection_limit=3", pool_size=10)
    try:
        assert (database.pool_size, database.engine.pool.size()) == (3, 3)  # type: ignore[attr-defined]
    finally:
        await database.dispose()
