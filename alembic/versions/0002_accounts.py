"""accounts (OAuth identities) and single-use OAuth checks

Revision ID: 0002_accounts
Revises: 0001_users
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_accounts"
down_revision: str | None = "0001_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(64),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("provider_account_id", sa.String(255), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("provider", "provider_account_id", name="uq_accounts_provider_id"),
    )
    op.create_index("ix_accounts_user_id", "accounts", ["user_id"])
    op.create_table(
        "oauth_used_checks",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.Integer(), nullable=False),
    )
    op.create_index("ix_oauth_used_checks_expires_at", "oauth_used_checks", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_oauth_used_checks_expires_at", table_name="oauth_used_checks")
    op.drop_table("oauth_used_checks")
    op.drop_index("ix_accounts_user_id", table_name="accounts")
    op.drop_table("accounts")
