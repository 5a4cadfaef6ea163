"""The `jwt` and `session` callbacks: where an application shapes its tokens and sessions.

They mirror next-auth's `callbacks.jwt({token, user, account, profile, trigger, session})`
and `callbacks.session({session, token})`. An application replaces them by overriding the
FastAPI dependencies `get_jwt_callback` / `get_session_callback` (see `authsvc.deps`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from authsvc.db import DATABASE_ERRORS
from authsvc.lookups import BoundedLookups
from authsvc.tokens import Claims
from authsvc.users.repository import UserRecord, UserRepository

log = logging.getLogger("authsvc.callbacks")

# When the token's role was last read from the database (role freshness mode).
ROLE_CHECKED_AT = "roleCheckedAt"
FRESHNESS_CACHE_SIZE = 10_000

Trigger = Literal["signIn", "signUp", "update"]


@dataclass(frozen=True, slots=True)
class Account:
    """next-auth's `account`: how the user signed in."""

    provider: str
    type: Literal["credentials", "oauth", "oidc"]
    provider_account_id: str
    tokens: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JwtParams:
    """Arguments of the jwt callback; `user`/`account` are set only at sign-in."""

    token: Claims
    user: UserRecord | None = None
    account: Account | None = None
    profile: Mapping[str, Any] | None = None
    trigger: Trigger | None = None
    # The `data` posted to `POST /session` (client input: validate before use).
    session: Any = None
    is_new_user: bool | None = None


@dataclass(frozen=True, slots=True)
class SessionParams:
    session: dict[str, Any]
    token: Claims


@dataclass(frozen=True, slots=True)
class SignInParams:
    """Arguments of the signIn callback, called before a session is created.

    Credentials: `user` and `credentials` (the posted body). OAuth: `profile` (the
    provider's raw profile) and the user if the identity is linked already.
    """

    account: Account
    user: UserRecord | None = None
    profile: Mapping[str, Any] | None = None
    credentials: Mapping[str, Any] | None = None


class SignInCallback(Protocol):
    """Return False to refuse the sign-in (next-auth's `AccessDenied`)."""

    async def __call__(self, params: SignInParams) -> bool: ...


class JwtCallback(Protocol):
    async def __call__(self, params: JwtParams) -> Claims: ...


class SessionCallback(Protocol):
    async def __call__(self, params: SessionParams) -> dict[str, Any]: ...


def initial_token(user: UserRecord) -> Claims:
    """next-auth's token before the jwt callback: name, email, picture, sub; plus when the
    session began (`authTime`, milliseconds), which refreshes keep and revocation reads."""
    token: Claims = {"name": user.name, "email": user.email, "picture": user.image}
    token = {key: value for key, value in token.items() if value is not None}
    token["sub"] = user.id
    token["authTime"] = int(time.time() * 1000)
    return token


def claims_from_user(user: UserRecord) -> Claims:
    """The fields the storefront keeps in its token."""
    return {
        "id": user.id,
        "role": user.role.value,
        "fundraiserId": user.fundraiser_id,
        "avatar": user.image,
    }


async def allow_sign_in(params: SignInParams) -> bool:
    """The default signIn callback: everyone who authenticated may sign in."""
    return True


