"""An in-memory UserRepository for unit tests of code above the store.

Database behaviour itself is tested against real SQLite and PostgreSQL
(tests/unit/users/test_repository.py); this fake only lets callbacks and providers be tested
without one, and records what they asked for.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy.exc import OperationalError

from authsvc.callbacks import Callbacks
from authsvc.cookies import CookiePolicy
from authsvc.dependencies import OwnServices
from authsvc.lookups import session_lookups
from authsvc.session import session_codec
from authsvc.users.models import Role, new_id
from authsvc.users.repository import AccountLinkedError, UserExistsError, UserRecord
from tests.conftest import make_settings


class InMemoryUsers:
    def __init__(self, *records: UserRecord, fail: bool = False) -> None:
        self.by_email = {record.email: record for record in records}
        self.accounts: dict[tuple[str, str], str] = {}
        self.password_updates: list[tuple[str, str]] = []
        self.lookups = 0
        self.fail = fail

    def _lookup(self) -> None:
        self.lookups += 1
        if self.fail:
            raise OperationalError("SELECT", {}, Exception("database is down"))

    def _by_id(self, user_id: str) -> UserRecord | None:
        return next((r for r in self.by_email.values() if r.id == user_id), None)

    async def get_by_email(self, email: str) -> UserRecord | None:
        self._lookup()
        return self.by_email.get(email)

    async def get_by_id(self, user_id: str) -> UserRecord | None:
        self._lookup()
        return self._by_id(user_id)

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
        if email in self.by_email:
            raise UserExistsError(email)
        record = UserRecord(new_id(), email, name, image, role, fundraiser_id, password_hash)
        self.by_email[email] = record
        return record

    async def set_role(self, email: str, role: Role) -> UserRecord | None:
        record = self.by_email.get(email)
        if record is None:
            return None
        self.by_email[email] = dataclasses.replace(record, role=role)
        return self.by_email[email]

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self.password_updates.append((user_id, password_hash))

    async def get_by_account(self, provider: str, provider_account_id: str) -> UserRecord | None:
        self._lookup()
        user_id = self.accounts.get((provider, provider_account_id))
        return self._by_id(user_id) if user_id else None

    async def create_with_account(
        self,
        *,
        email: str,
        name: str | None,
        image: str | None,
        provider: str,
        provider_account_id: str,
    ) -> UserRecord:
        record = await self.create(email=email, name=name, image=image)
        self.accounts[(provider, provider_account_id)] = record.id
        return record

    async def link_account(self, user_id: str, provider: str, provider_account_id: str) -> None:
        if (provider, provider_account_id) in self.accounts:
            raise AccountLinkedError(provider)
        self.accounts[(provider, provider_account_id)] = user_id

    async def revoke_sessions(self, user_id: str, at: int) -> bool:
        record = self._by_id(user_id)
        if record is None:
            return False
        self.by_email[record.email] = dataclasses.replace(record, sessions_valid_after=at)
        return True

    async def update_profile(
        self, user_id: str, *, name: str | None, image: str | None
    ) -> UserRecord | None:
        record = self._by_id(user_id)
        if record is None:
            return None
        self.by_email[record.email] = dataclasses.replace(record, name=name, image=image)
        return self.by_email[record.email]


def services_over(
    users: InMemoryUsers, callbacks: Callbacks | None = None, **settings: Any
) -> OwnServices:
    """What the callbacks and the read path see, over this in-memory store (no database)."""
    checked = make_settings(**settings)
    lookups = session_lookups(checked, 10)
    policy = CookiePolicy.from_settings(checked)
    return OwnServices(
        checked, policy, session_codec(checked), callbacks or Callbacks(), lookups, users=users
    )
