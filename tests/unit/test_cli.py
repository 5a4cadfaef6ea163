"""The `authsvc` command, run in-process through `authsvc.cli.run`.

`run` (and alembic's env.py) call asyncio.run, so these tests are synchronous.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest

from authsvc.cli import run
from authsvc.migrations import upgrade
from tests.processes import AUTHSVC, stop, wait_until_up

SECRET_VARIABLES = ("NEXTAUTH_SECRET", "AUTH_SECRET", "NEXTAUTH_SECRET_PREVIOUS")
UNREACHABLE_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:1/none"
COMMANDS = ("serve", "migrate", "create-user", "set-role", "gen-secret")
CUID2 = r"[a-z][a-z0-9]{24}"


def new_secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop every setting the developer's shell might carry into the test."""
    for name in list(os.environ):
        if name.startswith(("NEXTAUTH_", "AUTHSVC_")) or name in (
            *SECRET_VARIABLES,
            "DATABASE_URL",
        ):
            monkeypatch.delenv(name)


@pytest.fixture
def database_path(tmp_path: Path) -> Path:
    return tmp_path / "cli.db"


@pytest.fixture(autouse=True)
def cli_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_path: Path) -> None:
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)  # no stray `.env` is read
    monkeypatch.setenv("NEXTAUTH_SECRET", new_secret())
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{database_path}")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = run(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("authsvc: error: "), err
    assert "Traceback" not in err
    return lines[0]


def create_user(
    capsys: pytest.CaptureFixture[str], email: str = "ada@example.com", *extra: str
) -> tuple[int, str, str]:
    return cli(capsys, "create-user", "--email", email, "--password", "correct horse", *extra)


