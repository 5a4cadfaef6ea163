"""Alembic environment: async engines (aiosqlite, asyncpg), URL from config or settings.

Two version trees share it. `versions/` builds authsvc's own tables. `prisma_versions/`
(AUTHSVC_USER_SCHEMA=prisma; `authsvc migrate` selects it) builds only authsvc's own state
in its own PostgreSQL schema, with the version table there too: the storefront's Prisma
tables are never touched.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from authsvc.database_url import parse_database_url, quote_identifier
from authsvc.db import Database
from authsvc.users.models import Base
from authsvc.users.tables import own_state_metadata

# Set by authsvc.migrations for the Prisma branch: authsvc's own schema.
OWN_SCHEMA = context.config.get_main_option("authsvc_own_schema")


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from authsvc.settings import Settings

    settings = Settings()
    if settings.prisma_mode:
        # Plain `alembic upgrade` knows only authsvc's own tables, which would collide with
        # the storefront's: the Prisma branch needs the options `authsvc migrate` sets.
        raise RuntimeError("AUTHSVC_USER_SCHEMA=prisma: migrate with `authsvc migrate`")
    return settings.database_url


def _options() -> dict[str, object]:
    if OWN_SCHEMA:
        metadata: MetaData = own_state_metadata(OWN_SCHEMA)[0]
        return {"target_metadata": metadata, "version_table_schema": OWN_SCHEMA}
    return {"target_metadata": Base.metadata}


def _ensure_own_schema(connection: Connection, schema: str) -> None:
    # Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege even when the
    # schema exists, and a DBA may have made it for a role that lacks it.
    found = connection.scalar(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": schema}
    )
    if not found:
        connection.execute(text(f"CREATE SCHEMA {quote_identifier(schema)}"))


def _run(connection: Connection) -> None:
    if OWN_SCHEMA:
        _ensure_own_schema(connection, OWN_SCHEMA)
    context.configure(
        connection=connection,
        render_as_batch=connection.dialect.name == "sqlite",
        **_options(),
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    database = Database(_url())
    async with database.engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await database.dispose()


if context.is_offline_mode():
    context.configure(url=parse_database_url(_url()).url, literal_binds=True, **_options())
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
