"""The email + password sign-in flow, start to finish, with no HTTP framework in sight.

The attempt is counted first, then the Credentials provider checks the password (an
unknown account costs the same time as a known one), the signIn callback may refuse and
the jwt callback makes the session's claims. Every way it can fail is a `SignInFailure`
with next-auth's error code, so the route only has to shape it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from authsvc.callbacks import SignInParams, run_sign_in
from authsvc.db import DATABASE_ERRORS
from authsvc.events import SignInEvent
from authsvc.providers import credentials
from authsvc.services import Services
from authsvc.session import sign_in_claims
from authsvc.sign_in.result import THROTTLED_ERROR, UNAVAILABLE_ERROR, SignedIn, SignInFailure

log = logging.getLogger("authsvc.credentials")

# How long a client should wait when the user store cannot answer (seconds).
UNAVAILABLE_RETRY_AFTER = 5


async def sign_in_with_password(
    posted: Mapping[str, Any], address: str | None, services: Services
) -> SignedIn | SignInFailure:
    """Sign in with the posted `email` and `password`; `address` is the client's (for the
    throttle), as proxy_trust works it out."""
    # Counted before the user is looked up: the same for every account, and no hashing.
    throttled = await services.throttle.acquire(posted.get("email"), address)
    if throttled is not None:
        return SignInFailure(
            THROTTLED_ERROR, "too many attempts", retry_after=throttled.retry_after
        )
    try:
        user = await credentials.authorize(
            posted,
            users=services.users,
            hasher=services.hasher,
            rehash_bcrypt=services.settings.rehash_bcrypt,
        )
    except DATABASE_ERRORS as exc:
        log.error("password sign-in: database unavailable (%s)", type(exc).__name__)
        return SignInFailure(
            UNAVAILABLE_ERROR, "user store unavailable", retry_after=UNAVAILABLE_RETRY_AFTER
        )
    if user is None:
        return SignInFailure("CredentialsSignin", "unknown email or wrong password")
    account = credentials.account_for(user)
    allowed = await run_sign_in(
        services.callbacks.sign_in,
        SignInParams(account=account, services=services, user=user, credentials=posted),
    )
    if allowed is not True:
        return SignInFailure("AccessDenied", "signIn callback refused", refusal=allowed)
    claims = await sign_in_claims(services, user, account)
    if claims is None:
        return SignInFailure("Configuration", "jwt callback failed")
    return SignedIn(claims, SignInEvent(user=user, account=account))
