"""`authsvc doctor`: does this database fit the selected user schema, and if not, what to do.

Each check gives one finding: ok, a warning (authsvc works, but something is slow or some
users cannot sign in), or a problem (something authsvc needs is missing or would fail),
with the exact fix. `authsvc serve` runs the same checks in Prisma mode and refuses to
start on a problem.

In Prisma mode the fixes are written for the storefront's side first (schema.prisma and
`prisma migrate`), because a table Prisma owns must change through Prisma or it drifts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from authsvc.database_url import quote_identifier
from authsvc.db import Database
from authsvc.migrations import alembic_config
from authsvc.settings import Settings
from authsvc.users.models import Role
from authsvc.users.passwords import BCRYPT_PATTERN
from authsvc.users.prisma_map import ACCOUNT_FIELDS, USER_FIELDS
from authsvc.users.tables import UserTables, tables_for

Status = Literal["ok", "warning", "problem"]
TEXT = frozenset({"text", "character varying"})
TIMESTAMP = frozenset({"timestamp without time zone", "timestamp with time zone"})
# The Prisma type each field needs, for the fixes ("declare `fundraiserId String?`").
PRISMA_TYPES = {
    "id": "String @id @default(cuid())",
    "email": "String @unique",
    "name": "String?",
    "image": "String?",
    "password": "String?",
    "role": "UserRole @default(CUSTOMER)",
    "fundraiserId": "String?",
    "emailVerified": "DateTime?",
    "createdAt": "DateTime @default(now())",
    "updatedAt": "DateTime @updatedAt",
    "userId": "String",
    "type": "String",
    "provider": "String",
    "providerAccountId": "String",
}
# authsvc writes NULL into these (an OAuth-only user has no password, a new user no name).
NULLABLE_USER_FIELDS = ("name", "image", "password", "fundraiserId", "emailVerified")


@dataclass(frozen=True, slots=True)
class Finding:
    status: Status
    subject: str
    detail: str
    fix: str | None = None


def render(findings: Sequence[Finding]) -> str:
    """The report `authsvc doctor` prints: one line per check, its fix indented below."""
    lines = []
    for finding in findings:
        lines.append(f"{finding.status:<8} {finding.subject}: {finding.detail}")
        if finding.fix and finding.status != "ok":
            lines.append(f"{'':<8} fix: {finding.fix}")
    problems = sum(f.status == "problem" for f in findings)
    warnings = sum(f.status == "warning" for f in findings)
    lines.append(
        f"{problems} problem{'s' * (problems != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    )
    return "\n".join(lines)


def problems(findings: Sequence[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.status == "problem"]


async def diagnose(settings: Settings) -> list[Finding]:
    """Every check for the selected user schema; raises the database's error if it cannot
    be reached at all."""
    database = Database(settings.database_url, timeout=settings.database_timeout, pool_size=1)
    try:
        async with database.engine.connect() as conn:
            if settings.prisma_mode:
                return await _PrismaChecks(conn, settings, tables_for(settings)).run()
            return [await _migrated(conn, settings, None)]
    finally:
        await database.dispose()


async def _migrated(conn: AsyncConnection, settings: Settings, own_schema: str | None) -> Finding:
    script = ScriptDirectory.from_config(
        alembic_config(settings.database_url, own_schema=own_schema)
    )
    head = script.get_current_head()

    def current(sync: Connection) -> str | None:
        opts: dict[str, Any] = {"version_table_schema": own_schema} if own_schema else {}
        return MigrationContext.configure(sync, opts=opts).get_current_revision()

    revision = await conn.run_sync(current)
    where = f"schema {quote_identifier(own_schema)}" if own_schema else "authsvc's tables"
    if revision == head:
        return Finding("ok", where, f"migrated (revision {head})")
    state = "not created yet" if revision is None else f"at revision {revision}, not {head}"
    return Finding("problem", where, state, "run `authsvc migrate`")


class _PrismaChecks:
    def __init__(self, conn: AsyncConnection, settings: Settings, tables: UserTables) -> None:
        assert tables.names is not None
        assert tables.storefront_schema is not None
        assert tables.own_schema is not None
        self.conn = conn
        self.settings = settings
        self.names = tables.names
        self.schema = tables.storefront_schema
        self.own_schema = tables.own_schema
        self.findings: list[Finding] = []

    def add(self, status: Status, subject: str, detail: str, fix: str | None = None) -> None:
        self.findings.append(Finding(status, subject, detail, fix))

    async def rows(self, query: str, **params: Any) -> list[dict[str, Any]]:
        result = await self.conn.execute(text(query), params)
        return [dict(row) for row in result.mappings()]

    async def count(self, query: str, **params: Any) -> int:
        return int(await self.conn.scalar(text(query), params) or 0)

    async def run(self) -> list[Finding]:
        schemas = await self.rows(
            "SELECT 1 FROM pg_namespace WHERE nspname = :schema", schema=self.schema
        )
        if not schemas:
            self.add(
                "problem",
                f"schema {quote_identifier(self.schema)}",
                "does not exist",
                "point DATABASE_URL (its ?schema=) at the storefront's schema",
            )
            return self.findings
        users = await self._table("User", self.names.user_table)
        if users is not None:
            await self._users(users)
        accounts = await self._table("Account", self.names.account_table)
        if accounts is not None:
            await self._accounts(accounts)
        self.findings.append(await _migrated(self.conn, self.settings, self.own_schema))
        return self.findings

    def _name(self, table: str, column: str | None = None) -> str:
        return table if column is None else f"{table}.{quote_identifier(column)}"

    async def _table(self, model: str, table: str) -> dict[str, dict[str, Any]] | None:
        columns = await self.rows(
            "SELECT column_name, data_type, udt_schema, udt_name, is_nullable, "
            "column_default, is_identity, is_generated FROM information_schema.columns "
            "WHERE table_schema = :schema AND table_name = :table ORDER BY ordinal_position",
            schema=self.schema,
            table=table,
        )
        if not columns:
            self.add(
                "problem",
                f"table {quote_identifier(table)}",
                f"not found in schema {quote_identifier(self.schema)}",
                f"run the storefront's `prisma migrate deploy`, or name the table of model "
                f"{model}: AUTHSVC_PRISMA_MAP={model}=<table>",
            )
            return None
        self.add("ok", f"table {quote_identifier(table)}", f"found ({len(columns)} columns)")
        return {column["column_name"]: column for column in columns}

    def _column(
        self,
        model: str,
        table: str,
        columns: dict[str, dict[str, Any]],
        field: str,
        column: str,
        types: frozenset[str],
        *,
        nullable: bool = False,
    ) -> dict[str, Any] | None:
        subject = self._name(table, column)
        declare = f"declare `{field} {PRISMA_TYPES[field]}` in model {model} (schema.prisma)"
        found = columns.get(column)
        if found is None:
            self.add(
                "problem",
                subject,
                "missing",
                f"{declare} and run `prisma migrate dev`, or name the column that holds it: "
                f"AUTHSVC_PRISMA_MAP={model}.{field}=<column>",
            )
            return None
        if found["data_type"] not in types:
            self.add(
                "problem",
                subject,
                f"is {found['data_type']}, authsvc needs {' or '.join(sorted(types))}",
                f"{declare} and run `prisma migrate dev`",
            )
            return None
        if nullable and found["is_nullable"] != "YES":
            self.add(
                "problem",
                subject,
                "is NOT NULL, but authsvc writes users without it",
                f"{declare} (optional) and run `prisma migrate dev`",
            )
            return None
        self.add("ok", subject, f"{found['data_type']}{', nullable' if nullable else ''}")
        return found

    async def _users(self, columns: dict[str, dict[str, Any]]) -> None:
        table = self.names.user_table
        mapped = self.names.user_columns
        for field in USER_FIELDS:
            if field == "role":
                self._role_column(columns.get(mapped[field]))
                continue
            types = TIMESTAMP if field in ("emailVerified", "createdAt", "updatedAt") else TEXT
            self._column(
                "User",
                table,
                columns,
                field,
                mapped[field],
                types,
                nullable=field in NULLABLE_USER_FIELDS,
            )
        self._unfillable("User", table, columns, set(mapped.values()))
        await self._enum()
        indexes = await self._indexes(table)
        self._unique("User", table, indexes, [mapped["email"]], "email", "@unique on email")
        self._unique("User", table, indexes, [mapped["id"]], "id", "@id on id")
        await self._email_lookups(table, mapped["email"], indexes)
        await self._password_formats(table, mapped["password"])

    def _role_column(self, found: dict[str, Any] | None) -> None:
        table, column = self.names.user_table, self.names.user_columns["role"]
        subject = self._name(table, column)
        enum = self.names.role_enum
        if found is None:
            self.add(
                "problem",
                subject,
                "missing",
                f"declare `role {enum} @default(CUSTOMER)` in model User (schema.prisma) and "
                "run `prisma migrate dev`, or name its column: "
                "AUTHSVC_PRISMA_MAP=User.role=<column>",
            )
        elif found["data_type"] != "USER-DEFINED" or found["udt_name"] != enum:
            self.add(
                "problem",
                subject,
                f"is {found['udt_name']}, authsvc needs the enum {quote_identifier(enum)}",
                f"declare `role {enum}` in model User, or name the enum type: "
                f"AUTHSVC_PRISMA_MAP=UserRole=<type>",
            )
        else:
            self.add("ok", subject, f"enum {quote_identifier(enum)}")

    async def _enum(self) -> None:
        enum = self.names.role_enum
        labels = [
            row["enumlabel"]
            for row in await self.rows(
                "SELECT e.enumlabel FROM pg_type t "
                "JOIN pg_namespace n ON n.oid = t.typnamespace "
                "JOIN pg_enum e ON e.enumtypid = t.oid "
                "WHERE n.nspname = :schema AND t.typname = :name ORDER BY e.enumsortorder",
                schema=self.schema,
                name=enum,
            )
        ]
        subject = f"enum {quote_identifier(enum)}"
        if not labels:
            self.add(
                "problem",
                subject,
                "not found",
                f"declare `enum {enum} {{ {' '.join(r.value for r in Role)} }}` in schema.prisma "
                "and run `prisma migrate dev`",
            )
            return
        missing = [role.value for role in Role if role.value not in labels]
        for value in missing:
            self.add(
                "problem",
                f"{subject} value {value}",
                "missing",
                f"add {value} to enum {enum} in schema.prisma and run `prisma migrate dev` "
                f"(it runs ALTER TYPE {quote_identifier(enum)} ADD VALUE '{value}')",
            )
        unknown = [label for label in labels if label not in {role.value for role in Role}]
        for value in unknown:
            self.add(
                "warning",
                f"{subject} value {value}",
                "authsvc knows no such role: users who have it cannot sign in through it",
                f"give those users one of {', '.join(r.value for r in Role)}",
            )
        if not missing:
            self.add("ok", subject, f"has {', '.join(r.value for r in Role)}")

    def _unfillable(
        self, model: str, table: str, columns: dict[str, dict[str, Any]], known: set[str]
    ) -> None:
        """Columns authsvc does not know are fine, unless an insert cannot leave them out."""
        for name, column in columns.items():
            if name in known:
                continue
            if (
                column["is_nullable"] == "NO"
                and column["column_default"] is None
                and column["is_identity"] != "YES"
                and column["is_generated"] != "ALWAYS"
            ):
                self.add(
                    "problem",
                    self._name(table, name),
                    "is NOT NULL without a default: authsvc's new rows cannot leave it out",
                    f"give `{name}` a @default(…) in model {model}, or make it optional, and "
                    "run `prisma migrate dev`",
                )
            else:
                self.add("ok", self._name(table, name), "not used by authsvc, left alone")

    async def _indexes(self, table: str) -> list[dict[str, Any]]:
        return await self.rows(
            "SELECT i.indisunique AS is_unique, i.indpred IS NOT NULL AS partial, "
            "pg_get_indexdef(i.indexrelid, 1, true) AS first, i.indnatts AS width, "
            "ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "ORDER BY k.n) AS columns "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_namespace s ON s.oid = c.relnamespace "
            "WHERE s.nspname = :schema AND c.relname = :table",
            schema=self.schema,
            table=table,
        )

    def _unique(
        self,
        model: str,
        table: str,
        indexes: list[dict[str, Any]],
        columns: list[str],
        what: str,
        prisma: str,
    ) -> None:
        subject = f"{table} unique ({', '.join(quote_identifier(c) for c in columns)})"
        if any(
            index["is_unique"] and not index["partial"] and list(index["columns"]) == columns
            for index in indexes
        ):
            self.add("ok", subject, "present")
            return
        self.add(
            "problem",
            subject,
            f"missing: concurrent first sign-ins could make two users for one {what}",
            f"declare {prisma} in model {model} (schema.prisma) and run `prisma migrate dev`",
        )

    async def _email_lookups(self, table: str, column: str, indexes: list[dict[str, Any]]) -> None:
        wanted = f"lower({column})"
        covered = any(
            _expression(index["first"]) == wanted and index["width"] == 1 and not index["partial"]
            for index in indexes
        )
        subject = f"{table} index on lower({quote_identifier(column)})"
        if covered:
            self.add("ok", subject, "present")
        else:
            statement = (
                f"CREATE INDEX {quote_identifier(table + '_email_lower_idx')} ON "
                f"{quote_identifier(table)} (lower({quote_identifier(column)}));"
            )
            self.add(
                "warning",
                subject,
                "missing: every sign-in reads the whole table to match emails in any case",
                f"`prisma migrate dev --create-only`, put `{statement}` in the new "
                "migration.sql, then `prisma migrate dev` (authsvc never creates it itself)",
            )
        qualified = f"{quote_identifier(self.schema)}.{quote_identifier(table)}"
        email = quote_identifier(column)
        count = await self.count(
            f"SELECT count(*) FROM (SELECT lower({email}) FROM {qualified} "  # noqa: S608
            f"GROUP BY 1 HAVING count(*) > 1) AS d"
        )
        if count:
            self.add(
                "warning",
                f"{table} emails ignoring case",
                f"{count} address{'es belong' if count != 1 else ' belongs'} to more than one "
                "user: none of those users can sign in until they are merged",
                f"list them with SELECT lower({email}), "  # noqa: S608 - advice, not run
                f"array_agg({quote_identifier(self.names.user_columns['id'])}) FROM {qualified} "
                "GROUP BY 1 HAVING count(*) > 1",
            )
        else:
            self.add("ok", f"{table} emails ignoring case", "unique")

    async def _password_formats(self, table: str, column: str) -> None:
        qualified = f"{quote_identifier(self.schema)}.{quote_identifier(table)}"
        password = quote_identifier(column)
        count = await self.count(
            f"SELECT count(*) FROM {qualified} WHERE {password} IS NOT NULL "  # noqa: S608
            f"AND {password} !~ :bcrypt AND {password} !~ '^[$]argon2(id|i|d)[$]'",
            bcrypt=f"^{BCRYPT_PATTERN}$",
        )
        if count:
            self.add(
                "warning",
                f"{table} password hashes",
                f"{count} user{'s have' if count != 1 else ' has'} a hash authsvc cannot verify "
                "(it verifies bcrypt and Argon2): their password sign-in fails",
                "have them reset their password, or sign in with a provider",
            )
        else:
            self.add("ok", f"{table} password hashes", "every one is bcrypt or Argon2")

    async def _accounts(self, columns: dict[str, dict[str, Any]]) -> None:
        table = self.names.account_table
        mapped = self.names.account_columns
        for field in ACCOUNT_FIELDS:
            self._column("Account", table, columns, field, mapped[field], TEXT)
        self._unfillable("Account", table, columns, set(mapped.values()))
        indexes = await self._indexes(table)
        self._unique(
            "Account",
            table,
            indexes,
            [mapped["provider"], mapped["providerAccountId"]],
            "provider identity",
            "@@unique([provider, providerAccountId])",
        )


def _expression(definition: str) -> str:
    """An index expression without quotes, casts, spaces or the outer parentheses."""
    bare = re.sub(r"::[a-z ]+", "", definition.replace('"', "").replace(" ", ""))
    while bare.startswith("(") and bare.endswith(")"):
        bare = bare[1:-1]
    return re.sub(r"lower\(\((.*)\)\)", r"lower(\1)", bare)
