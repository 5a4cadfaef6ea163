"""`authsvc doctor` (and `serve`'s start-up check) on real PostgreSQL databases shaped by the
storefront's Prisma migrations, then broken the ways a real one can be."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from authsvc.cli import run
from authsvc.migrations import upgrade
from tests.conftest import SECRET, throwaway_postgres
from tests.prisma import MIGRATIONS, storefront_database
from tests.processes import AUTHSVC, authsvc_environment
from tests.servers import free_port

# Runs `authsvc doctor` in Prisma mode on a database (extra environment as keywords).
Check = Callable[..., Awaitable[tuple[int, str]]]
INIT = MIGRATIONS / "20240115093000_init" / "migration.sql"


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with storefront_database() as dsn:
        yield dsn


async def execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def doctor(
    dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    **env: str,
) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("DATABASE_URL", dsn)
    monkeypatch.setenv("AUTHSVC_USER_SCHEMA", "prisma")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    status = run(["doctor"])
    out, err = capsys.readouterr()
    assert err == ""
    return status, out


@pytest.fixture
def check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Check:
    async def go(dsn: str, **env: str) -> tuple[int, str]:
        return await asyncio.to_thread(doctor, dsn, monkeypatch, capsys, tmp_path, **env)

    return go


def lines_about(out: str, subject: str) -> list[str]:
    """The finding about `subject` and its fix line, if any."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.split(maxsplit=1)[-1].startswith(subject + ":"):
            fix = (
                lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1].startswith(" ") else ""
            )
            return [line, fix] if fix else [line]
    raise AssertionError(f"no finding about {subject}:\n{out}")


async def test_the_storefronts_database_passes_with_one_warning_for_the_missing_index(
    database: str, check: Check
) -> None:
    status, out = await check(database)

    assert status == 0, out
    assert out.splitlines()[-1] == "0 problems, 1 warning"
    [warning, fix] = lines_about(out, 'users index on lower("email")')
    assert warning.startswith("warning ")
    assert 'CREATE INDEX "users_email_lower_idx" ON "users" (lower("email"));' in fix
    assert lines_about(out, 'users."marketingOptIn"')[0].endswith("not used by authsvc, left alone")
    assert lines_about(out, 'schema "authsvc"')[0].startswith("ok ")


async def test_with_the_documented_index_every_check_is_ok(database: str, check: Check) -> None:
    await execute(database, 'CREATE INDEX "users_email_lower_idx" ON "users" (lower("email"))')

    status, out = await check(database)

    assert status == 0
    assert out.splitlines()[-1] == "0 problems, 0 warnings"
    assert all(line.startswith("ok ") for line in out.splitlines()[:-1]), out


async def test_a_missing_column_is_a_problem_with_its_fix(database: str, check: Check) -> None:
    await execute(database, 'ALTER TABLE "users" DROP COLUMN "fundraiserId"')

    status, out = await check(database)

    assert status == 1
    problem, fix = lines_about(out, 'users."fundraiserId"')
    assert problem == 'problem  users."fundraiserId": missing'
    assert fix == (
        "fix: declare `fundraiserId String?` in model User (schema.prisma) and run `prisma "
        "migrate dev`, or name the column that holds it: "
        "AUTHSVC_PRISMA_MAP=User.fundraiserId=<column>"
    )


async def test_a_column_named_otherwise_is_found_through_the_map(
    database: str, check: Check
) -> None:
    await execute(database, 'ALTER TABLE "users" RENAME COLUMN "fundraiserId" TO "fundraiser_id"')

    status, out = await check(database, AUTHSVC_PRISMA_MAP="User.fundraiserId=fundraiser_id")

    assert status == 0, out
    assert lines_about(out, 'users."fundraiser_id"')[0].startswith("ok ")


async def test_an_enum_without_a_role_is_a_problem_with_its_fix(check: Check) -> None:
    async with throwaway_postgres() as dsn:
        await execute(dsn, INIT.read_text().replace(", 'FUNDRAISER'", ""))
        await asyncio.to_thread(upgrade, dsn, own_schema="authsvc")

        status, out = await check(dsn)

    assert status == 1
    problem, fix = lines_about(out, 'enum "UserRole" value FUNDRAISER')
    assert problem == 'problem  enum "UserRole" value FUNDRAISER: missing'
    assert fix == (
        "fix: add FUNDRAISER to enum UserRole in schema.prisma and run `prisma migrate dev` "
        "(it runs ALTER TYPE \"UserRole\" ADD VALUE 'FUNDRAISER')"
    )


async def test_an_enum_value_authsvc_does_not_know_is_a_warning(
    database: str, check: Check
) -> None:
    await execute(database, "ALTER TYPE \"UserRole\" ADD VALUE 'VIP'")

    status, out = await check(database)

    assert status == 0
    assert lines_about(out, 'enum "UserRole" value VIP')[0].startswith("warning ")


