"""`authsvc import-users`: users from a JSON Lines or CSV export sign in with their old
passwords; bad lines are reported by number and nothing is half-written; a second run
changes nothing; a 100 000-line file imports in bounded memory."""

from __future__ import annotations

import asyncio
import csv
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import argon2
import bcrypt
import httpx
import pytest
from sqlalchemy import text

from authsvc.app import AuthService, create_app
from authsvc.cli import run
from authsvc.db import Database
from authsvc.migrations import upgrade
from authsvc.users.passwords import PasswordHasher
from tests.conftest import BASE, SECRET, make_settings, throwaway_postgres
from tests.prisma import fetch_rows, storefront_database
from tests.processes import AUTHSVC, authsvc_environment

PASSWORD = "correct horse battery"
BCRYPT = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=10)).decode()
BCRYPT_2Y = "$2y$" + BCRYPT[4:]
ARGON2I = argon2.PasswordHasher(type=argon2.Type.I, time_cost=1, memory_cost=8192).hash(PASSWORD)


@pytest.fixture
def environment(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The CLI's environment on a fresh database (SQLite file or PostgreSQL, emptied)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("DATABASE_URL", database_url)
    if database_url.startswith("postgresql"):
        asyncio.run(_empty(database_url))
    return database_url


async def _empty(database_url: str) -> None:
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.execute(text("TRUNCATE users CASCADE"))
    await database.dispose()


def write_jsonl(path: Path, *records: dict[str, Any] | str) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = run(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def stored(database_url: str) -> list[tuple[Any, ...]]:
    async def read() -> list[tuple[Any, ...]]:
        database = Database(database_url)
        async with database.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT id, email, name, role, password_hash, image, fundraiser_id "
                    "FROM users ORDER BY email"
                )
            )
            result = [tuple(row) for row in rows]
        await database.dispose()
        return result

    return asyncio.run(read())


async def sign_in(app: AuthService, email: str, password: str = PASSWORD) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        token = (await client.get("/api/auth/csrf")).json()["csrfToken"]
        await client.post(
            "/api/auth/callback/credentials",
            data={"email": email, "password": password, "csrfToken": token},
        )
        session: dict[str, Any] = (await client.get("/api/auth/session")).json()
        return session


def signs_in(database_url: str, hasher: PasswordHasher, *emails: str) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        app = create_app(make_settings(database_url=database_url), hasher=hasher)
        try:
            return [await sign_in(app, email) for email in emails]
        finally:
            await app.services.database.dispose()

    return asyncio.run(go())


EXPORT: list[dict[str, Any]] = [
    {
        "id": "ckimported000000000000001",
        "email": "Ada@Example.com",
        "name": "Ada",
        "role": "ADMIN",
        "password": BCRYPT,
        "image": "https://example.com/ada.png",
        "fundraiserId": "fund-1",
    },
    {"email": "grace@example.com", "password_hash": ARGON2I},
    {"email": "linus@example.com", "password": BCRYPT_2Y, "role": "staff"},
    {"email": "oauth-only@example.com", "name": "Only OAuth", "password": None},
]


def test_imported_users_sign_in_with_their_old_passwords(
    environment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], hasher: PasswordHasher
) -> None:
    export = write_jsonl(tmp_path / "users.jsonl", *EXPORT)

    status, out, err = cli(capsys, "import-users", "--file", str(export))

    assert (status, err) == (0, "")
    assert out == "imported users.jsonl: 4 users read, 4 created, 0 already present\n"
    sessions = signs_in(
        environment, hasher, "ada@example.com", "grace@example.com", "linus@example.com"
    )
    assert sessions[0]["user"] == {
        "name": "Ada",
        "email": "ada@example.com",
        "image": "https://example.com/ada.png",
        "id": "ckimported000000000000001",
        "role": "ADMIN",
        "fundraiserId": "fund-1",
    }
    assert [session["user"]["role"] for session in sessions[1:]] == ["CUSTOMER", "STAFF"]


def test_legacy_hashes_are_upgraded_to_argon2id_on_the_first_sign_in(
    environment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], hasher: PasswordHasher
) -> None:
    cli(capsys, "import-users", "--file", str(write_jsonl(tmp_path / "u.jsonl", *EXPORT)))

    signs_in(environment, hasher, "ada@example.com", "grace@example.com", "linus@example.com")

    hashes = [row[4] for row in stored(environment)]
    assert [h.startswith("$argon2id$") if h else None for h in hashes] == [True, True, True, None]
    assert signs_in(environment, hasher, "ada@example.com")[0]["user"]["role"] == "ADMIN"