class DefaultJwtCallback:
    """The storefront design: the token carries the role; the database is a fallback.

    - sign-in: copy `id`, `role`, `fundraiserId`, `avatar` from the user;
    - `update`: re-read those (and `name`) from the database, never from client data;
    - any other request: use the token as it is, with no database call, unless `role` is
      missing (a token minted before roles existed), then look the user up by email once;
    - opt-in role freshness (`role_max_age` seconds > 0): a token whose role was read from
      the database longer ago than that (its `roleCheckedAt` claim) gets it read again, by
      user id, through a per-process cache that lives as long; the re-issued cookie then
      carries the fresh role. A user who no longer exists loses the role (fails closed);
      a database error keeps the token's role and is logged.
    """

    def __init__(
        self,
        users: UserRepository,
        *,
        timeout: float = 2.0,
        role_max_age: int = 0,
        lookups: BoundedLookups | None = None,
    ) -> None:
        self._users = users
        # Each lookup answers within `timeout`; see lookups.py for why it is not cancelled.
        self._lookups = lookups or BoundedLookups(
            timeout=timeout, slots=10, background_limit=max(timeout, 10.0)
        )
        self._role_max_age = role_max_age
        # user id -> (when read, the user or None); bounded like the token cache.
        self._fresh: OrderedDict[str, tuple[float, UserRecord | None]] = OrderedDict()

    async def __call__(self, params: JwtParams) -> Claims:
        token = dict(params.token)
        if params.user is not None:
            token.update(claims_from_user(params.user))
            if self._role_max_age:
                token[ROLE_CHECKED_AT] = int(time.time())
            return token
        if params.trigger == "update":
            user = await self._lookup("id", token.get("id") or token.get("sub"))
            if user is not None:
                token["name"] = user.name
                token.update(claims_from_user(user))
            return token
        if "role" not in token:
            user = await self._lookup("email", token.get("email"))
            if user is not None:
                token.update(claims_from_user(user))
        elif self._role_max_age:
            await self._refresh_role(token)
        return token

    async def _refresh_role(self, token: Claims) -> None:
        now = time.time()
        checked = token.get(ROLE_CHECKED_AT)
        fresh = isinstance(checked, int | float) and not isinstance(checked, bool)
        if fresh and now - checked <= self._role_max_age:  # type: ignore[operator]
            return
        user_id = token.get("id") or token.get("sub")
        if not isinstance(user_id, str):
            return
        cached = self._fresh.get(user_id)
        if cached is not None and now - cached[0] <= self._role_max_age:
            user = cached[1]
        else:
            try:
                user = await self._lookups.run(
                    ("fresh", user_id), lambda: self._read_fresh(user_id)
                )
            except DATABASE_ERRORS as exc:
                log.warning("role refresh failed, keeping the token's role: %s", type(exc).__name__)
                return
        if user is None:
            token.pop("role", None)  # the account is gone: no role, so no access
            return
        token.update(claims_from_user(user))
        token[ROLE_CHECKED_AT] = int(now)

    async def _read_fresh(self, user_id: str) -> UserRecord | None:
        """Read the user and remember it, even when the request gave up waiting."""
        read_at = time.time()
        user = await self._users.get_by_id(user_id)
        self._fresh[user_id] = (read_at, user)
        self._fresh.move_to_end(user_id)
        while len(self._fresh) > FRESHNESS_CACHE_SIZE:
            self._fresh.popitem(last=False)
        return user

    async def _lookup(self, by: Literal["id", "email"], key: object) -> UserRecord | None:
        if not isinstance(key, str) or not key:
            return None
        find = self._users.get_by_id if by == "id" else self._users.get_by_email
        try:
            user: UserRecord | None = await self._lookups.run((by, key), lambda: find(key))
        except DATABASE_ERRORS as exc:
            # Fail closed on the role: the session stays, without one, and the next
            # request tries again.
            log.warning("user lookup failed: %s", type(exc).__name__)
            return None
        return user


class DefaultSessionCallback:
    """Map token fields onto `session.user`: id, role, fundraiserId (when set), image."""

    async def __call__(self, params: SessionParams) -> dict[str, Any]:
        token = params.token
        user = dict(params.session.get("user") or {})
        user["id"] = token.get("id") or token.get("sub")
        if "name" in token:
            user["name"] = token["name"]
        if token.get("role") is not None:
            user["role"] = token["role"]
        if token.get("fundraiserId") is not None:
            user["fundraiserId"] = token["fundraiserId"]
        if token.get("avatar") is not None:
            user["image"] = token["avatar"]
        return {**params.session, "user": user}