def stored_users(database_path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(database_path) as conn:
        return list(conn.execute("SELECT id, email, role FROM users ORDER BY email"))


# --- gen-secret -------------------------------------------------------------------------


def test_gen_secret_prints_base64_of_32_random_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = cli(capsys, "gen-secret")

    assert status == 0
    assert len(base64.b64decode(out.strip(), validate=True)) == 32


def test_gen_secret_prints_a_different_secret_each_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli(capsys, "gen-secret")[1] != cli(capsys, "gen-secret")[1]


def test_gen_secret_needs_no_configuration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEXTAUTH_SECRET")

    assert cli(capsys, "gen-secret")[0] == 0


# --- create-user ------------------------------------------------------------------------


def test_create_user_prints_the_new_id(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = create_user(capsys)

    assert status == 0, err
    assert re.fullmatch(rf"created user {CUID2} <ada@example\.com> role CUSTOMER\n", out), out


def test_create_user_migrates_a_new_sqlite_database_and_stores_the_user(
    capsys: pytest.CaptureFixture[str], database_path: Path
) -> None:
    assert not database_path.exists()

    _, out, _ = create_user(capsys)

    printed_id = out.split()[2]
    assert stored_users(database_path) == [(printed_id, "ada@example.com", "CUSTOMER")]


def test_create_user_stores_the_normalised_email(
    capsys: pytest.CaptureFixture[str], database_path: Path
) -> None:
    create_user(capsys, "  Ada@EXAMPLE.com ")

    assert [email for _, email, _ in stored_users(database_path)] == ["ada@example.com"]


def test_create_user_stores_an_argon2id_hash(
    capsys: pytest.CaptureFixture[str], database_path: Path
) -> None:
    create_user(capsys)

    with sqlite3.connect(database_path) as conn:
        (stored_hash,) = conn.execute("SELECT password_hash FROM users").fetchone()
    assert stored_hash.startswith("$argon2id$")


def test_create_user_accepts_a_role(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = create_user(capsys, "ada@example.com", "--role", "ADMIN")

    assert status == 0
    assert out.rstrip().endswith("role ADMIN")


def test_create_user_with_a_duplicate_email_exits_1_with_one_error_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    create_user(capsys)

    status, out, err = create_user(capsys, "ADA@example.com")

    assert status == 1
    assert out == ""
    assert "already exists" in assert_one_error_line(err)


def test_create_user_with_an_invalid_email_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = create_user(capsys, '"e@attacker.com"@victim.com')

    assert status == 1
    assert "not a valid email address" in assert_one_error_line(err)


def test_create_user_with_a_short_password_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capsys, "create-user", "--email", "ada@example.com", "--password", "short")

    assert status == 1
    assert "at least 8" in assert_one_error_line(err)


def test_create_user_with_an_unknown_role_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        create_user(capsys, "ada@example.com", "--role", "EMPEROR")

    assert exit_info.value.code == 2


# --- set-role ---------------------------------------------------------------------------


def test_set_role_changes_the_role(capsys: pytest.CaptureFixture[str], database_path: Path) -> None:
    create_user(capsys)

    status, out, err = cli(capsys, "set-role", "--email", "Ada@Example.com", "--role", "STAFF")

    assert status == 0, err
    assert re.fullmatch(rf"user {CUID2} <ada@example\.com> now has role STAFF\n", out), out
    assert [role for _, _, role in stored_users(database_path)] == ["STAFF"]


def test_set_role_for_an_unknown_email_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capsys, "set-role", "--email", "nobody@example.com", "--role", "ADMIN")

    assert status == 1
    assert "no user with email nobody@example.com" in assert_one_error_line(err)


def test_set_role_with_an_invalid_email_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = cli(capsys, "set-role", "--email", "a,b@example.com", "--role", "ADMIN")

    assert status == 1
    assert_one_error_line(err)


# --- configuration errors ---------------------------------------------------------------


def test_serve_without_a_secret_exits_1_and_says_how_to_make_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEXTAUTH_SECRET")

    status, _, err = cli(capsys, "serve")

    assert status == 1
    line = assert_one_error_line(err)
    assert "NEXTAUTH_SECRET" in line
    assert "openssl rand -base64 32" in line


def test_serve_with_a_16_byte_secret_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", base64.b64encode(secrets.token_bytes(16)).decode())

    status, _, err = cli(capsys, "serve")

    assert status == 1
    line = assert_one_error_line(err)
    assert "NEXTAUTH_SECRET is too short" in line


@pytest.mark.parametrize(
    "args",
    [
        ("migrate",),
        ("create-user", "--email", "ada@example.com", "--password", "correct horse"),
        ("doctor",),
    ],
    ids=["migrate", "create-user", "doctor"],
)
def test_commands_that_sign_nothing_need_no_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.delenv("NEXTAUTH_SECRET")
    cli(capsys, "migrate")

    status, _, err = cli(capsys, *args)

    assert (status, err) == (0, "")


def test_an_unsupported_database_scheme_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://root@localhost/db")

    status, _, err = cli(capsys, "migrate")

    assert status == 1
    assert "DATABASE_URL" in assert_one_error_line(err)


# --- migrate ----------------------------------------------------------------------------


def test_migrate_reports_the_database_is_up_to_date(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = cli(capsys, "migrate")

    assert (status, out, err) == (0, "database is up to date\n", "")


def test_migrate_twice_is_fine(capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "migrate")

    assert cli(capsys, "migrate") == (0, "database is up to date\n", "")


# --- help and version -------------------------------------------------------------------


def test_help_exits_0_and_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["--help"])
    out = capsys.readouterr().out

    assert exit_info.value.code == 0
    for name in COMMANDS:
        assert name in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run([])

    assert exit_info.value.code == 2


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["--version"])

    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("authsvc ")


# --- an unreachable database ------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("migrate",),
        ("create-user", "--email", "ada@example.com", "--password", "correct horse"),
        ("set-role", "--email", "ada@example.com", "--role", "ADMIN"),
    ],
    ids=["migrate", "create-user", "set-role"],
)
def test_an_unreachable_postgres_exits_1_with_one_line_and_no_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE_POSTGRES)

    status, out, err = cli(capsys, *args)

    assert status == 1
    assert out == ""
    assert_one_error_line(err)


