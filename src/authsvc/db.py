"""The database connection: one async engine and its session factory."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)

from authsvc.database_url import parse_database_url

# What a database call raises when the database is away or slow: SQLAlchemy's errors, a
# refused or reset connection, and a connect or statement timeout.
DATABASE_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, OSError, TimeoutError)


class Database:
    def __init__(self, url: str, *, timeout: float = 2.0, pool_size: int = 10) -> None:
        # DATABASE_URL as written (Prisma's `postgresql://…?schema=` too): see database_url.py.
        self.target = parse_database_url(url)
        self.url = self.target.url
        # Bounded waits: a stopped or slow database is an error within `timeout`, not a hang.
        connect_args: dict[str, Any] = {"timeout": self.target.connect_timeout or timeout}
        options: dict[str, Any] = {}
        if not self.target.is_sqlite:
            connect_args["command_timeout"] = timeout
            # A fixed number of connections per process (no overflow), and a bounded wait
            # for one: a slow database never gets more connections than this. Prisma's
            # `connection_limit` and `pool_timeout` in the URL take precedence, as in Prisma.
            pool_size = self.target.pool_size or pool_size
            options = {
                "pool_size": pool_size,
                "max_overflow": 0,
                "pool_timeout": self.target.pool_timeout or timeout,
            }
        connect_args.update(self.target.connect_args)
        self.pool_size = pool_size
        # A server's connection can go stale (restarted, dropped by a proxy): each checkout
        # tests it first. An SQLite file's cannot, and the test cost an update four extra
        # round trips to aiosqlite's thread.
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            pool_pre_ping=not self.target.is_sqlite,
            connect_args=connect_args,
            **options,
        )
        if self.target.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer; busy_timeout waits out short locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
