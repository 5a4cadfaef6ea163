"""next-auth's double-submit CSRF token: cookie `token|sha256hex(token + secret)`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class CsrfState:
    token: str
    # True when the token came from a cookie whose hash checked out.
    trusted: bool
    # The cookie value to set, when the request brought no valid current one.
    new_cookie: str | None = None


def _digest(token: str, secret: str) -> str:
    return hashlib.sha256((token + secret).encode()).hexdigest()


def _cookie(token: str, secret: str) -> str:
    return f"{token}|{_digest(token, secret)}"


def csrf_state(cookie_value: str | None, secrets_: Sequence[str]) -> CsrfState:
    """Trust the cookie when its hash matches a configured secret; otherwise mint one.

    A cookie hashed with an older (rotated) secret stays valid and is re-issued under the
    current one.
    """
    if cookie_value:
        check = _remembered if len(cookie_value) <= _MEMO_LENGTH else _check
        checked = check(cookie_value, tuple(secrets_))
        if checked is not None:
            return checked
    token = secrets.token_hex(32)
    return CsrfState(token=token, trusted=False, new_cookie=_cookie(token, secrets_[0]))


def _check(cookie_value: str, secrets_: tuple[str, ...]) -> CsrfState | None:
    token, sep, digest = cookie_value.partition("|")
    if sep and token:
        for index, secret in enumerate(secrets_):
            if hmac.compare_digest(digest.encode(), _digest(token, secret).encode()):
                renewed = None if index == 0 else _cookie(token, secrets_[0])
                return CsrfState(token=token, trusted=True, new_cookie=renewed)
    return None


# A browser sends the same CSRF cookie with every request until it signs out, so its check
# is remembered (the state is immutable). A real cookie is 129 characters; longer values
# are checked every time, and an LRU bound keeps made-up cookies from growing the memo
# (at most 4,096 x 256 characters).
_MEMO_LENGTH = 256
_remembered = lru_cache(maxsize=4096)(_check)


def csrf_verified(state: CsrfState, submitted: object) -> bool:
    """A POST is verified when its body's csrfToken equals the trusted cookie's token."""
    return (
        state.trusted
        and isinstance(submitted, str)
        and hmac.compare_digest(submitted.encode(), state.token.encode())
    )