# --- the real console script ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_session(base: str, server: subprocess.Popen[bytes], log: Path) -> httpx.Response:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"authsvc serve exited with {server.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"{base}/api/auth/session", timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"authsvc serve did not answer within 15 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`authsvc serve` on a fresh SQLite file, as a separate process (one per module)."""
    tmp_path = tmp_path_factory.mktemp("served")
    script = Path(sys.executable).parent / "authsvc"
    assert script.exists(), f"console script missing: {script}"
    port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("NEXTAUTH_", "AUTHSVC_")) and name != "DATABASE_URL"
    }
    env.update(
        NEXTAUTH_SECRET=new_secret(),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'served.db'}",
        AUTHSVC_LOG_LEVEL="warning",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(script), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        session = wait_for_session(base, server, log)
        assert (session.status_code, session.json()) == (200, {}), session.text
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_the_served_console_script_answers_the_session_endpoint(served: str) -> None:
    response = httpx.get(f"{served}/api/auth/session", timeout=5)

    assert response.status_code == 200
    assert response.json() == {}


def test_the_served_console_script_hands_out_a_csrf_token(served: str) -> None:
    response = httpx.get(f"{served}/api/auth/csrf", timeout=5)

    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{64}", response.json()["csrfToken"])


def test_the_served_console_script_serves_the_api_docs(served: str) -> None:
    assert httpx.get(f"{served}/docs", timeout=5).status_code == 200


# --- AUTHSVC_APP: the commands use your app's parts -------------------------------------

SHOP_CLI = """
from pathlib import Path

from authsvc.app import create_app
from authsvc.events import Events


async def heard(event):
    with Path("events.log").open("a") as log:
        log.write(f"{event.name} {event.user.email} {event.user.role.value}\\n")


def make_app():
    return create_app(events=Events(create_user=heard, update_user=heard))
"""


@pytest.fixture
def shop_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "shop_cli.py").write_text(SHOP_CLI)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("AUTHSVC_APP", "shop_cli:make_app")
    return tmp_path / "events.log"


def test_create_user_and_set_role_tell_the_apps_events(
    capsys: pytest.CaptureFixture[str], shop_app: Path, database_path: Path
) -> None:
    assert create_user(capsys)[0] == 0
    assert cli(capsys, "set-role", "--email", "ada@example.com", "--role", "STAFF")[0] == 0
    assert shop_app.read_text().splitlines() == [
        "createUser ada@example.com CUSTOMER",
        "updateUser ada@example.com STAFF",
    ]
    assert [role for _, _, role in stored_users(database_path)] == ["STAFF"]


def test_a_wrong_authsvc_app_stops_create_user_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTHSVC_APP", "shop_nowhere:app")
    status, _, err = create_user(capsys)
    assert status == 1
    assert "app module 'shop_nowhere' not found" in assert_one_error_line(err)


# --- the first run: `authsvc init` writes .env, which every command reads ------------------
# The real console script in a directory of its own, with none of the shell's settings.


def bare_environment(**extra: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("NEXTAUTH_", "AUTHSVC_", "AUTH_")) and name != "DATABASE_URL"
    }
    env.update(extra)
    return env


