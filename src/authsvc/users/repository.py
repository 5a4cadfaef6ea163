"""The user store on SQLAlchemy, on authsvc's own tables or on the storefront's Prisma
tables (see tables.py). The protocols it implements are in records.py."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    RowMapping,
    String,
    Table,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from authsvc.users.models import new_id

# Re-exported: the records and protocols live in records.py, which needs no database.
from authsvc.users.records import AccountLinkedError as AccountLinkedError
from authsvc.users.records import CheckStore as CheckStore
from authsvc.users.records import Role
from authsvc.users.records import UserExistsError as UserExistsError
from authsvc.users.records import UserLookup as UserLookup
from authsvc.users.records import UserRecord as UserRecord
from authsvc.users.records import UserRepository as UserRepository
from authsvc.users.tables import OWN_TABLES, UserTables

log = logging.getLogger("authsvc.users")
# What a UserRecord is read from, by column key (the names differ per layout).
_RECORD_COLUMNS = ("id", "email", "name", "image", "role", "fundraiser_id", "password_hash")


class SqlAlchemyUserRepository:
    """The user store on SQL, in authsvc's own layout or on the storefront's Prisma tables
    (see tables.py): the same statements, written against the column keys."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], tables: UserTables = OWN_TABLES
    ) -> None:
        self._sessions = sessions
        self._t = tables
        users = tables.users
        columns = [users.c[key].label(key) for key in _RECORD_COLUMNS if key != "role"]
        # Read as text: a role the enum has but authsvc does not know is refused in
        # _record, not by the type's own lookup (a LookupError, hence a 500).
        columns.append(type_coerce(users.c.role, String).label("role"))
        if tables.sessions is None:
            valid_after = users.c.sessions_valid_after.label("sessions_valid_after")
            self._select = select(*columns, valid_after)
        else:
            marks = tables.sessions
            valid_after = marks.c.sessions_valid_after.label("sessions_valid_after")
            self._select = select(*columns, valid_after).select_from(
                users.outerjoin(marks, marks.c.user_id == users.c.id)
            )

    def _email_is(self, email: str) -> ColumnElement[bool]:
        column = self._t.users.c.email
        # Prisma mode: stored as typed (legacy mixed case); authsvc's own: stored normalised.
        return func.lower(column) == email if self._t.emails_as_typed else column == email

    def _stamped(self, **values: Any) -> dict[str, Any]:
        """Values for a write; in Prisma mode with `updatedAt` set, as Prisma's client does."""
        if self._t.prisma:
            values["updated_at"] = _utcnow()
        return values

    async def _one(
        self, session: AsyncSession, condition: ColumnElement[bool]
    ) -> UserRecord | None:
        rows = (await session.execute(self._select.where(condition).limit(2))).all()
        if len(rows) > 1:
            # Two legacy rows whose emails differ only in case: signing either in could hand
            # one person the other's account. `authsvc doctor` lists them.
            log.warning("%d users share this email up to case: none is used", len(rows))
            return None
        return _record(rows[0]._mapping) if rows else None

    async def get_by_email(self, email: str) -> UserRecord | None:
        async with self._sessions() as session:
            return await self._one(session, self._email_is(email))

    async def get_by_id(self, user_id: str) -> UserRecord | None:
        async with self._sessions() as session:
            return await self._one(session, self._t.users.c.id == user_id)

    async def create(
        self,
        *,
        email: str,
        name: str | None = None,
        password_hash: str | None = None,
        role: Role = Role.CUSTOMER,
        image: str | None = None,
        fundraiser_id: str | None = None,
    ) -> UserRecord:
        record = UserRecord(
            id=new_id(),
            email=email,
            name=name,
            image=image,
            role=role,
            fundraiser_id=fundraiser_id,
            password_hash=password_hash,
        )
        async with self._sessions() as session:
            try:
                await self._insert_user(session, record)
                await session.commit()
            except IntegrityError:
                raise UserExistsError(email) from None
        return record

    async def _insert_user(
        self, session: AsyncSession, record: UserRecord, *, email_verified: bool = False
    ) -> None:
        """Insert unless a user has this email (in Prisma mode: in any case); raises
        IntegrityError, as the unique index does for a concurrent insert."""
        users = self._t.users
        values: dict[str, Any] = {
            "id": record.id,
            "email": record.email,
            "name": record.name,
            "image": record.image,
            "password_hash": record.password_hash,
            "role": record.role,
            "fundraiser_id": record.fundraiser_id,
        }
        if self._t.prisma:
            now = _utcnow()
            values.update(created_at=now, updated_at=now)
            if email_verified:
                values["email_verified"] = now
        taken = exists().where(self._email_is(record.email))
        source = select(*(literal(v, users.c[k].type) for k, v in values.items())).where(~taken)
        result = await session.execute(insert(users).from_select(list(values), source))
        if not _rowcount(result):
            raise IntegrityError("INSERT INTO users", None, Exception("email exists"))

    async def set_role(self, email: str, role: Role) -> UserRecord | None:
        async with self._sessions() as session:
            user = await self._one(session, self._email_is(email))
            if user is None:
                return None
            await session.execute(
                update(self._t.users)
                .where(self._t.users.c.id == user.id)
                .values(self._stamped(role=role))
            )
            await session.commit()
        return replace(user, role=role)

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        async with self._sessions() as session:
            await session.execute(
                update(self._t.users)
                .where(self._t.users.c.id == user_id)
                .values(self._stamped(password_hash=password_hash))
            )
            await session.commit()

    async def get_by_account(self, provider: str, provider_account_id: str) -> UserRecord | None:
        accounts = self._t.accounts
        async with self._sessions() as session:
            return await self._one(
                session,
                self._t.users.c.id.in_(
                    select(accounts.c.user_id).where(
                        accounts.c.provider == provider,
                        accounts.c.provider_account_id == provider_account_id,
                    )
                ),
            )

    async def create_with_account(
        self,
        *,
        email: str,
        name: str | None,
        image: str | None,
        provider: str,
        provider_account_id: str,
    ) -> UserRecord:
        record = UserRecord(id=new_id(), email=email, name=name, image=image)
        async with self._sessions() as session:
            try:
                # Only a provider-verified email gets here (oauth_flow.py): emailVerified now.
                await self._insert_user(session, record, email_verified=True)
                await self._insert_account(session, record.id, provider, provider_account_id)
                await session.commit()
            except IntegrityError:
                raise UserExistsError(email) from None
        return record

    async def _insert_account(
        self, session: AsyncSession, user_id: str, provider: str, provider_account_id: str
    ) -> None:
        values: dict[str, Any] = {
            "id": new_id(),
            "user_id": user_id,
            "provider": provider,
            "provider_account_id": provider_account_id,
        }
        if self._t.prisma:
            # next-auth v4 knows provider types oauth, email and credentials; OpenID Connect
            # providers are `oauth` there too.
            values["type"] = "oauth"
        await session.execute(insert(self._t.accounts).values(values))

    async def link_account(self, user_id: str, provider: str, provider_account_id: str) -> None:
        async with self._sessions() as session:
            try:
                await self._insert_account(session, user_id, provider, provider_account_id)
                await session.commit()
            except IntegrityError:
                raise AccountLinkedError(provider) from None

    async def update_profile(
        self, user_id: str, *, name: str | None, image: str | None
    ) -> UserRecord | None:
        async with self._sessions() as session:
            user = await self._one(session, self._t.users.c.id == user_id)
            if user is None:
                return None
            if (user.name, user.image) != (name, image):
                await session.execute(
                    update(self._t.users)
                    .where(self._t.users.c.id == user_id)
                    .values(self._stamped(name=name, image=image))
                )
                await session.commit()
        return replace(user, name=name, image=image)

    async def revoke_sessions(self, user_id: str, at: int) -> bool:
        users, marks = self._t.users, self._t.sessions
        async with self._sessions() as session:
            if marks is None:
                result = await session.execute(
                    update(users).where(users.c.id == user_id).values(sessions_valid_after=at)
                )
                await session.commit()
                return bool(_rowcount(result))
            if await session.scalar(select(users.c.id).where(users.c.id == user_id)) is None:
                return False
            upsert = pg_insert(marks).values(user_id=user_id, sessions_valid_after=at)
            await session.execute(
                upsert.on_conflict_do_update(
                    index_elements=[marks.c.user_id], set_={"sessions_valid_after": at}
                )
            )
            await session.commit()
            return True


