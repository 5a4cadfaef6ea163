"""The `users` table (SQLAlchemy 2), shaped like the storefront's Prisma `User`."""

from __future__ import annotations

from datetime import datetime

from cuid2 import Cuid
from sqlalchemy import (
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Re-exported: the roles belong to records.py, which needs no database.
from authsvc.users.records import ROLES as ROLES
from authsvc.users.records import Role as Role

_cuid = Cuid(length=25)


def new_id() -> str:
    """A collision-resistant, non-sequential id in the CUID family (CUID2)."""
    return str(_cuid.generate())


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    # Stored normalised (see users.emails), so the unique index is case-insensitive in effect.
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    image: Mapped[str | None] = mapped_column(String(2048))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(
            Role,
            name="user_role",
            native_enum=False,
            length=16,
            create_constraint=True,
            validate_strings=True,
        ),
        default=Role.CUSTOMER,
        server_default=Role.CUSTOMER.value,
    )
    fundraiser_id: Mapped[str | None] = mapped_column(String(64))
    # "Sign out everywhere": tokens authenticated before this time (epoch seconds) are
    # refused when revocation mode is on.
    sessions_valid_after: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Account(Base):
    """A sign-in identity at an OAuth provider, linked to one user (next-auth's Account)."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("provider", "provider_account_id", name="uq_accounts_provider_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(64))
    provider_account_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UsedCheck(Base):
    """OAuth `state` values already redeemed, kept until they expire (single use)."""

    __tablename__ = "oauth_used_checks"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)
