"""The `authsvc` command: serve, migrate, doctor, create-user, set-role, revoke-sessions,
import-users, gen-secret.

Settings come from the environment (and `.env`), exactly as for the service. Any error
ends with exit status 1 (2 for bad usage) and one line on stderr saying what to fix.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from authsvc import __version__
from authsvc.events import CreateUserEvent, Events, UpdateUserEvent
from authsvc.settings import ConfigError, Settings, load_settings
from authsvc.users.emails import normalize_email
from authsvc.users.models import Role
from authsvc.users.passwords import PasswordHasher, PasswordPolicyError
from authsvc.users.repository import SqlAlchemyUserRepository, UserRepository

if TYPE_CHECKING:
    from authsvc.loader import ServedApp

ROLE_NAMES = [role.value for role in Role]


class CliError(Exception):
    """A failure to report as one line."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="authsvc",
        description=(
            "NextAuth.js v4-compatible authentication service. Configuration comes from the "
            "environment: NEXTAUTH_SECRET (required), NEXTAUTH_URL, DATABASE_URL, AUTHSVC_*."
        ),
    )
    parser.add_argument("--version", action="version", version=f"authsvc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the HTTP service",
        description="Run the HTTP service with uvicorn. On the embedded SQLite database the "
        "schema is created or upgraded first.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes (default 1; one per core)"
    )
    serve.add_argument(
        "--app",
        metavar="MODULE:ATTR",
        help="your app: one made by authsvc.app.create_app (with your callbacks and events), "
        "or a function taking no arguments that returns one (default: AUTHSVC_APP, else "
        "authsvc's own)",
    )

    commands.add_parser(
        "migrate",
        help="create or upgrade the database schema",
        description="Apply every pending migration to DATABASE_URL.",
    )

    create = commands.add_parser(
        "create-user",
        help="add a user who signs in with email and password",
        description="Add a user who signs in with email and password.",
    )
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True, help="at least 8 characters")
    create.add_argument("--name")
    create.add_argument("--role", choices=ROLE_NAMES, default=Role.CUSTOMER.value)

    set_role = commands.add_parser(
        "set-role",
        help="change a user's role",
        description="Change a user's role. Sessions pick it up at the next sign-in or update.",
    )
    set_role.add_argument("--email", required=True)
    set_role.add_argument("--role", choices=ROLE_NAMES, required=True)

    revoke = commands.add_parser(
        "revoke-sessions",
        help="sign a user out everywhere (revocation mode)",
        description="Refuse every session this user started before now. Takes effect where "
        "AUTHSVC_REVOCATION=true, within AUTHSVC_REVOCATION_CACHE_TTL seconds.",
    )
    revoke.add_argument("--email", required=True)

    commands.add_parser(
        "doctor",
        help="check that the database fits the selected user schema",
        description="Connect with the current settings and check every table, column, type, "
        "enum value and index authsvc needs (AUTHSVC_USER_SCHEMA), each with its fix. Exits "
        "1 on a problem; `serve` runs the same checks in Prisma mode.",
    )

    importer = commands.add_parser(
        "import-users",
        help="add the users of a JSON Lines or CSV export",
        description="Add the users of a JSON Lines or CSV file: email, name, role, password "
        "(a bcrypt or Argon2 hash), and optionally id, image, fundraiserId. All or nothing: "
        "each bad line is reported with its number and nothing is written. Users already "
        "present (same email) are left alone, so running it again changes nothing.",
    )
    importer.add_argument("--file", required=True, type=Path, help="the export to read")
    importer.add_argument(
        "--format", choices=["jsonl", "csv"], help="default: from the name (.jsonl, .csv)"
    )
    importer.add_argument("--dry-run", action="store_true", help="check and count only")

    commands.add_parser(
        "gen-secret",
        help="print a new random NEXTAUTH_SECRET",
        description="Print 32 random bytes, base64-encoded, for NEXTAUTH_SECRET.",
    )
    return parser


def _prepare_database(settings: Settings) -> None:
    """The embedded SQLite default migrates itself, so the first run needs no extra step."""
    if settings.database_url.startswith("sqlite"):
        _migrate(settings)


def _migrate(settings: Settings) -> None:
    from authsvc.migrations import migrate

    try:
        migrate(settings)
    except Exception as exc:
        raise CliError(f"migration failed: {type(exc).__name__}: {exc}") from None