class SqlAlchemyCheckStore:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], table: Table = OWN_TABLES.used_checks
    ) -> None:
        self._sessions = sessions
        self._table = table

    async def redeem(self, jti: str, expires_at: int) -> bool:
        checks = self._table
        async with self._sessions() as session:
            # Expired entries can never be replayed (their cookie is expired too): drop them.
            await session.execute(delete(checks).where(checks.c.expires_at < _now()))
            try:
                await session.execute(insert(checks).values(jti=jti, expires_at=expires_at))
                await session.commit()
            except IntegrityError:
                return False
            return True


def _record(row: RowMapping) -> UserRecord | None:
    try:
        role = Role(row["role"])
    except ValueError:
        # Possible only in Prisma mode, with a value added to the enum after start-up
        # (`authsvc doctor` refuses one at start): fail closed, as for a missing user.
        log.warning("user %s has a role authsvc does not know: treated as absent", row["id"])
        return None
    return UserRecord(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        image=row["image"],
        role=role,
        fundraiser_id=row["fundraiser_id"],
        password_hash=row["password_hash"],
        sessions_valid_after=row["sessions_valid_after"],
    )


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _utcnow() -> datetime:
    """Now, as Prisma stores a DateTime in TIMESTAMP(3): UTC, without a zone."""
    return datetime.now(UTC).replace(tzinfo=None)


def _now() -> int:
    return int(time.time())