def test_a_csv_export_from_the_storefronts_users_table_imports(
    environment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ada = ["ckcsv00000000000000000001", "Ada@Example.com", "Ada, Countess", "ADMIN", BCRYPT]
    grace = ["ckcsv00000000000000000002", "grace@example.com", "", "", ""]
    export = tmp_path / "users.csv"
    with export.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "email", "name", "role", "password", "image", "fundraiserId"])
        writer.writerow([*ada, "", ""])
        writer.writerow([*grace, "", "fund-9"])

    status, _, _ = cli(capsys, "import-users", "--file", str(export))

    assert status == 0
    assert stored(environment) == [
        (ada[0], "ada@example.com", "Ada, Countess", "ADMIN", BCRYPT, None, None),
        (grace[0], "grace@example.com", None, "CUSTOMER", None, None, "fund-9"),
    ]


def test_running_the_same_import_again_changes_nothing(
    environment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], hasher: PasswordHasher
) -> None:
    export = write_jsonl(tmp_path / "users.jsonl", *EXPORT)
    cli(capsys, "import-users", "--file", str(export))
    signs_in(environment, hasher, "ada@example.com")  # its hash is upgraded meanwhile
    before = stored(environment)

    status, out, _ = cli(capsys, "import-users", "--file", str(export))

    assert status == 0
    assert out == "imported users.jsonl: 4 users read, 0 created, 4 already present\n"
    assert stored(environment) == before