def authsvc(directory: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AUTHSVC), *args],
        cwd=directory,
        env=bare_environment(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def env_file(directory: Path) -> dict[str, str]:
    lines = (directory / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@contextmanager
def serving(directory: Path, port: int, **env: str) -> Iterator[Path]:
    """`authsvc serve` in `directory` until the block ends; yields its log."""
    log = directory / f"serve-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(AUTHSVC), "serve", "--port", str(port)],
            cwd=directory,
            env=bare_environment(**env),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", process, log, 30)
        yield log
    finally:
        stop(process)


def test_init_writes_a_private_env_file_with_a_new_secret_and_the_local_url(
    tmp_path: Path,
) -> None:
    result = authsvc(tmp_path, "init")

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1 and "wrote .env" in result.stdout
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    written = env_file(tmp_path)
    assert written["NEXTAUTH_URL"] == "http://127.0.0.1:8000"
    assert len(base64.b64decode(written["NEXTAUTH_SECRET"], validate=True)) == 32


def test_init_leaves_an_existing_env_file_alone(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NEXTAUTH_SECRET=mine\n")

    result = authsvc(tmp_path, "init")

    assert (result.returncode, result.stdout) == (0, ".env already exists: left alone\n")
    assert (tmp_path / ".env").read_text() == "NEXTAUTH_SECRET=mine\n"


def test_every_command_reads_the_env_file_init_wrote(tmp_path: Path) -> None:
    authsvc(tmp_path, "init")
    (tmp_path / ".env").open("a").write("DATABASE_URL=sqlite+aiosqlite:///./from-env-file.db\n")

    created = authsvc(tmp_path, "create-user", "--email", "ana@example.com", "--password", "p" * 9)
    promoted = authsvc(tmp_path, "set-role", "--email", "ana@example.com", "--role", "ADMIN")

    assert (created.returncode, promoted.returncode) == (0, 0), created.stderr + promoted.stderr
    assert stored_users(tmp_path / "from-env-file.db")[0][1:] == ("ana@example.com", "ADMIN")


def test_a_variable_in_the_environment_wins_over_the_env_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=sqlite+aiosqlite:///./file.db\n")

    authsvc(
        tmp_path,
        *("create-user", "--email", "ana@example.com", "--password", "p" * 9),
        DATABASE_URL="sqlite+aiosqlite:///./environment.db",
    )

    assert (tmp_path / "environment.db").exists() and not (tmp_path / "file.db").exists()


@pytest.mark.parametrize(
    "args",
    [("serve",), ("migrate",), ("create-user", "--email", "a@example.com", "--password", "p" * 9)],
    ids=["serve", "migrate", "create-user"],
)
def test_a_bad_env_line_stops_every_command_with_one_line_naming_the_line_not_its_content(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    authsvc(tmp_path, "init")
    (tmp_path / ".env").open("a").write("AUTHSVC_LOG_LEVEL='debug' # ok\nhunter2 secret words\n")

    result = authsvc(tmp_path, *args)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "authsvc: error: .env line 6: not NAME=value (quote a value with spaces; # starts a "
        "comment)"
    ]
    assert not (tmp_path / "authsvc.db").exists()


def test_restarting_serve_keeps_everyone_signed_in(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    authsvc(tmp_path, "init", "--url", base)
    authsvc(tmp_path, "create-user", "--email", "ana@example.com", "--password", "p" * 9)
    with httpx.Client(base_url=base, timeout=5) as browser:
        with serving(tmp_path, port):
            csrf = browser.get("/api/auth/csrf").json()["csrfToken"]
            form = {"email": "ana@example.com", "password": "p" * 9, "csrfToken": csrf}
            assert browser.post("/api/auth/callback/credentials", data=form).status_code == 302
        with serving(tmp_path, port):
            session = browser.get("/api/auth/session").json()

    assert session["user"]["email"] == "ana@example.com"


def test_serve_prints_the_sign_in_page_of_nextauth_url(tmp_path: Path) -> None:
    port = free_port()
    authsvc(tmp_path, "init", "--url", f"http://127.0.0.1:{port}")

    with serving(tmp_path, port) as log:
        printed = log.read_text()

    assert f"sign-in page: http://127.0.0.1:{port}/api/auth/signin" in printed


# --- start-up and usage failures: one line on stderr, non-zero exit ------------------------


def test_an_unknown_log_level_stops_serve_with_one_line(tmp_path: Path) -> None:
    result = authsvc(tmp_path, "serve", NEXTAUTH_SECRET=new_secret(), AUTHSVC_LOG_LEVEL="verbose")

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "authsvc: error: invalid setting AUTHSVC_LOG_LEVEL: Input should be 'critical', "
        "'error', 'warning', 'info', 'debug' or 'trace'"
    ]


def test_a_log_level_in_capitals_is_accepted(tmp_path: Path) -> None:
    port = free_port()

    with serving(tmp_path, port, NEXTAUTH_SECRET=new_secret(), AUTHSVC_LOG_LEVEL="WARNING") as log:
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200

    assert "INFO" not in log.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--port", "99999"), "argument --port: must be 1 to 65535, got 99999"),
        (("--port", "0"), "argument --port: must be 1 to 65535, got 0"),
        (("--port", "http"), "argument --port: not a whole number: 'http'"),
        (("--workers", "0"), "argument --workers: must be at least 1, got 0"),
    ],
    ids=["port-99999", "port-0", "port-http", "workers-0"],
)
def test_serve_refuses_a_port_or_worker_count_out_of_range_with_one_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = authsvc(tmp_path, "serve", *args, NEXTAUTH_SECRET=new_secret())

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"authsvc serve: error: {message} (see `authsvc serve --help`)"
    ]


