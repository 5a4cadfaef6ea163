"""The session read path in one place: token → jwt callback → session callback.

Used by `GET/POST /session` and by everything else that asks "who is this?".
It knows nothing of HTTP: callers hand it the raw token and get a value back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from authsvc.callbacks import JwtCallback, JwtParams, SessionCallback, SessionParams
from authsvc.cookies import decode_uri_component, read_session_token
from authsvc.revocation import RevocationCheck
from authsvc.tokens import Claims, TokenCodec, is_session_shaped

log = logging.getLogger("authsvc.session")


@dataclass(slots=True)  # built on every check; treated as immutable
class SessionOutcome:
    # none: no session cookie; invalid: a cookie that is not a valid session; valid.
    kind: Literal["none", "invalid", "valid"]
    token: Claims | None = None
    session: dict[str, Any] | None = None
    # The token as decoded, before the jwt callback.
    decoded: Claims | None = None


NO_SESSION = SessionOutcome("none")
INVALID_SESSION = SessionOutcome("invalid")


def iso_expires(now: float, max_age: int) -> str:
    """JavaScript's `toISOString()` of now + max_age: milliseconds and `Z`."""
    moment = datetime.fromtimestamp(now + max_age, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def request_token(
    cookies: Mapping[str, str],
    authorization: str | None,
    cookie_name: str,
    *,
    skip_empty: bool = False,
) -> str | None:
    """The raw token as next-auth's `getToken` finds it (the /session route reads cookies only).

    The session cookie (whole or chunked) wins; without one, `Authorization: Bearer <token>`
    where the first space-separated word is exactly `Bearer` and the second is
    percent-decoded. A value that does not decode is no token (GHSA-xmf8-cvqr-rfgj).
    `skip_empty`: empty session cookies do not count (Auth.js v5, `CookiePolicy.authjs`).
    """
    token = read_session_token(cookies, cookie_name, skip_empty=skip_empty)
    if token is not None or not authorization:
        return token
    words = authorization.split(" ")
    if words[0] != "Bearer" or len(words) < 2:
        return None
    return decode_uri_component(words[1]) or None


def decode_session_token(codec: TokenCodec, raw: str, now: float | None = None) -> Claims | None:
    """The claims of a valid session token: authentic, unexpired, session-shaped (R6)."""
    claims = codec.decode(raw, now)
    if claims is None:
        return None
    # The app's session codec checks the shape itself (and caches only what passed).
    if codec.accepts is not is_session_shaped and not is_session_shaped(claims):
        return None
    return claims


def default_session_user(claims: Claims) -> dict[str, Any]:
    """next-auth's default `session.user`, from the token as decoded."""
    mapping = {"name": "name", "email": "email", "image": "picture"}
    return {key: claims[source] for key, source in mapping.items() if source in claims}


async def resolve_token(
    raw_token: str | None,
    *,
    codec: TokenCodec,
    jwt_callback: JwtCallback,
    trigger: Literal["update"] | None = None,
    data: Any = None,
    now: float | None = None,
    revocation: RevocationCheck | None = None,
) -> SessionOutcome:
    """The token after the jwt callback: all forward-auth needs (no session object)."""
    if raw_token is None:
        return NO_SESSION
    claims = decode_session_token(codec, raw_token, now)
    if claims is None:
        log.info("JWT_SESSION_ERROR: session cookie rejected")
        return INVALID_SESSION
    if revocation is not None and not await revocation.allows(claims):
        log.info("JWT_SESSION_ERROR: session revoked")
        return INVALID_SESSION
    token = await jwt_callback(JwtParams(token=claims, trigger=trigger, session=data))
    return SessionOutcome("valid", token=token, decoded=claims)


async def resolve_session(
    raw_token: str | None,
    *,
    codec: TokenCodec,
    jwt_callback: JwtCallback,
    session_callback: SessionCallback,
    max_age: int,
    trigger: Literal["update"] | None = None,
    data: Any = None,
    now: float | None = None,
    revocation: RevocationCheck | None = None,
) -> SessionOutcome:
    """next-auth's `/session`: the token, then the session callback over it."""
    current = time.time() if now is None else now
    outcome = await resolve_token(
        raw_token,
        codec=codec,
        jwt_callback=jwt_callback,
        trigger=trigger,
        data=data,
        now=current,
        revocation=revocation,
    )
    if outcome.token is None or outcome.decoded is None:
        return outcome
    # next-auth builds the default user from the token as decoded, before the callback.
    user = default_session_user(outcome.decoded)
    session = await session_callback(
        SessionParams(
            session={"user": user, "expires": iso_expires(current, max_age)}, token=outcome.token
        )
    )
    return SessionOutcome("valid", token=outcome.token, session=session)


async def revoke_session_owner(
    raw_token: str | None, codec: TokenCodec, revocation: RevocationCheck
) -> None:
    """Sign the owner of this session out everywhere (revocation mode's sign-out)."""
    claims = decode_session_token(codec, raw_token) if raw_token else None
    user_id = (claims.get("id") or claims.get("sub")) if claims else None
    if isinstance(user_id, str):
        await revocation.revoke(user_id)
