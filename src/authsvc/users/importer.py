"""`authsvc import-users`: bring users in from an export, so nobody re-registers.

The file (JSON Lines or CSV: email, name, role, password hash, optional id, image,
fundraiserId) is streamed: each line is checked as it is read and goes, in batches, into
a temporary staging table inside one transaction. The database then finds what needs
every line at once (an email or id repeated in the file, an id taken by someone else) and
inserts the users that are not there yet in one statement. Python's memory therefore stays
flat whatever the size of the file, and the import is all or nothing: one bad line, and
nothing is written. Users already present (by email, ignoring case in Prisma mode) are left
as they are, which makes a second run of the same file change nothing.

Password hashes must be bcrypt (`$2a$`, `$2b$`, `$2y$`) or Argon2; both are verified at
sign-in and rewritten as Argon2id on the first success (AUTHSVC_PASSWORD_REHASH).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    cast,
    exists,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from authsvc.db import Database
from authsvc.users.emails import normalize_email
from authsvc.users.models import Role, new_id
from authsvc.users.passwords import hash_format
from authsvc.users.tables import UserTables

Format = Literal["jsonl", "csv"]
FIELDS = ("email", "name", "role", "password", "id", "image", "fundraiserId")
# Other spellings of the same fields (authsvc's own column names, Prisma-export habits).
ALIASES = {"password_hash": "password", "passwordHash": "password", "fundraiser_id": "fundraiserId"}
# Column sizes of authsvc's own users table, kept in both layouts.
LIMITS = {"id": 64, "name": 200, "image": 2048, "fundraiserId": 64}
MAX_LINE_BYTES = 64 * 1024
BATCH_SIZE = 1000
PROGRESS_EVERY = 10_000
EXTENSIONS: dict[str, Format] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


class ImportFileError(Exception):
    """The file as a whole cannot be read (its format, its CSV header, its encoding)."""


class LineError(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ImportSummary:
    lines: int
    created: int
    present: int
    invalid: int
    dry_run: bool

    @property
    def written(self) -> bool:
        return not self.dry_run and not self.invalid


def format_of(path: Path, given: str | None) -> Format:
    if given in ("jsonl", "csv"):
        return given  # type: ignore[return-value]
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise ImportFileError(
            f"cannot tell the format of {path.name} from its name: pass --format jsonl or csv"
        )
    return found


# -- reading -------------------------------------------------------------------------------


def _jsonl(stream: IO[bytes]) -> Iterator[tuple[int, dict[str, Any] | LineError]]:
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the line, unread
                raw = stream.readline(MAX_LINE_BYTES)
            yield number, LineError(number, f"longer than {MAX_LINE_BYTES // 1024} KiB")
            continue
        if not raw.strip():
            continue
        try:
            value = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8"))
        except UnicodeDecodeError:
            yield number, LineError(number, "not UTF-8 text")
            continue
        except json.JSONDecodeError as exc:
            yield number, LineError(number, f"not JSON ({exc.msg})")
            continue
        if not isinstance(value, dict):
            yield number, LineError(number, "not a JSON object")
            continue
        yield number, value


def _csv(stream: IO[bytes]) -> Iterator[tuple[int, dict[str, Any] | LineError]]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text, strict=True)
    try:
        header = reader.fieldnames
        if not header:
            return
        unknown = [name for name in header if _field(name) is None]
        if unknown:
            raise ImportFileError(
                f"CSV header: unknown column {unknown[0]!r} (columns: {', '.join(FIELDS)})"
            )
        for row in reader:
            if None in row:  # more values than the header has columns
                yield reader.line_num, LineError(reader.line_num, "more values than columns")
                continue
            yield reader.line_num, {k: (v if v != "" else None) for k, v in row.items()}
    except UnicodeDecodeError:
        raise ImportFileError(f"not UTF-8 text after line {reader.line_num}") from None
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: not valid CSV ({exc})") from None


def _field(name: str) -> str | None:
    name = name.strip()
    return name if name in FIELDS else ALIASES.get(name)


def parse(number: int, values: dict[str, Any]) -> dict[str, Any]:
    """One line as a staging row; raises LineError with the reason."""
    fields: dict[str, str | None] = {}
    for key, value in values.items():
        field = _field(key) if isinstance(key, str) else None
        if field is None:
            raise LineError(number, f"unknown field {key!r} (fields: {', '.join(FIELDS)})")
        if value is not None and not isinstance(value, str):
            raise LineError(number, f"{field} must be a string")
        if field in fields:
            raise LineError(number, f"{field} is given twice")
        fields[field] = value.strip() if isinstance(value, str) and field != "password" else value
    raw_email = fields.get("email")
    email = normalize_email(raw_email) if raw_email else None
    if email is None:
        raise LineError(number, "no valid email address" if raw_email else "email is missing")
    for field, limit in LIMITS.items():
        value = fields.get(field)
        if value is not None and (len(value) > limit or not value.isprintable()):
            raise LineError(number, f"{field} must be printable and at most {limit} characters")
    user_id = fields.get("id") or None
    if user_id is not None and any(c.isspace() for c in user_id):
        raise LineError(number, "id must not contain spaces")
    role = (fields.get("role") or Role.CUSTOMER.value).upper()
    if role not in {r.value for r in Role}:
        raise LineError(number, f"role must be one of {', '.join(r.value for r in Role)}")
    password = fields.get("password") or None
    if password is not None and hash_format(password) is None:
        raise LineError(
            number,
            "password is not a bcrypt ($2a$, $2b$, $2y$) or Argon2 hash, the formats authsvc "
            "verifies",
        )
    return {
        "line": number,
        "id": user_id or new_id(),
        "email": email,
        "name": fields.get("name") or None,
        "role": role,
        "password_hash": password,
        "image": fields.get("image") or None,
        "fundraiser_id": fields.get("fundraiserId") or None,
    }


# -- writing -------------------------------------------------------------------------------


def _staging() -> Table:
    table = Table(
        "authsvc_import",
        MetaData(),
        Column("line", Integer, primary_key=True),
        Column("id", Text, nullable=False),
        Column("email", Text, nullable=False),
        Column("name", Text),
        Column("role", Text, nullable=False),
        Column("password_hash", Text),
        Column("image", Text),
        Column("fundraiser_id", Text),
        prefixes=["TEMPORARY"],
    )
    Index("authsvc_import_email", table.c.email)
    Index("authsvc_import_id", table.c.id)
    return table


class Importer:
    def __init__(
        self,
        database: Database,
        tables: UserTables,
        *,
        on_error: Callable[[LineError], None],
        on_progress: Callable[[int], None],
    ) -> None:
        self._database = database
        self._tables = tables
        self._on_error = on_error
        self._on_progress = on_progress

    async def run(self, stream: IO[bytes], fmt: Format, *, dry_run: bool) -> ImportSummary:
        staging = _staging()
        async with self._database.engine.connect() as conn:
            # One transaction, the staging table included (DDL is transactional in both
            # PostgreSQL and SQLite): committed only when every line was good.
            transaction = await conn.begin()
            try:
                await conn.run_sync(staging.create)
                summary = await self._stage_and_insert(conn, staging, stream, fmt, dry_run)
                await conn.run_sync(staging.drop)
            except BaseException:
                await transaction.rollback()
                raise
            if summary.written:
                await transaction.commit()
            else:
                await transaction.rollback()
        return summary

    async def _stage_and_insert(
        self,
        conn: AsyncConnection,
        staging: Table,
        stream: IO[bytes],
        fmt: Format,
        dry_run: bool,
    ) -> ImportSummary:
        lines = valid = invalid = 0
        batch: list[dict[str, Any]] = []
        reader = _jsonl(stream) if fmt == "jsonl" else _csv(stream)
        for number, values in reader:
            lines += 1
            if lines % PROGRESS_EVERY == 0:
                self._on_progress(lines)
            try:
                if isinstance(values, LineError):
                    raise values
                batch.append(parse(number, values))
            except LineError as error:
                invalid += 1
                self._on_error(error)
                continue
            valid += 1
            if len(batch) == BATCH_SIZE:
                await conn.execute(insert(staging), batch)
                batch = []
        if batch:
            await conn.execute(insert(staging), batch)
        invalid += await self._conflicts(conn, staging)
        if invalid:
            return ImportSummary(lines, 0, 0, invalid, dry_run)
        created = await self._insert(conn, staging, dry_run)
        return ImportSummary(lines, created, valid - created, 0, dry_run)

    def _key(self, column: Any) -> Any:
        return func.lower(column) if self._tables.emails_as_typed else column

    async def _conflicts(self, conn: AsyncConnection, staging: Table) -> int:
        """Lines the file itself contradicts: an email or id given twice, an id that is
        another user's. Reported in line order."""
        users = self._tables.users
        first = staging.alias("first")
        later = staging.alias("later")
        found: list[LineError] = []
        for column, what in (("email", "email"), ("id", "id")):
            rows = await conn.execute(
                select(later.c.line, func.min(first.c.line))
                .join(first, (first.c[column] == later.c[column]) & (first.c.line < later.c.line))
                .group_by(later.c.line)
            )
            found += [LineError(line, f"{what} repeats line {earlier}") for line, earlier in rows]
        taken = await conn.execute(
            select(staging.c.line, staging.c.id)
            .join(users, users.c.id == staging.c.id)
            .where(self._key(users.c.email) != staging.c.email)
        )
        found += [
            LineError(line, f"id {user_id} belongs to another user") for line, user_id in taken
        ]
        seen: set[int] = set()
        for error in sorted(found, key=lambda e: e.line):
            if error.line not in seen:  # one reason per line is enough
                seen.add(error.line)
                self._on_error(error)
        return len(seen)

    async def _insert(self, conn: AsyncConnection, staging: Table, dry_run: bool) -> int:
        users = self._tables.users
        new = ~exists().where(self._key(users.c.email) == staging.c.email)
        if dry_run:
            return int(await conn.scalar(select(func.count()).select_from(staging).where(new)) or 0)
        values: dict[str, Any] = {
            key: staging.c[key]
            for key in ("id", "email", "name", "password_hash", "image", "fundraiser_id")
        }
        values["role"] = cast(staging.c.role, users.c.role.type)
        if self._tables.prisma:
            now = datetime.now(UTC).replace(tzinfo=None)
            values["created_at"] = values["updated_at"] = literal(now, users.c.updated_at.type)
        result = await conn.execute(
            insert(users).from_select(
                list(values), select(*values.values()).select_from(staging).where(new)
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
