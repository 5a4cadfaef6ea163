"""The user store: a small Protocol, and its SQLAlchemy implementation."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from authsvc.users.models import Account, Role, UsedCheck, User


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
    sessions_valid_after: int | None = None


class UserExistsError(Exception):
    """The (normalised) email is already taken."""


class AccountLinkedError(Exception):
    """The provider identity already belongs to a user."""


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

    async def get_by_account(self, provider: str, provider_account_id: str) -> UserRecord | None:
        """The user linked to this provider identity."""
        ...

    async def create_with_account(
        self,
        *,
        email: str,
        name: str | None,
        image: str | None,
        provider: str,
        provider_account_id: str,
    ) -> UserRecord:
        """A new CUSTOMER and its provider link, atomically: both or neither."""
        ...

    async def link_account(self, user_id: str, provider: str, provider_account_id: str) -> None:
        """Raises AccountLinkedError when the identity is linked already."""
        ...

    async def update_profile(
        self, user_id: str, *, name: str | None, image: str | None
    ) -> UserRecord | None: ...

    async def revoke_sessions(self, user_id: str, at: int) -> bool:
        """Refuse every token authenticated before `at`; False for an unknown user."""
        ...


class CheckStore(Protocol):
    """Remembers redeemed OAuth checks so each can be used once."""

    async def redeem(self, jti: str, expires_at: int) -> bool:
        """True the first time a check is seen; False for a replay."""
        ...


def _record(user: User) -> UserRecord:
    return UserRecord(
        id=user.id,
        email=user.email,
        name=user.name,
        image=user.image,
        role=Role(user.role),
        fundraiser_id=user.fundraiser_id,
        password_hash=user.password_hash,
        sessions_valid_after=user.sessions_valid_after,
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

    async def get_by_account(self, provider: str, provider_account_id: str) -> UserRecord | None:
        async with self._sessions() as session:
            user = await session.scalar(
                select(User)
                .join(Account, Account.user_id == User.id)
                .where(
                    Account.provider == provider,
                    Account.provider_account_id == provider_account_id,
                )
            )
            return _record(user) if user else None

    async def create_with_account(
        self,
        *,
        email: str,
        name: str | None,
        image: str | None,
        provider: str,
        provider_account_id: str,
    ) -> UserRecord:
        user = User(email=email, name=name, image=image, role=Role.CUSTOMER)
        async with self._sessions() as session:
            session.add(user)
            try:
                await session.flush()
                session.add(
                    Account(
                        user_id=user.id,
                        provider=provider,
                        provider_account_id=provider_account_id,
                    )
                )
                await session.commit()
            except IntegrityError:
                raise UserExistsError(email) from None
            return _record(user)

    async def link_account(self, user_id: str, provider: str, provider_account_id: str) -> None:
        async with self._sessions() as session:
            session.add(
                Account(user_id=user_id, provider=provider, provider_account_id=provider_account_id)
            )
            try:
                await session.commit()
            except IntegrityError:
                raise AccountLinkedError(provider) from None

    async def update_profile(
        self, user_id: str, *, name: str | None, image: str | None
    ) -> UserRecord | None:
        async with self._sessions() as session:
            user = await session.get(User, user_id)
            if user is None:
                return None
            if (user.name, user.image) != (name, image):
                user.name, user.image = name, image
                await session.commit()
            return _record(user)

    async def revoke_sessions(self, user_id: str, at: int) -> bool:
        async with self._sessions() as session:
            result = await session.execute(
                update(User).where(User.id == user_id).values(sessions_valid_after=at)
            )
            await session.commit()
            return bool(getattr(result, "rowcount", 0))


class SqlAlchemyCheckStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def redeem(self, jti: str, expires_at: int) -> bool:
        async with self._sessions() as session:
            # Expired entries can never be replayed (their cookie is expired too): drop them.
            await session.execute(delete(UsedCheck).where(UsedCheck.expires_at < _now()))
            session.add(UsedCheck(jti=jti, expires_at=expires_at))
            try:
                await session.commit()
            except IntegrityError:
                return False
            return True


def _now() -> int:
    return int(time.time())
