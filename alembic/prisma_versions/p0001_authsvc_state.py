"""authsvc's own state beside the storefront's Prisma tables (AUTHSVC_USER_SCHEMA=prisma)

Everything here lives in authsvc's own PostgreSQL schema (AUTHSVC_DB_SCHEMA), with this
branch's version table: `prisma migrate` never sees it, and it never touches Prisma's tables.

Revision ID: p0001_authsvc_state
Revises:
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "p0001_authsvc_state"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str:
    schema = context.config.get_main_option("authsvc_own_schema")
    assert schema, "the Prisma branch runs with authsvc_own_schema set (authsvc migrate)"
    return schema


def upgrade() -> None:
    schema = _schema()
    # OAuth `state` values already redeemed, kept until they expire (single use).
    op.create_table(
        "oauth_used_checks",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        schema=schema,
    )
    op.create_index(
        "ix_oauth_used_checks_expires_at", "oauth_used_checks", ["expires_at"], schema=schema
    )
    # "Sign out everywhere": keyed on the storefront's user id, not a column on its users.
    op.create_table(
        "user_sessions",
        sa.Column("user_id", sa.Text(), primary_key=True),
        sa.Column("sessions_valid_after", sa.BigInteger(), nullable=False),
        schema=schema,
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("user_sessions", schema=schema)
    op.drop_index("ix_oauth_used_checks_expires_at", "oauth_used_checks", schema=schema)
    op.drop_table("oauth_used_checks", schema=schema)
