"""Users as the rest of authsvc sees them: plain records, roles and the store protocols.

Nothing here touches a database, so `authsvc.dependencies` (which other services import to
read sessions) does not pull in SQLAlchemy; the implementations live in repository.py.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class Role(enum.StrEnum):
    CUSTOMER = "CUSTOMER"
    ADMIN = "ADMIN"
    DEVELOPER = "DEVELOPER"
    STAFF = "STAFF"
    WHOLESALE = "WHOLESALE"
    FUNDRAISER = "FUNDRAISER"


ROLES = frozenset(role.value for role in Role)


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


class UserLookup(Protocol):
    """The read side of the user store: what the session path and callbacks use."""

    async def get_by_email(self, email: str) -> UserRecord | None: ...

    async def get_by_id(self, user_id: str) -> UserRecord | None: ...


class UserRepository(UserLookup, Protocol):
    """What authsvc needs from a user store. Emails passed in are already normalised."""

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