def test_bad_lines_are_reported_by_number_and_nothing_is_written(
    environment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = write_jsonl(
        tmp_path / "users.jsonl",
        EXPORT[0],
        {"email": "not an address", "password": BCRYPT},
        {"email": "sha@example.com", "password": "sha1$2d5c$0e8a06bbd7a45d4bf0ea1a1d66bd9c4c"},
        "{not json",
        {"email": "x@example.com", "role": "OWNER"},
        {"email": "ADA@example.com"},
        {"email": "y@example.com", "id": "ckimported000000000000001"},
        {"email": "z@example.com", "nickname": "z"},
        "[1, 2]",
        {"email": "ok@example.com", "password": BCRYPT},
    )

    status, out, err = cli(capsys, "import-users", "--file", str(export))

    assert (status, out) == (1, "")
    assert err.splitlines() == [
        "users.jsonl:2: no valid email address",
        "users.jsonl:3: password is not a bcrypt ($2a$, $2b$, $2y$) or Argon2 hash, the formats "
        "authsvc verifies",
        "users.jsonl:4: not JSON (Expecting property name enclosed in double quotes)",
        "users.jsonl:5: role must be one of CUSTOMER, ADMIN, DEVELOPER, STAFF, WHOLESALE, "
        "FUNDRAISER",
        "users.jsonl:8: unknown field 'nickname' (fields: email, name, role, password, id, "
        "image, fundraiserId)",
        "users.jsonl:9: not a JSON object",
        "users.jsonl:6: email repeats line 1",
        "users.jsonl:7: id repeats line 1",
        "authsvc: error: 8 bad lines in users.jsonl: nothing imported",
    ]
    assert stored(environment) == []


def test_an_id_that_belongs_to_another_user_is_a_bad_line(
    environment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli(capsys, "import-users", "--file", str(write_jsonl(tmp_path / "a.jsonl", EXPORT[0])))
    clash = {"email": "someone@example.com", "id": "ckimported000000000000001"}

    status, _, err = cli(
        capsys, "import-users", "--file", str(write_jsonl(tmp_path / "b.jsonl", EXPORT[1], clash))
    )

    assert status == 1
    assert err.splitlines()[0] == "b.jsonl:2: id ckimported000000000000001 belongs to another user"
    assert [row[1] for row in stored(environment)] == ["ada@example.com"]


def test_a_dry_run_counts_and_writes_nothing(
    environment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli(capsys, "import-users", "--file", str(write_jsonl(tmp_path / "a.jsonl", EXPORT[0])))
    export = write_jsonl(tmp_path / "users.jsonl", *EXPORT)

    status, out, _ = cli(capsys, "import-users", "--file", str(export), "--dry-run")

    assert status == 0
    assert out == (
        "dry run: users.jsonl: 4 users read, 3 would be created, 1 already present; "
        "nothing written\n"
    )
    assert len(stored(environment)) == 1


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("users.txt", "{}\n", "cannot tell the format of users.txt from its name"),
        ("users.csv", "email,nickname\na@example.com,a\n", "CSV header: unknown column 'nickname'"),
        ("users.csv", 'email\n"a@example.com\n', "not valid CSV"),
    ],
)
def test_a_file_that_cannot_be_read_is_one_line_and_nothing_is_written(
    environment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str,
    said: str,
) -> None:
    (tmp_path / name).write_text(content)

    status, _, err = cli(capsys, "import-users", "--file", str(tmp_path / name))

    assert status == 1
    assert len(err.splitlines()) == 1 and said in err and err.startswith("authsvc: error: ")


def test_a_missing_file_is_one_line(
    environment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = cli(capsys, "import-users", "--file", str(tmp_path / "none.jsonl"))

    assert status == 1
    assert err.startswith("authsvc: error: cannot read ") and len(err.splitlines()) == 1


async def test_in_prisma_mode_the_import_fills_the_storefronts_table(tmp_path: Path) -> None:
    export = write_jsonl(tmp_path / "users.jsonl", *EXPORT[:2])
    async with storefront_database() as dsn:
        env = authsvc_environment(
            url="http://localhost:3000", database_url=dsn, AUTHSVC_USER_SCHEMA="prisma"
        )
        result = await asyncio.to_thread(
            subprocess.run,
            [str(AUTHSVC), "import-users", "--file", str(export)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        rows = await fetch_rows(
            dsn,
            'SELECT "email", "role", "updatedAt" IS NOT NULL AS stamped FROM "users" ORDER BY 1',
        )

    assert result.returncode == 0, result.stderr
    assert rows == [
        {"email": "ada@example.com", "role": "ADMIN", "stamped": True},
        {"email": "grace@example.com", "role": "CUSTOMER", "stamped": True},
    ]


# -- 100 000 lines in bounded memory -----------------------------------------------------------

# Runs one command and prints the peak RSS of that child alone (KiB), from a fresh process.
PEAK_RSS = (
    "import resource, subprocess, sys, time\n"
    "start = time.monotonic()\n"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "sys.stderr.write(done.stderr)\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(peak, time.monotonic() - start, done.returncode)\n"
)


def big_export(path: Path, count: int) -> Path:
    with path.open("w") as file:
        for i in range(count):
            record = {
                "email": f"shopper{i:06d}@example.com",
                "name": f"Shopper {i}",
                "password": BCRYPT,
            }
            file.write(json.dumps(record) + "\n")
    return path


def measured_import(export: Path, database_url: str) -> tuple[int, float, str]:
    """(peak RSS in KiB, seconds, stderr) of `authsvc import-users` on `export`."""
    env = authsvc_environment(url="http://localhost:3000", database_url=database_url)
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, str(AUTHSVC), "import-users", "--file", str(export)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    rss, seconds, status = result.stdout.split()
    assert status == "0", result.stderr
    return int(rss), float(seconds), result.stderr


@pytest.fixture
async def empty_authsvc_database() -> AsyncIterator[str]:
    async with throwaway_postgres() as dsn:
        await asyncio.to_thread(upgrade, dsn)
        yield dsn


async def test_a_100000_line_file_imports_in_bounded_memory_and_its_users_sign_in(
    empty_authsvc_database: str, tmp_path: Path, hasher: PasswordHasher
) -> None:
    small = big_export(tmp_path / "small.jsonl", 10_000)
    large = big_export(tmp_path / "large.jsonl", 100_000)
    async with throwaway_postgres() as other:
        await asyncio.to_thread(upgrade, other)
        small_rss, small_seconds, _ = await asyncio.to_thread(measured_import, small, other)

    large_rss, large_seconds, progress = await asyncio.to_thread(
        measured_import, large, empty_authsvc_database
    )

    print(  # the figures for the report: `pytest -s -k 100000`
        f"\nimport-users peak RSS: {small_rss / 1024:.1f} MiB for 10 000 lines "
        f"({small_seconds:.1f} s), {large_rss / 1024:.1f} MiB for 100 000 lines "
        f"({large_seconds:.1f} s)"
    )
    # Ten times the lines, not ten times the memory: the file is streamed (a Python list of
    # 100 000 parsed lines alone would take more than this margin).
    assert large_rss - small_rss < 16 * 1024
    assert re.findall(r"import-users: (\d+) lines read", progress) == [
        str(n) for n in range(10_000, 100_001, 10_000)
    ]
    app = create_app(make_settings(database_url=empty_authsvc_database), hasher=hasher)
    try:
        for email in ("shopper000000@example.com", "shopper099999@example.com"):
            assert (await sign_in(app, email))["user"]["email"] == email
    finally:
        await app.services.database.dispose()