@contextmanager
def _metrics_group(settings: Settings, workers: int) -> Iterator[None]:
    """Workers share their metrics through a directory (see metrics.py): a fresh one for
    this run unless AUTHSVC_METRICS_DIR names one, which is emptied of old snapshots."""
    from authsvc.metrics import SNAPSHOT_PREFIX

    if settings.metrics_dir is not None:
        settings.metrics_dir.mkdir(parents=True, exist_ok=True)
        for stale in settings.metrics_dir.glob(f"{SNAPSHOT_PREFIX}*"):
            stale.unlink(missing_ok=True)
        yield
        return
    if workers < 2:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="authsvc-metrics-") as directory:
        os.environ["AUTHSVC_METRICS_DIR"] = directory  # read by each worker's settings
        try:
            yield
        finally:
            os.environ.pop("AUTHSVC_METRICS_DIR", None)


def _served_app(args: argparse.Namespace) -> ServedApp:
    """`--app`, else AUTHSVC_APP, else authsvc's own app; checked before anything is bound."""
    from authsvc.loader import DEFAULT_APP, AppError, ServedApp, load_app

    settings = load_settings()
    spec = args.app or settings.app
    if spec is None:
        return ServedApp(DEFAULT_APP, factory=True, settings=settings)
    try:
        return load_app(spec)
    except AppError as exc:
        raise CliError(str(exc)) from None


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from authsvc.eager_accept import LOOP as EAGER_ACCEPT_LOOP
    from authsvc.logs import log_config
    from authsvc.serving import LimitedHttpToolsProtocol

    app = _served_app(args)
    # Whatever the app, serve applies the same protections, from the settings it was
    # built with (the environment, unless the app was given its own).
    settings = app.settings
    _prepare_database(settings)
    if settings.prisma_mode:
        _refuse_unfit_database(settings)
    with _metrics_group(settings, args.workers):
        uvicorn.run(
            app.target,
            factory=app.factory,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=settings.log_level,
            log_config=log_config(settings),
            # authsvc logs each request itself, with the client from trusted proxies only.
            access_log=False,
            proxy_headers=False,
            # A request head over AUTHSVC_MAX_HEADER_BYTES gets 431, a head or body slower
            # than AUTHSVC_HEAD_TIMEOUT / AUTHSVC_BODY_TIMEOUT gets 408 (see serving.py).
            http=LimitedHttpToolsProtocol,
            # uvloop, letting in a burst of new connections at once (see eager_accept.py).
            loop=EAGER_ACCEPT_LOOP,
            h11_max_incomplete_event_size=settings.max_header_bytes,
            timeout_keep_alive=settings.keepalive_timeout,
            limit_concurrency=settings.max_connections,
        )


def _refuse_unfit_database(settings: Settings) -> None:
    from authsvc.doctor import diagnose, problems

    found = problems(asyncio.run(diagnose(settings)))
    if found:
        raise CliError(
            f"the database does not fit AUTHSVC_USER_SCHEMA=prisma: {found[0].subject}: "
            f"{found[0].detail} (`authsvc doctor` lists every problem and its fix)"
        )


def _doctor(settings: Settings) -> int:
    from authsvc.doctor import diagnose, problems, render

    findings = asyncio.run(diagnose(settings))
    print(render(findings))
    return 1 if problems(findings) else 0


def _email(raw: str) -> str:
    email = normalize_email(raw)
    if email is None:
        raise CliError(f"not a valid email address: {raw!r}")
    return email


@dataclass(frozen=True, slots=True)
class _Parts:
    """What the user commands work with: AUTHSVC_APP's own parts when it names an app (its
    user store, hasher and events, as every route uses them), else authsvc's."""

    users: UserRepository
    hasher: PasswordHasher
    events: Events


@asynccontextmanager
async def _user_store(settings: Settings) -> AsyncIterator[_Parts]:
    from authsvc.db import Database
    from authsvc.users.tables import tables_for

    if settings.app is not None:
        from authsvc.loader import AppError, build_app

        try:
            app = build_app(settings.app)
        except AppError as exc:
            raise CliError(str(exc)) from None
        services = app.services
        try:
            yield _Parts(services.users, services.hasher, services.events)
        finally:
            await services.aclose()
        return
    database = Database(settings.database_url)
    try:
        users = SqlAlchemyUserRepository(database.sessions, tables_for(settings))
        yield _Parts(users, PasswordHasher(), Events())
    finally:
        await database.dispose()


