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
import logging.config
import os
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from authsvc import __version__
from authsvc.events import CreateUserEvent, Events, UpdateUserEvent
from authsvc.settings import ENV_FILE, ConfigError, Settings, load_settings, parse_public_url
from authsvc.users.emails import normalize_email
from authsvc.users.models import Role
from authsvc.users.passwords import PasswordHasher, PasswordPolicyError
from authsvc.users.repository import SqlAlchemyUserRepository, UserRepository

if TYPE_CHECKING:
    from authsvc.loader import ServedApp

ROLE_NAMES = [role.value for role in Role]
# Where `make run` serves and the README sends people; `init` writes it as NEXTAUTH_URL so
# the sign-in form posts to the origin its page was loaded from (CSP form-action).
LOCAL_URL = "http://127.0.0.1:8000"
log = logging.getLogger("authsvc.serve")


class CliError(Exception):
    """A failure to report as one line."""


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line too (argparse would print the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _bounded(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"{low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="authsvc",
        description=(
            "NextAuth.js v4-compatible authentication service. Configuration comes from the "
            "environment and from ./.env (`authsvc init` writes one): NEXTAUTH_SECRET "
            "(required by serve), NEXTAUTH_URL, DATABASE_URL, AUTHSVC_*."
        ),
    )
    parser.add_argument("--version", action="version", version=f"authsvc {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser(
        "init",
        help="write ./.env with a new NEXTAUTH_SECRET",
        description=f"Write {ENV_FILE} (readable by you only) with a newly generated "
        "NEXTAUTH_SECRET and NEXTAUTH_URL, for every later command run in this directory. "
        "An existing file is left alone.",
    )
    init.add_argument(
        "--url",
        default=LOCAL_URL,
        help=f"NEXTAUTH_URL: where people open the service (default {LOCAL_URL})",
    )

    serve = commands.add_parser(
        "serve",
        help="run the HTTP service",
        description="Run the HTTP service with uvicorn. On the embedded SQLite database the "
        "schema is created or upgraded first; on PostgreSQL it must be current "
        "(`authsvc migrate`).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=_bounded(1, 65535), default=8000, help="port to bind (default 8000)"
    )
    serve.add_argument(
        "--workers", type=_bounded(1), default=1, help="worker processes (default 1; one per core)"
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

    _check_sqlite_directory(settings.database_url)
    try:
        migrate(settings)
    except Exception as exc:
        raise CliError(f"migration failed: {_one_line(exc)}") from None


def _check_sqlite_directory(database_url: str) -> None:
    """SQLite creates its file but not the directory; say so before the driver fails."""
    target = make_url(database_url)
    if not target.drivername.startswith("sqlite") or target.database in (None, "", ":memory:"):
        return
    directory = Path(target.database).parent
    if not directory.is_dir():
        raise CliError(
            f"the directory of the SQLite database in DATABASE_URL does not exist: {directory}"
        )


def _one_line(exc: BaseException) -> str:
    """The error's type and first line: a driver error without SQLAlchemy's wrapping (the
    statement, the "Background on this error" link)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        # asyncpg's errors arrive adapted to DBAPI classes; the driver's own says more.
        exc = exc.orig.__cause__ or exc.orig
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


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
    logging.config.dictConfig(log_config(settings))
    if settings.database_url.startswith("sqlite"):
        _migrate(settings)
    else:
        _refuse_unfit_database(settings)
    _warn_without_sign_in(settings)
    log.info("sign-in page: %s/signin", settings.public_url.base)
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
    """PostgreSQL is migrated as a release step (`authsvc migrate`), never by `serve`: a
    schema that is missing, behind or (Prisma mode) unfit stops the start with the fix."""
    from authsvc.doctor import diagnose, problems

    try:
        found = problems(asyncio.run(diagnose(settings)))
    except (OSError, SQLAlchemyError) as exc:
        # An outage at start-up is /readyz's to report: the replica takes traffic once the
        # database is back, with no restart. Only a database that answers is judged.
        log.warning("database unreachable, its schema not checked: %s", _one_line(exc))
        return
    if not found:
        return
    first = found[0]
    if settings.prisma_mode:
        raise CliError(
            f"the database does not fit AUTHSVC_USER_SCHEMA=prisma: {first.subject}: "
            f"{first.detail} (`authsvc doctor` lists every problem and its fix)"
        )
    raise CliError(f"the database is not ready: {first.subject}: {first.detail}: {first.fix}")


def _warn_without_sign_in(settings: Settings) -> None:
    """No sign-in method is a valid set-up (authsvc only checks sessions the storefront's
    next-auth signs in, e.g. while migrating), but an easy mistake: say it loudly."""
    from authsvc.providers.registry import build_providers

    if not settings.credentials_enabled and not build_providers(settings):
        log.warning(
            "no sign-in method is enabled (AUTHSVC_CREDENTIALS=false and no OAuth provider "
            "configured): the sign-in page offers nothing; sessions can only come from "
            "another app with the same NEXTAUTH_SECRET"
        )


def _init(args: argparse.Namespace) -> str:
    """Write `.env` once: a fresh secret (so restarts keep everyone signed in) and the URL
    people open. Created 0600 and exclusively, so an existing file is never overwritten."""
    url = parse_public_url(args.url)
    path = Path(ENV_FILE)
    content = (
        "# Written by `authsvc init`. Every authsvc command run in this directory reads it;\n"
        "# variables set in the environment win. Keep it private: the secret signs sessions.\n"
        f"NEXTAUTH_SECRET={_new_secret()}\n"
        f"NEXTAUTH_URL={url.origin}\n"
    )
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return f"{path} already exists: left alone"
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(content)
    return (
        f"wrote {path} (mode 0600): a new NEXTAUTH_SECRET and NEXTAUTH_URL={url.origin}, "
        "read by every authsvc command run here"
    )


def _new_secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


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
            print(_new_secret())
        elif args.command == "init":
            print(_init(args))
        elif args.command == "serve":
            _serve(args)
        else:
            # Only serve handles cookies and tokens: the others work without a secret.
            settings = load_settings(require_secret=False)
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
        print(f"authsvc: error: database unavailable: {_one_line(exc)}", file=sys.stderr)
        return 1
    return 0


def main() -> None:
    sys.exit(run())
