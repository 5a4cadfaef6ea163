"""AUTHSVC_PRISMA_MAP read into a value: the storefront's `@@map`/`@map` names.

Plain values and their parser, apart from the tables built from them (tables.py), so the
settings can check the variable at start-up without importing SQLAlchemy's table layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRISMA_SCHEMA = "public"  # Prisma's default when DATABASE_URL has no ?schema=

# The Prisma names authsvc knows, with the column keys the repository uses for them.
USER_FIELDS = {
    "id": "id",
    "email": "email",
    "name": "name",
    "image": "image",
    "password": "password_hash",
    "role": "role",
    "fundraiserId": "fundraiser_id",
    "emailVerified": "email_verified",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
}
ACCOUNT_FIELDS = {
    "id": "id",
    "userId": "user_id",
    "type": "type",
    "provider": "provider",
    "providerAccountId": "provider_account_id",
}
MODELS = ("User", "Account", "UserRole")
DEFAULT_TABLES = {"User": "users", "Account": "accounts", "UserRole": "UserRole"}


class PrismaMapError(ValueError):
    """AUTHSVC_PRISMA_MAP cannot be read; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class PrismaNames:
    """The storefront's `@@map`/`@map` names: models and enum to tables and type, fields to
    columns. Defaults are the storefront schema's (`users`, `accounts`, `"UserRole"`)."""

    user_table: str = "users"
    account_table: str = "accounts"
    role_enum: str = "UserRole"
    user_columns: dict[str, str] = field(default_factory=lambda: {f: f for f in USER_FIELDS})
    account_columns: dict[str, str] = field(default_factory=lambda: {f: f for f in ACCOUNT_FIELDS})


def parse_prisma_map(raw: str) -> PrismaNames:
    """`User=User,Account=Account,User.fundraiserId=fundraiser_id`: the `@@map("…")` of a
    model or enum, or the `@map("…")` of a field, under its Prisma name."""
    tables = dict(DEFAULT_TABLES)
    user_columns: dict[str, str] = {}
    account_columns: dict[str, str] = {}
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        name, equals, mapped = (side.strip() for side in entry.partition("="))
        if not equals or not name or not mapped:
            raise PrismaMapError(
                f"AUTHSVC_PRISMA_MAP entries are Name=table or Model.field=column, got {entry!r}"
            )
        if len(mapped.encode()) > 63 or "\x00" in mapped:
            raise PrismaMapError(f"AUTHSVC_PRISMA_MAP: {mapped!r} is not a PostgreSQL name")
        model, dot, prisma_field = name.partition(".")
        if not dot:
            if model not in MODELS:
                raise PrismaMapError(
                    f"AUTHSVC_PRISMA_MAP: unknown model {model!r} (known: {', '.join(MODELS)})"
                )
            tables[model] = mapped
            continue
        known = {"User": USER_FIELDS, "Account": ACCOUNT_FIELDS}.get(model)
        if known is None or prisma_field not in known:
            fields = ", ".join(f"User.{f}" for f in USER_FIELDS)
            fields += ", " + ", ".join(f"Account.{f}" for f in ACCOUNT_FIELDS)
            raise PrismaMapError(f"AUTHSVC_PRISMA_MAP: unknown field {name!r} (known: {fields})")
        (user_columns if model == "User" else account_columns)[prisma_field] = mapped
    return PrismaNames(
        user_table=tables["User"],
        account_table=tables["Account"],
        role_enum=tables["UserRole"],
        user_columns={f: user_columns.get(f, f) for f in USER_FIELDS},
        account_columns={f: account_columns.get(f, f) for f in ACCOUNT_FIELDS},
    )