async def _create_user(settings: Settings, args: argparse.Namespace) -> str:
    from authsvc.users.repository import UserExistsError

    email = _email(args.email)
    async with _user_store(settings) as parts:
        try:
            password_hash = await parts.hasher.hash(args.password)
        except PasswordPolicyError as exc:
            raise CliError(str(exc)) from None
        try:
            user = await parts.users.create(
                email=email, name=args.name, password_hash=password_hash, role=Role(args.role)
            )
        except UserExistsError:
            raise CliError(f"a user with email {email} already exists") from None
        await parts.events.emit(CreateUserEvent(user=user))
    return f"created user {user.id} <{user.email}> role {user.role.value}"


async def _import_users(settings: Settings, args: argparse.Namespace) -> str:
    from authsvc.db import Database
    from authsvc.users.importer import Importer, ImportFileError, LineError, format_of
    from authsvc.users.tables import tables_for

    path: Path = args.file
    try:
        fmt = format_of(path, args.format)
        stream = path.open("rb")
    except ImportFileError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None

    def bad_line(error: LineError) -> None:
        print(f"{path.name}:{error.line}: {error.reason}", file=sys.stderr)

    def progress(lines: int) -> None:
        print(f"import-users: {lines} lines read", file=sys.stderr, flush=True)

    database = Database(settings.database_url, timeout=settings.database_timeout)
    importer = Importer(database, tables_for(settings), on_error=bad_line, on_progress=progress)
    try:
        with stream:
            summary = await importer.run(stream, fmt, dry_run=args.dry_run)
    except ImportFileError as exc:
        raise CliError(f"{path.name}: {exc}: nothing imported") from None
    finally:
        await database.dispose()
    if summary.invalid:
        lines = f"{summary.invalid} bad line{'s' * (summary.invalid != 1)}"
        raise CliError(f"{lines} in {path.name}: nothing imported")
    read = f"{summary.lines} user{'s' * (summary.lines != 1)} read"
    if summary.dry_run:
        return (
            f"dry run: {path.name}: {read}, {summary.created} would be created, "
            f"{summary.present} already present; nothing written"
        )
    return (
        f"imported {path.name}: {read}, {summary.created} created, "
        f"{summary.present} already present"
    )


async def _set_role(settings: Settings, args: argparse.Namespace) -> str:
    email = _email(args.email)
    async with _user_store(settings) as parts:
        user = await parts.users.set_role(email, Role(args.role))
        if user is not None:
            await parts.events.emit(UpdateUserEvent(user=user))
    if user is None:
        raise CliError(f"no user with email {email}")
    return f"user {user.id} <{user.email}> now has role {user.role.value}"


async def _revoke_sessions(settings: Settings, args: argparse.Namespace) -> str:
    from authsvc.revocation import revocation_time

    email = _email(args.email)
    async with _user_store(settings) as parts:
        user = await parts.users.get_by_email(email)
        if user is None:
            raise CliError(f"no user with email {email}")
        await parts.users.revoke_sessions(user.id, revocation_time())
    note = "" if settings.revocation else " (AUTHSVC_REVOCATION is off: nothing checks it yet)"
    return f"sessions of {user.id} <{email}> started before now are revoked{note}"


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "gen-secret":
            print(base64.b64encode(secrets.token_bytes(32)).decode())
        elif args.command == "serve":
            _serve(args)
        else:
            settings = load_settings()
            if args.command == "migrate":
                _migrate(settings)
                print("database is up to date")
            elif args.command == "doctor":
                return _doctor(settings)
            else:
                _prepare_database(settings)
                actions = {
                    "create-user": _create_user,
                    "set-role": _set_role,
                    "revoke-sessions": _revoke_sessions,
                    "import-users": _import_users,
                }
                print(asyncio.run(actions[args.command](settings, args)))
    except (ConfigError, CliError) as exc:
        print(f"authsvc: error: {exc}", file=sys.stderr)
        return 1
    except (OSError, SQLAlchemyError) as exc:
        print(f"authsvc: error: database unavailable: {type(exc).__name__}", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    sys.exit(run())
