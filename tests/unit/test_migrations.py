"""Alembic migrations, on a throw-away SQLite file and a throw-away PostgreSQL database.

Alembic's env.py calls asyncio.run, so every test here is synchronous.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from authsvc.migrations import alembic_config, upgrade
from authsvc.users.models import Base

T = TypeVar("T")

# The same server conftest uses; each test here makes and drops its own database on it.
PG_ADMIN_DSN = os.environ.get("AUTHSVC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

USER_COLUMNS = {
    "id",
    "email",
    "name",
    "image",
    "password_hash",
    "role",
    "fundraiser_id",
    "sessions_valid_after",
    "created_at",
    "updated_at",
}
NULLABLE_COLUMNS = {"name", "image", "password_hash", "fundraiser_id", "sessions_valid_after"}


async def _admin(statement: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of our own with no schema, so downgrades disturb no other test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"authsvc_migrations_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def migrated_url(empty_database_url: str) -> str:
    upgrade(empty_database_url)
    return empty_database_url


def run_on(url: str, fn: Callable[[Connection], T]) -> T:
    """Run `fn` with a synchronous connection to `url` (through the async driver)."""

    async def go() -> T:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def table_names(url: str) -> set[str]:
    return set(run_on(url, lambda conn: inspect(conn).get_table_names()))


def current_revision(url: str) -> str | None:
    return run_on(url, lambda conn: MigrationContext.configure(conn).get_current_revision())


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def test_there_is_exactly_one_head() -> None:
    assert len(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()) == 1


def test_upgrade_creates_the_users_table(migrated_url: str) -> None:
    assert "users" in table_names(migrated_url)


def test_upgrade_records_the_head_revision(migrated_url: str) -> None:
    assert current_revision(migrated_url) == head_revision()


def test_upgrading_twice_is_a_no_op(migrated_url: str) -> None:
    upgrade(migrated_url)

    assert current_revision(migrated_url) == head_revision()


def test_downgrade_to_base_drops_the_users_table(migrated_url: str) -> None:
    command.downgrade(alembic_config(migrated_url), "base")

    assert "users" not in table_names(migrated_url)
    assert current_revision(migrated_url) is None


def test_upgrade_after_a_downgrade_to_base_rebuilds_the_schema(migrated_url: str) -> None:
    command.downgrade(alembic_config(migrated_url), "base")

    upgrade(migrated_url)

    assert "users" in table_names(migrated_url)
    assert current_revision(migrated_url) == head_revision()


def test_the_users_table_has_the_expected_columns(migrated_url: str) -> None:
    columns = run_on(migrated_url, lambda conn: inspect(conn).get_columns("users"))

    assert {column["name"] for column in columns} == USER_COLUMNS


def test_only_the_optional_user_columns_are_nullable(migrated_url: str) -> None:
    columns = run_on(migrated_url, lambda conn: inspect(conn).get_columns("users"))

    assert {column["name"] for column in columns if column["nullable"]} == NULLABLE_COLUMNS


def test_the_users_primary_key_is_the_id(migrated_url: str) -> None:
    key = run_on(migrated_url, lambda conn: inspect(conn).get_pk_constraint("users"))

    assert key["constrained_columns"] == ["id"]


def test_the_users_email_has_a_unique_index(migrated_url: str) -> None:
    indexes = run_on(migrated_url, lambda conn: inspect(conn).get_indexes("users"))

    assert [(index["column_names"], bool(index["unique"])) for index in indexes] == [
        (["email"], True)
    ]


def _model_differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, Base.metadata))


def test_the_models_match_the_migrated_schema(migrated_url: str) -> None:
    assert run_on(migrated_url, _model_differences) == []


def test_the_models_match_the_schema_after_a_downgrade_and_upgrade(migrated_url: str) -> None:
    command.downgrade(alembic_config(migrated_url), "base")
    upgrade(migrated_url)

    assert run_on(migrated_url, _model_differences) == []
