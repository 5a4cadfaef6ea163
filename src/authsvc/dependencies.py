"""`getServerSession` for other FastAPI services: read the next-auth session locally.

An application that shares `NEXTAUTH_SECRET` (and `NEXTAUTH_URL`, which decides the cookie
name) with authsvc checks sessions itself, with no call to authsvc::

    from typing import Annotated
    from fastapi import Depends, FastAPI
    from authsvc.dependencies import Session, SessionAuth

    auth = SessionAuth.from_env()
    app = FastAPI()

    @app.get("/me")
    async def me(session: Annotated[Session, Depends(auth.require_session)]) -> dict:
        return session.user

    @app.get("/admin", dependencies=[Depends(auth.require_role("ADMIN", "STAFF"))])
    async def admin() -> dict: ...

With `AUTHSVC_MODE=authjs-v5` (and `AUTH_SECRET`, `AUTH_SECRET_1..3`) it reads Auth.js v5's
`authjs.session-token` instead, exactly as authsvc does in that mode.

`get_session` gives the session or None; `require_session` answers 401 without one;
`require_role(...)` answers 401 without a session and 403 for another role. The session
cookie is read as authsvc reads it (chunks, rotation secrets, strict token checks), and
without a cookie an `Authorization: Bearer <token>` header (as next-auth's `getToken`).

The jwt callback defaults to using the token as it is, so no database is touched: a token
without a role has no role here (authsvc's own default looks the role up; pass your own
`jwt_callback` to do the same). A service that runs an authsvc app in the same process
reads sessions exactly as that app does, with its callbacks, user store, revocation and
role freshness, through `SessionAuth.from_app(app)`. Unlike `/api/auth/session`, the
cookie is not re-issued.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request

from authsvc.callbacks import (
    Callbacks,
    JwtCallback,
    JwtParams,
    SessionCallback,
    default_session,
)
from authsvc.cookies import CookiePolicy, parse_cookie_header
from authsvc.freshness import RoleFreshness
from authsvc.lookups import BoundedLookups, session_lookups
from authsvc.revocation import RevocationCheck
from authsvc.session import SessionServices, resolve_session, session_codec
from authsvc.session_store import SessionStore
from authsvc.settings import Settings, read_settings
from authsvc.tokens import Claims, TokenCodec
from authsvc.users.records import ROLES, UserLookup, UserRecord

if TYPE_CHECKING:
    from authsvc.app import AuthService

UNAUTHENTICATED = {"WWW-Authenticate": 'Bearer realm="authsvc"'}
# Lookups an application's own jwt callback may have in flight at once (`find_user`).
LOOKUP_SLOTS = 10


@dataclass(frozen=True, slots=True)
class Session:
    """What `/api/auth/session` would answer (`data`), and the token behind it."""

    data: dict[str, Any]
    token: Claims

    @property
    def user(self) -> dict[str, Any]:
        user = self.data.get("user")
        return user if isinstance(user, dict) else {}

    @property
    def expires(self) -> str | None:
        expires = self.data.get("expires")
        return expires if isinstance(expires, str) else None

    @property
    def user_id(self) -> str:
        return str(self.token.get("id") or self.token["sub"])

    @property
    def email(self) -> str | None:
        email = self.token.get("email")
        return email if isinstance(email, str) else None

    @property
    def role(self) -> str | None:
        role = self.token.get("role")
        return role if isinstance(role, str) else None


async def token_as_is(params: JwtParams) -> Claims:
    """A jwt callback that trusts the token as decoded: no database, no network."""
    return dict(params.token)


class NoUsers:
    """The user store of a service that has none: every lookup finds no one."""

    async def get_by_email(self, email: str) -> UserRecord | None:
        return None

    async def get_by_id(self, user_id: str) -> UserRecord | None:
        return None


NO_USERS = NoUsers()


@dataclass(frozen=True, slots=True)
class OwnServices:
    """What the read path needs, for a SessionAuth not built from an authsvc app."""

    settings: Settings
    cookie_policy: CookiePolicy
    codec: TokenCodec
    callbacks: Callbacks
    lookups: BoundedLookups
    users: UserLookup = NO_USERS
    revocation: RevocationCheck | None = None
    freshness: RoleFreshness | None = None
    # Derived from the settings and the codec, as in the services container.
    session_store: SessionStore = field(init=False)

    def __post_init__(self) -> None:
        store = SessionStore(self.cookie_policy, self.codec, self.settings.session_max_age)
        object.__setattr__(self, "session_store", store)


class SessionAuth:
    """Session dependencies for one configuration (secret, cookie name, callbacks)."""

    def __init__(
        self,
        settings: Settings,
        *,
        jwt_callback: JwtCallback = token_as_is,
        session_callback: SessionCallback | None = None,
    ) -> None:
        callbacks = Callbacks(jwt=jwt_callback, session=session_callback or default_session)
        lookups = session_lookups(settings, LOOKUP_SLOTS)
        policy = CookiePolicy.from_settings(settings.check_session())
        own = OwnServices(settings, policy, session_codec(settings), callbacks, lookups)
        self._read_with(own)

    def _read_with(self, services: SessionServices) -> None:
        self.services = services
        self.settings = services.settings
        self.store = services.session_store

    @classmethod
    def from_env(cls, **callbacks: Any) -> SessionAuth:
        """Settings from the environment and `.env`, exactly as authsvc reads them. Only
        what reading a session needs is checked (the secrets, NEXTAUTH_URL, the cookie
        domain): the service's own DATABASE_URL or other settings are none of ours."""
        return cls(read_settings(), **callbacks)

    @classmethod
    def from_app(cls, app: AuthService) -> SessionAuth:
        """Read sessions as this authsvc app does: its services container (settings,
        callbacks, user store, revocation and role freshness)."""
        auth = cls(app.services.settings)
        auth._read_with(app.services)
        return auth

    async def get_session(self, request: Request) -> Session | None:
        cookies = parse_cookie_header(request.headers.get("cookie"))
        raw = self.store.token(cookies, request.headers.get("authorization"))
        outcome = await resolve_session(raw, self.services, now=time.time())
        if outcome.kind != "valid" or outcome.token is None or outcome.session is None:
            return None
        return Session(data=outcome.session, token=outcome.token)

    async def require_session(self, request: Request) -> Session:
        session = await self.get_session(request)
        if session is None:
            raise HTTPException(401, "not signed in", headers=UNAUTHENTICATED)
        return session

    def require_role(self, *roles: str) -> Callable[[Request], Awaitable[Session]]:
        """A dependency that lets only these roles through (401 signed out, 403 otherwise)."""
        unknown = sorted(set(roles) - ROLES)
        if not roles or unknown:
            raise ValueError(f"require_role needs roles among {sorted(ROLES)}, got {roles!r}")
        allowed = frozenset(roles)

        async def dependency(request: Request) -> Session:
            session = await self.require_session(request)
            if session.role not in allowed:
                raise HTTPException(403, "forbidden")
            return session

        return dependency
