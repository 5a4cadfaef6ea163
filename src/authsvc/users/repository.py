"""The user store: a small Protocol, and its SQLAlchemy implementation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from authsvc.users.models import Role, User


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as the rest of the service sees it: plain data, detached from any session."""

    id: str
    email: str
    name: str | None = None
    image: str | None = None
    role: Role = Role.CUSTOMER
    fundraiser_id: str | None = None
    password_hash: str | None = None


class UserExistsError(Exception):
    """The (normalised) email is already taken."""


class UserRepository(Protocol):
    """What authsvc needs from a user store. Emails passed in are already normalised."""

    async def get_by_email(self, email: str) -> UserRecord | None: ...

    async def get_by_id(self, user_id: str) -> UserRecord | None: ...

    async def create(
        self,
        *,
        email: str,
        name: str | None = None,
        password_hash: str | None = None,
        role: Role = Role.CUSTOMER,
        image: str | None = None,
        fundraiser_id: str | None = None,
    ) -> UserRecord: ...

    async def set_role(self, email: str, role: Role) -> UserRecord | None: ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...


def _record(user: User) -> UserRecord:
    return UserRecord(
        id=user.id,
        email=user.email,
        name=user.name,
        image=user.image,
        role=Role(user.role),
        fundraiser_id=user.fundraiser_id,
        password_hash=user.password_hash,
    )


class SqlAlchemyUserRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get_by_email(self, email: str) -> UserRecord | None:
        async with self._sessions() as session:
            user = await session.scalar(select(User).where(User.email == email))
            return _record(user) if user else None

    async def get_by_id(self, user_id: str) -> UserRecord | None:
        async with self._sessions() as session:
            user = await session.get(User, user_id)
            return _record(user) if user else None

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
        user = User(
            email=email,
            name=name,
            password_hash=password_hash,
            role=role,
            image=image,
            fundraiser_id=fundraiser_id,
        )
        async with self._sessions() as session:
            session.add(user)
            try:
                await session.commit()
            except IntegrityError:
                raise UserExistsError(email) from None
            return _record(user)

    async def set_role(self, email: str, role: Role) -> UserRecord | None:
        async with self._sessions() as session:
            await session.execute(update(User).where(User.email == email).values(role=role))
            await session.commit()
            user = await session.scalar(select(User).where(User.email == email))
            return _record(user) if user else None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        async with self._sessions() as session:
            await session.execute(
                update(User).where(User.id == user_id).values(password_hash=password_hash)
            )
            await session.commit()
