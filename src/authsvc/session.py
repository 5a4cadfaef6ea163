"""The session path in one place: token → jwt callback → session callback, and the
claims of a new session at sign-in.

Used by `GET/POST /session`, sign-in and everything else that asks "who is this?". It knows
nothing of HTTP: callers hand it the raw token and the services (the container, or what
`SessionAuth` has) and get a value back. The ends are the session store's
(`session_store.py`): finding the token in a request, decoding it, writing the cookie
back. The opt-in modes run around the jwt callback, whichever the application has:
revocation before it, role freshness after it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from authsvc.callbacks import (
    Account,
    Callbacks,
    CallbackServices,
    JwtParams,
    SessionParams,
    initial_token,
    run_jwt,
    run_session,
)
from authsvc.cookies import CookiePolicy
from authsvc.freshness import RoleFreshness
from authsvc.revocation import RevocationCheck
from authsvc.session_store import SessionStore
from authsvc.token_cache import TokenCache
from authsvc.tokens import Claims, TokenCodec, is_session_shaped
from authsvc.tokens_v5 import AuthjsTokenCodec
from authsvc.users.records import UserRecord

if TYPE_CHECKING:
    from authsvc.settings import Settings

log = logging.getLogger("authsvc.session")


class SessionServices(CallbackServices, Protocol):
    """What the read path uses: the services container provides it (and `SessionAuth`)."""

    @property
    def session_store(self) -> SessionStore: ...

    @property
    def callbacks(self) -> Callbacks: ...

    @property
    def revocation(self) -> RevocationCheck | None: ...

    @property
    def freshness(self) -> RoleFreshness | None: ...


def session_codec(settings: Settings) -> TokenCodec:
    """The session-token codec: every secret, and the decode cache when enabled."""
    size = settings.token_cache_size
    # Auth.js v5 salts the key with the session cookie's name; next-auth v4 does not.
    codec = AuthjsTokenCodec if settings.authjs_v5 else TokenCodec
    salt = CookiePolicy.from_settings(settings).session_token if settings.authjs_v5 else ""
    return codec(
        settings.all_secrets,
        salt=salt,
        cache=TokenCache(size) if size else None,
        accepts=is_session_shaped,
    )


@dataclass(slots=True)  # built on every check; treated as immutable
class SessionOutcome:
    # none: no session cookie; invalid: a cookie that is not a valid session; failed: a
    # callback raised or returned the wrong type (no session, but the cookie is kept).
    kind: Literal["none", "invalid", "failed", "valid"]
    token: Claims | None = None
    session: dict[str, Any] | None = None
    # The token as decoded, before the jwt callback.
    decoded: Claims | None = None


NO_SESSION = SessionOutcome("none")
INVALID_SESSION = SessionOutcome("invalid")
CALLBACK_FAILED = SessionOutcome("failed")


def iso_expires(now: float, max_age: int) -> str:
    """JavaScript's `toISOString()` of now + max_age: milliseconds and `Z`."""
    moment = datetime.fromtimestamp(now + max_age, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_session_user(claims: Claims) -> dict[str, Any]:
    """next-auth's default `session.user`, from the token as decoded."""
    mapping = {"name": "name", "email": "email", "image": "picture"}
    return {key: claims[source] for key, source in mapping.items() if source in claims}


async def resolve_token(
    raw_token: str | None,
    services: SessionServices,
    *,
    trigger: Literal["update"] | None = None,
    data: Any = None,
    now: float | None = None,
) -> SessionOutcome:
    """The token after the jwt callback: all forward-auth needs (no session object).

    Revocation (when on) runs before the callback, role freshness (when on) after it, so
    whichever jwt callback the application has keeps both.
    """
    if raw_token is None:
        return NO_SESSION
    claims = services.session_store.decode(raw_token, now)
    if claims is None:
        log.info("JWT_SESSION_ERROR: session cookie rejected")
        return INVALID_SESSION
    revocation = services.revocation
    verdict = "allowed" if revocation is None else await revocation.check(claims, services.users)
    if verdict == "refused":
        log.info("JWT_SESSION_ERROR: session revoked")
        return INVALID_SESSION
    if verdict == "unknown":
        # Refused for now, but not known to be over: the cookie stays for the next request.
        log.info("JWT_SESSION_ERROR: revocation state unknown")
        return CALLBACK_FAILED
    params = JwtParams(token=claims, services=services, trigger=trigger, session=data)
    token = await run_jwt(services.callbacks.jwt, params)
    if token is None:
        return CALLBACK_FAILED
    if services.freshness is not None and trigger != "update":
        await services.freshness.refresh(token, services.users)
    return SessionOutcome("valid", token=token, decoded=claims)


async def resolve_session(
    raw_token: str | None,
    services: SessionServices,
    *,
    trigger: Literal["update"] | None = None,
    data: Any = None,
    now: float | None = None,
) -> SessionOutcome:
    """next-auth's `/session`: the token, then the session callback over it."""
    current = time.time() if now is None else now
    outcome = await resolve_token(raw_token, services, trigger=trigger, data=data, now=current)
    if outcome.token is None or outcome.decoded is None:
        return outcome
    # next-auth builds the default user from the token as decoded, before the callback.
    user = default_session_user(outcome.decoded)
    expires = iso_expires(current, services.settings.session_max_age)
    params = SessionParams(
        session={"user": user, "expires": expires}, token=outcome.token, services=services
    )
    session = await run_session(services.callbacks.session, params)
    if session is None:
        return CALLBACK_FAILED
    return SessionOutcome("valid", token=outcome.token, session=session)


async def sign_in_claims(
    services: SessionServices,
    user: UserRecord,
    account: Account,
    *,
    profile: Mapping[str, Any] | None = None,
    is_new_user: bool = False,
) -> Claims | None:
    """The claims of a new session for `user`, through the jwt callback (None: it failed)."""
    params = JwtParams(
        token=initial_token(user),
        services=services,
        user=user,
        account=account,
        profile=profile,
        trigger="signUp" if is_new_user else "signIn",
        is_new_user=is_new_user,
    )
    token = await run_jwt(services.callbacks.jwt, params)
    if token is not None and services.freshness is not None:
        services.freshness.stamp(token)
    return token


def session_owner(claims: Claims | None) -> str | None:
    """The user id a session belongs to."""
    user_id = (claims.get("id") or claims.get("sub")) if claims else None
    return user_id if isinstance(user_id, str) else None