def test_a_usage_error_is_one_line(tmp_path: Path) -> None:
    result = authsvc(tmp_path, "create-user", "--email", "ana@example.com")

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "authsvc create-user: error: the following arguments are required: --password "
        "(see `authsvc create-user --help`)"
    ]


def test_a_missing_sqlite_directory_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-directory"

    result = authsvc(tmp_path, "migrate", DATABASE_URL=f"sqlite+aiosqlite:///{missing}/a.db")

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "authsvc: error: the directory of the SQLite database in DATABASE_URL does not exist: "
        f"{missing}"
    ]


async def test_a_migration_error_is_one_line(empty_postgres: str, tmp_path: Path) -> None:
    conn = await asyncpg.connect(empty_postgres)
    await conn.execute("CREATE TABLE users (id integer)")  # someone else's table
    await conn.close()

    result = await asyncio.to_thread(authsvc, tmp_path, "migrate", DATABASE_URL=empty_postgres)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        'authsvc: error: migration failed: DuplicateTableError: relation "users" already exists'
    ]


def test_serve_with_no_sign_in_method_starts_with_one_loud_warning(tmp_path: Path) -> None:
    port = free_port()

    with serving(tmp_path, port, NEXTAUTH_SECRET=new_secret(), AUTHSVC_CREDENTIALS="false") as log:
        providers = httpx.get(f"http://127.0.0.1:{port}/api/auth/providers", timeout=5)

    assert providers.json() == {}
    warnings = [line for line in log.read_text().splitlines() if " WARNING " in line]
    assert len(warnings) == 1
    assert "no sign-in method is enabled (AUTHSVC_CREDENTIALS=false" in warnings[0]


# --- PostgreSQL is migrated by `authsvc migrate`, never behind serve's back ---------------


async def test_serve_refuses_a_postgres_database_never_migrated_and_names_the_fix(
    empty_postgres: str, tmp_path: Path
) -> None:
    result = await asyncio.to_thread(
        authsvc, tmp_path, "serve", NEXTAUTH_SECRET=new_secret(), DATABASE_URL=empty_postgres
    )

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "authsvc: error: the database is not ready: authsvc's tables: not created yet: "
        "run `authsvc migrate`"
    ]


async def test_serve_refuses_a_postgres_database_behind_the_code(
    empty_postgres: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(upgrade, empty_postgres, "0002_accounts")

    result = await asyncio.to_thread(
        authsvc, tmp_path, "serve", NEXTAUTH_SECRET=new_secret(), DATABASE_URL=empty_postgres
    )

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "authsvc: error: the database is not ready: authsvc's tables: at revision "
        "0002_accounts, not 0003_sessions_valid_after: run `authsvc migrate`"
    ]


async def test_serve_starts_on_a_postgres_database_once_migrated(
    empty_postgres: str, tmp_path: Path
) -> None:
    env = {"NEXTAUTH_SECRET": new_secret(), "DATABASE_URL": empty_postgres}
    migrated = await asyncio.to_thread(authsvc, tmp_path, "migrate", **env)
    port = free_port()

    with serving(tmp_path, port, **env):
        session = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/api/auth/session")

    assert migrated.returncode == 0
    assert session.json() == {}


def test_serve_starts_unready_on_an_unreachable_postgres_with_one_warning(tmp_path: Path) -> None:
    port = free_port()
    env = {"NEXTAUTH_SECRET": new_secret(), "DATABASE_URL": UNREACHABLE_POSTGRES}

    with serving(tmp_path, port, **env) as log:
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)

    assert ready.status_code == 503
    at_start = [line for line in log.read_text().splitlines() if "WARNING authsvc.serve" in line]
    assert len(at_start) == 1 and "database unreachable, its schema not checked" in at_start[0]
