"""DATABASE_URL as Prisma, hosting platforms and authsvc write it, made fit for the async drivers.

A storefront's `.env` holds `postgresql://…` or `postgres://…` (Heroku, Render, Supabase,
Neon, Vercel), often with query parameters meant for Prisma or libpq. SQLAlchemy would hand
those to asyncpg as keyword arguments, which fails deep inside the first connection
(`connect() got an unexpected keyword argument 'sslmode'`). Here each one is either mapped
to what asyncpg and the pool take, or refused at start-up with one line saying what to do.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

POSTGRES_DRIVER = "postgresql+asyncpg"
SQLITE_DRIVER = "sqlite+aiosqlite"
_POSTGRES_SCHEMES = ("postgresql", "postgres", POSTGRES_DRIVER)
_SQLITE_SCHEMES = ("sqlite", SQLITE_DRIVER)
# libpq's modes, which asyncpg takes as they are.
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Left in the URL: SQLAlchemy's asyncpg dialect reads it (Unix sockets, several hosts).
_PASSED_THROUGH = ("host",)
_SUPPORTED = (
    "schema",
    "sslmode",
    "sslaccept",
    "connection_limit",
    "pool_timeout",
    "connect_timeout",
    "pgbouncer",
    "application_name",
    *_PASSED_THROUGH,
)
# What to do instead, for parameters that are common but have no asyncpg equivalent here.
_ADVICE = {
    "sslcert": "set PGSSLROOTCERT=<CA file> in the environment and sslmode=verify-full",
    "sslrootcert": "set PGSSLROOTCERT=<CA file> in the environment and sslmode=verify-full",
    "sslidentity": "client certificates are not supported; use password authentication",
    "sslpassword": "client certificates are not supported; use password authentication",
    "channel_binding": "remove it (asyncpg does not do SCRAM channel binding)",
}
MAX_SCHEMA_BYTES = 63  # PostgreSQL's identifier limit
N = TypeVar("N", int, float)


class DatabaseUrlError(ValueError):
    """DATABASE_URL cannot be used; the message says what to change."""


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """Where to connect and how: a SQLAlchemy URL plus what goes beside it."""

    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)
    # Prisma's `?schema=`: the search path, and where the storefront's tables live.
    schema: str | None = None
    # Prisma's `connection_limit` and `pool_timeout`.
    pool_size: int | None = None
    pool_timeout: float | None = None
    connect_timeout: float | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith(SQLITE_DRIVER)


def parse_database_url(raw: str) -> DatabaseTarget:
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise DatabaseUrlError(
            "DATABASE_URL is not a database URL: write it as postgresql://user:pass@host:5432/db "
            "or sqlite+aiosqlite:///./authsvc.db"
        ) from None
    if url.drivername in _SQLITE_SCHEMES:
        return DatabaseTarget(url=_render(url.set(drivername=SQLITE_DRIVER)))
    if url.drivername not in _POSTGRES_SCHEMES:
        raise DatabaseUrlError(
            "DATABASE_URL must be a PostgreSQL URL (postgresql://, postgres:// or "
            "postgresql+asyncpg://) or SQLite (sqlite+aiosqlite://), "
            f"got scheme {url.drivername!r}"
        )
    return _postgres(url)


def _postgres(url: URL) -> DatabaseTarget:
    query = {name: _single(name, value) for name, value in url.query.items()}
    for name in query:
        if name not in _SUPPORTED:
            advice = _ADVICE.get(name, "remove it")
            raise DatabaseUrlError(
                f"DATABASE_URL parameter {name!r} is not supported by authsvc: {advice} "
                f"(supported: {', '.join(_SUPPORTED)})"
            )
    connect_args: dict[str, Any] = {}
    server_settings: dict[str, str] = {}
    schema = query.get("schema")
    if schema is not None:
        if not schema or len(schema.encode()) > MAX_SCHEMA_BYTES or "\x00" in schema:
            raise DatabaseUrlError(
                f"DATABASE_URL ?schema= must name a PostgreSQL schema (1 to {MAX_SCHEMA_BYTES} "
                f"bytes), got {schema!r}"
            )
        # As Prisma does: the schema alone, quoted (its name is case-sensitive).
        server_settings["search_path"] = quote_identifier(schema)
    ssl_mode = _ssl_mode(query.get("sslmode"), query.get("sslaccept"))
    if ssl_mode is not None:
        connect_args["ssl"] = ssl_mode
    if "application_name" in query:
        server_settings["application_name"] = query["application_name"]
    if server_settings:
        connect_args["server_settings"] = server_settings
    if _flag("pgbouncer", query.get("pgbouncer")):
        # PgBouncer in transaction mode cannot keep prepared statements between queries.
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unique_statement_name
    passed = {name: value for name, value in url.query.items() if name in _PASSED_THROUGH}
    return DatabaseTarget(
        url=_render(url.set(drivername=POSTGRES_DRIVER, query=passed)),
        connect_args=connect_args,
        schema=schema,
        pool_size=_number("connection_limit", query.get("connection_limit"), int),
        pool_timeout=_number("pool_timeout", query.get("pool_timeout"), float),
        connect_timeout=_number("connect_timeout", query.get("connect_timeout"), float),
    )


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def _single(name: str, value: str | tuple[str, ...]) -> str:
    if isinstance(value, tuple):
        if name in _PASSED_THROUGH:
            return value[0]
        raise DatabaseUrlError(f"DATABASE_URL parameter {name!r} is given more than once")
    return value


def _ssl_mode(mode: str | None, accept: str | None) -> str | None:
    if mode is not None and mode not in _SSL_MODES:
        raise DatabaseUrlError(
            f"DATABASE_URL sslmode must be one of {', '.join(_SSL_MODES)}, got {mode!r}"
        )
    if accept is None or accept == "accept_invalid_certs":
        # Prisma's default: encrypt, as the mode says, without checking the certificate.
        return mode
    if accept == "strict":
        # Prisma checks the certificate and the host name: libpq's verify-full.
        if mode == "disable":
            raise DatabaseUrlError("DATABASE_URL sslaccept=strict needs TLS, but sslmode=disable")
        return "verify-full"
    raise DatabaseUrlError(
        f"DATABASE_URL sslaccept must be strict or accept_invalid_certs, got {accept!r}"
    )


def _flag(name: str, value: str | None) -> bool:
    if value is None or value in ("false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise DatabaseUrlError(f"DATABASE_URL parameter {name!r} must be true or false, got {value!r}")


def _number(name: str, value: str | None, kind: type[N]) -> N | None:
    if value is None:
        return None
    try:
        number: N | None = kind(value)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise DatabaseUrlError(
            f"DATABASE_URL parameter {name!r} must be a positive number, got {value!r}"
        )
    return number


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"
