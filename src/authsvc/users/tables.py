"""Where the users live: authsvc's own tables, or the storefront's Prisma tables as they are.

Both are described by one `UserTables`: SQLAlchemy tables whose column *keys* are the same
in either layout (`password_hash`, `fundraiser_id`, …) while the column *names* are whatever
the database has (`"password"`, `"fundraiserId"`, …). The repository is written once
against the keys.

In Prisma mode (AUTHSVC_USER_SCHEMA=prisma) the `users` and `accounts` tables belong to the
storefront: authsvc reads and writes rows there but never creates, alters or drops them.
What authsvc keeps for itself (redeemed OAuth checks, "sign out everywhere" marks) lives in
its own PostgreSQL schema (AUTHSVC_DB_SCHEMA, default `authsvc`), migrated by its own
Alembic branch with its own version table, out of sight of `prisma migrate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import ENUM

from authsvc.database_url import parse_database_url
from authsvc.users.models import Account, Base, Role, UsedCheck, User
from authsvc.users.prisma_map import PRISMA_SCHEMA, PrismaNames

if TYPE_CHECKING:
    from authsvc.settings import Settings

DEFAULT_OWN_SCHEMA = "authsvc"
SESSIONS_TABLE = "user_sessions"


@dataclass(frozen=True, slots=True)
class UserTables:
    users: Table
    accounts: Table
    used_checks: Table
    # "Sign out everywhere" marks by user id, in authsvc's own schema (Prisma mode); None:
    # the `sessions_valid_after` column of authsvc's own users table.
    sessions: Table | None = None
    # Prisma mode: emails were stored as typed, so they are compared with lower().
    emails_as_typed: bool = False
    # Where the storefront's tables are (Prisma mode), and authsvc's own state.
    storefront_schema: str | None = None
    own_schema: str | None = None
    names: PrismaNames | None = None

    @property
    def prisma(self) -> bool:
        return self.names is not None


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


# authsvc's own layout: the ORM models' tables, in the connection's search path.
OWN_TABLES = UserTables(users=_table(User), accounts=_table(Account), used_checks=_table(UsedCheck))


def own_state_metadata(own_schema: str) -> tuple[MetaData, Table, Table]:
    """authsvc's own tables in Prisma mode: the redeemed OAuth checks and the revocation
    marks, in `own_schema`. Alembic's Prisma branch creates exactly these."""
    metadata = MetaData(schema=own_schema)
    # The columns of UsedCheck (users/models.py), here in the own schema.
    used_checks = Table(
        _table(UsedCheck).name,
        metadata,
        Column("jti", String(64), primary_key=True),
        Column("expires_at", Integer, nullable=False),
        Index("ix_oauth_used_checks_expires_at", "expires_at"),
    )
    sessions = Table(
        SESSIONS_TABLE,
        metadata,
        Column("user_id", Text, primary_key=True),
        # Tokens authenticated before this time (epoch milliseconds) are refused.
        Column("sessions_valid_after", BigInteger, nullable=False),
    )
    return metadata, used_checks, sessions


def prisma_tables(
    names: PrismaNames, *, storefront_schema: str | None, own_schema: str
) -> UserTables:
    schema = storefront_schema or PRISMA_SCHEMA
    metadata = MetaData()
    role = ENUM(
        *(r.value for r in Role),
        name=names.role_enum,
        schema=schema,
        create_type=False,
        # A value authsvc does not know is read as text and refused by the repository.
        validate_strings=False,
    )
    timestamp = DateTime(timezone=False)  # Prisma's TIMESTAMP(3), in UTC
    column = names.user_columns.__getitem__
    users = Table(
        names.user_table,
        metadata,
        Column(column("id"), Text, key="id", primary_key=True),
        Column(column("email"), Text, key="email", nullable=False),
        Column(column("name"), Text, key="name"),
        Column(column("image"), Text, key="image"),
        Column(column("password"), Text, key="password_hash"),
        Column(column("role"), role, key="role", nullable=False),
        Column(column("fundraiserId"), Text, key="fundraiser_id"),
        Column(column("emailVerified"), timestamp, key="email_verified"),
        Column(column("createdAt"), timestamp, key="created_at", nullable=False),
        Column(column("updatedAt"), timestamp, key="updated_at", nullable=False),
        schema=schema,
    )
    account = names.account_columns.__getitem__
    accounts = Table(
        names.account_table,
        metadata,
        Column(account("id"), Text, key="id", primary_key=True),
        Column(account("userId"), Text, key="user_id", nullable=False),
        Column(account("type"), Text, key="type", nullable=False),
        Column(account("provider"), Text, key="provider", nullable=False),
        Column(account("providerAccountId"), Text, key="provider_account_id", nullable=False),
        schema=schema,
    )
    _, used_checks, sessions = own_state_metadata(own_schema)
    return UserTables(
        users=users,
        accounts=accounts,
        used_checks=used_checks,
        sessions=sessions,
        emails_as_typed=True,
        storefront_schema=schema,
        own_schema=own_schema,
        names=names,
    )


def tables_for(settings: Settings) -> UserTables:
    """The layout these settings select (AUTHSVC_USER_SCHEMA, AUTHSVC_PRISMA_MAP, …)."""
    if not settings.prisma_mode:
        return OWN_TABLES
    return prisma_tables(
        settings.prisma_names,
        storefront_schema=parse_database_url(settings.database_url).schema,
        own_schema=settings.db_schema,
    )