async def test_a_role_column_of_another_type_is_a_problem(database: str, check: Check) -> None:
    await execute(
        database,
        'ALTER TABLE "users" ALTER COLUMN "role" DROP DEFAULT, '
        'ALTER COLUMN "role" TYPE TEXT USING "role"::text',
    )

    status, out = await check(database)

    assert status == 1
    assert lines_about(out, 'users."role"')[0] == (
        'problem  users."role": is text, authsvc needs the enum "UserRole"'
    )


async def test_a_required_column_authsvc_cannot_fill_is_a_problem(
    database: str, check: Check
) -> None:
    await execute(database, 'ALTER TABLE "users" ADD COLUMN "tenantId" TEXT NOT NULL')

    status, out = await check(database)

    assert status == 1
    problem, fix = lines_about(out, 'users."tenantId"')
    assert "NOT NULL without a default" in problem
    assert "@default" in fix


async def test_a_password_column_that_forbids_null_is_a_problem(
    database: str, check: Check
) -> None:
    await execute(database, 'ALTER TABLE "users" ALTER COLUMN "password" SET NOT NULL')

    status, out = await check(database)

    assert status == 1
    assert "is NOT NULL, but authsvc writes users without it" in out


async def test_a_missing_unique_index_on_accounts_is_a_problem(database: str, check: Check) -> None:
    await execute(database, 'DROP INDEX "accounts_provider_providerAccountId_key"')

    status, out = await check(database)

    assert status == 1
    problem, fix = lines_about(out, 'accounts unique ("provider", "providerAccountId")')
    assert problem.startswith("problem ")
    assert "@@unique([provider, providerAccountId])" in fix


async def test_a_missing_table_names_the_map_setting(check: Check) -> None:
    async with throwaway_postgres() as dsn:
        await execute(dsn, INIT.read_text().replace('"users"', '"User"'))
        await asyncio.to_thread(upgrade, dsn, own_schema="authsvc")

        status, out = await check(dsn)
        fixed, _ = await check(dsn, AUTHSVC_PRISMA_MAP="User=User")

    assert status == 1
    problem, fix = lines_about(out, 'table "users"')
    assert problem == 'problem  table "users": not found in schema "public"'
    assert "AUTHSVC_PRISMA_MAP=User=<table>" in fix
    assert fixed == 0


async def test_an_unmigrated_own_schema_is_a_problem(check: Check) -> None:
    async with storefront_database(migrated=False) as dsn:
        status, out = await check(dsn)

    assert status == 1
    assert lines_about(out, 'schema "authsvc"') == [
        'problem  schema "authsvc": not created yet',
        "fix: run `authsvc migrate`",
    ]


async def test_emails_equal_up_to_case_and_unverifiable_hashes_are_warnings(
    database: str, check: Check
) -> None:
    await execute(
        database,
        """INSERT INTO "users" ("id", "email", "password", "updatedAt") VALUES
           ('c1', 'Ada@example.com', 'sha1$abc', now()),
           ('c2', 'ada@EXAMPLE.com', NULL, now()),
           ('c3', 'grace@example.com', '$2a$10$' || repeat('a', 53), now())""",
    )

    status, out = await check(database)

    assert status == 0
    [duplicates, listing] = lines_about(out, "users emails ignoring case")
    assert (
        duplicates.startswith("warning ")
        and "1 address belongs to more than one user" in duplicates
    )
    assert 'SELECT lower("email"), array_agg("id")' in listing
    [unverifiable, _] = lines_about(out, "users password hashes")
    assert "1 user has a hash authsvc cannot verify" in unverifiable


# -- serve refuses a database that does not fit ----------------------------------------------


async def test_serve_refuses_to_start_on_a_problem_with_one_line(database: str) -> None:
    await execute(database, 'ALTER TABLE "users" DROP COLUMN "emailVerified"')
    env = authsvc_environment(
        url="http://localhost:3000", database_url=database, AUTHSVC_USER_SCHEMA="prisma"
    )

    result = await asyncio.to_thread(
        subprocess.run,
        [str(AUTHSVC), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "authsvc: error: the database does not fit AUTHSVC_USER_SCHEMA=prisma: "
        'users."emailVerified": missing (`authsvc doctor` lists every problem and its fix)'
    ]


def test_doctor_in_authsvcs_own_mode_checks_the_migrations(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    monkeypatch.delenv("AUTHSVC_USER_SCHEMA", raising=False)

    before = run(["doctor"])
    first = capsys.readouterr().out
    run(["migrate"])
    capsys.readouterr()
    after = run(["doctor"])

    assert (before, after) == (1, 0)
    assert "problem  authsvc's tables: not created yet" in first
    assert capsys.readouterr().out.startswith("ok       authsvc's tables: migrated")
