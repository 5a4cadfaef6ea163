"""The storefront's database as Prisma leaves it, for the Prisma-mode tests.

`apply_prisma_migrations` plays `prisma migrate deploy` with the fixture in
tests/data/prisma (its README says how the SQL was derived): the bookkeeping table, then
each migration in order with its `_prisma_migrations` row. `insert_storefront_user` writes
a row as the storefront's Prisma client does (CUID id, `updatedAt` set by the client,
the email as the person typed it).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from authsvc.migrations import upgrade
from authsvc.users.tables import DEFAULT_OWN_SCHEMA
from tests.conftest import DATA, throwaway_postgres

PRISMA = DATA / "prisma"
MIGRATIONS = PRISMA / "migrations"
# What `schema_snapshot` reads of a schema: what `prisma migrate` would diff.
SNAPSHOT_QUERIES = {
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, column_default
        FROM information_schema.columns WHERE table_schema = $1 ORDER BY 1, 2""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = $1::regnamespace ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = $1
        ORDER BY 1, 2""",
    "types": """
        SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE t.typnamespace = $1::regnamespace ORDER BY 1, e.enumsortorder""",
    "triggers": """
        SELECT event_object_table, trigger_name FROM information_schema.triggers
        WHERE trigger_schema = $1 ORDER BY 1, 2""",
}


@asynccontextmanager
async def storefront_database(*, migrated: bool = True) -> AsyncIterator[str]:
    """A throw-away database shaped by the storefront's Prisma migrations (its plain
    `postgresql://` DSN), with authsvc's own schema migrated beside it unless not `migrated`."""
    async with throwaway_postgres("authsvc_storefront") as dsn:
        await apply_prisma_migrations(dsn)
        if migrated:
            await asyncio.to_thread(upgrade, dsn, own_schema=DEFAULT_OWN_SCHEMA)
        yield dsn


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS.glob("*/migration.sql"))


async def apply_prisma_migrations(dsn: str, *, upto: str | None = None) -> None:
    """`prisma migrate deploy` on `dsn` (every migration, or those named up to `upto`)."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute((PRISMA / "_prisma_migrations.sql").read_text())
        for path in migration_files():
            name = path.parent.name
            if upto is not None and name > upto:
                break
            sql = path.read_text()
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    'INSERT INTO "_prisma_migrations" (id, checksum, finished_at, '
                    "migration_name, applied_steps_count) VALUES ($1, $2, now(), $3, 1)",
                    str(uuid.uuid4()),
                    hashlib.sha256(sql.encode()).hexdigest(),
                    name,
                )
    finally:
        await conn.close()


def cuid() -> str:
    """An id of the shape Prisma's `cuid()` makes (c + 24 base-36 characters)."""
    return "c" + uuid.uuid4().hex[:24]


async def insert_storefront_user(
    dsn: str,
    email: str,
    *,
    password: str | None = None,
    role: str = "CUSTOMER",
    name: str | None = None,
    user_id: str | None = None,
    **extra: Any,
) -> str:
    """A `users` row as `prisma.user.create` writes it; returns its id."""
    user_id = user_id or cuid()
    now = datetime.now(UTC).replace(tzinfo=None)
    columns = {
        "id": user_id,
        "email": email,
        "name": name,
        "password": password,
        "role": role,
        "createdAt": now,
        "updatedAt": now,
        **extra,
    }
    names = ", ".join(f'"{column}"' for column in columns)
    marks = ", ".join(
        f'${i}::"UserRole"' if column == "role" else f"${i}"
        for i, column in enumerate(columns, start=1)
    )
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(
            f'INSERT INTO "users" ({names}) VALUES ({marks})',  # noqa: S608 - fixed names
            *columns.values(),
        )
    finally:
        await conn.close()
    return user_id


async def insert_storefront_account(dsn: str, user_id: str, provider: str, subject: str) -> None:
    """An `accounts` row as next-auth's Prisma adapter `linkAccount` writes it."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(
            'INSERT INTO "accounts" ("id", "userId", "type", "provider", "providerAccountId", '
            '"access_token", "token_type", "scope") '
            "VALUES ($1, $2, 'oauth', $3, $4, 'ya29.storefront-token', 'Bearer', 'openid email')",
            cuid(),
            user_id,
            provider,
            subject,
        )
    finally:
        await conn.close()


async def fetch_row(dsn: str, query: str, *args: Any) -> dict[str, Any] | None:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        row = await conn.fetchrow(query, *args)
    finally:
        await conn.close()
    return dict(row) if row is not None else None


async def fetch_rows(dsn: str, query: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await conn.fetch(query, *args)
    finally:
        await conn.close()
    return [dict(row) for row in rows]


async def schema_snapshot(dsn: str, schema: str = "public") -> dict[str, list[tuple[Any, ...]]]:
    """Everything `prisma migrate` compares in `schema`: tables and columns, constraints,
    indexes, enum types, triggers."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return {
            name: [tuple(row) for row in await conn.fetch(query, schema)]
            for name, query in SNAPSHOT_QUERIES.items()
        }
    finally:
        await conn.close()
