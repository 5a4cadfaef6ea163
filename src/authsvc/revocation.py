"""Opt-in revocation: "sign out everywhere" through a per-user not-before time.

By default a session is a self-contained token and nothing is looked up to accept it. In
revocation mode (AUTHSVC_REVOCATION=true) every session check also asks whether the user
still exists and whether their sessions were revoked after this one began (the token's
`authTime` claim, in milliseconds, set at sign-in and kept through refreshes; tokens
without it use `iat`). The answer is cached per user for `ttl` seconds, so the hot path
stays a dictionary lookup; a revocation therefore takes effect within `ttl` on every
replica (at once in the process that made it). A lookup that fails or misses its deadline
(a database restart, a lookup late under load) falls back on the state this process read
last if that is at most one more `ttl` old, so such a blip signs nobody out whose state
was known; otherwise it fails closed: the request is refused, not waved through, but the cookie is
kept (the session is not known to be over; the read goes on in the background and the
next request has its answer). A revocation may take up to twice `ttl` to reach a replica
that cannot read it.
Lookups go through
`BoundedLookups` (one per user in flight, a bounded number at once, never cancelled
midway: see lookups.py), so an expiring entry under load sends one query, not one per
request, and a slow database gets no connection storm.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Literal

from authsvc.lookups import BoundedLookups
from authsvc.tokens import Claims
from authsvc.users.records import UserLookup, UserRepository

log = logging.getLogger("authsvc.revocation")

AUTH_TIME = "authTime"
Verdict = Literal["allowed", "refused", "unknown"]
CACHE_SIZE = 10_000


def now_ms() -> int:
    return int(time.time() * 1000)


def revocation_time() -> int:
    """The not-before time that ends every session begun until now: one millisecond on, so a
    session begun in the very millisecond of the revocation is ended too (ties revoke)."""
    return now_ms() + 1


def authenticated_at(claims: Claims) -> float | None:
    """When the session began, in milliseconds."""
    value = claims.get(AUTH_TIME)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    iat = claims.get("iat")
    if isinstance(iat, int | float) and not isinstance(iat, bool):
        return float(iat) * 1000
    return None


class RevocationCheck:
    """The per-user revocation state, cached. The user store is passed on each call, so an
    application's own store (or a dependency override of it) is the one asked."""

    def __init__(self, *, ttl: float, lookups: BoundedLookups) -> None:
        self._ttl = ttl
        self._lookups = lookups
        # user id -> (when read, whether the user exists, sessions valid after (ms))
        self._cache: OrderedDict[str, tuple[float, bool, int | None]] = OrderedDict()
        # Bumped by every revoke(): a read that began before it must not cache its answer.
        self._revocations = 0

    async def allows(self, claims: Claims, users: UserLookup) -> bool:
        return await self.check(claims, users) == "allowed"

    async def check(self, claims: Claims, users: UserLookup) -> Verdict:
        """`allowed`, `refused` (revoked, deleted, or not a session that can be judged), or
        `unknown`: the user's state could not be read in time, so this request is refused
        but the session is not known to be over (its cookie is kept for the next one)."""
        user_id = claims.get("id") or claims.get("sub")
        started = authenticated_at(claims)
        if not isinstance(user_id, str) or started is None:
            return "refused"
        state = await self._state(user_id, users)
        if state is None:
            return "unknown"
        exists, valid_after = state
        return (
            "allowed" if exists and (valid_after is None or started >= valid_after) else "refused"
        )

    async def revoke(self, user_id: str, users: UserRepository) -> bool:
        """End every session of this user that began before now."""
        revoked = await users.revoke_sessions(user_id, revocation_time())
        self._revocations += 1
        self._cache.pop(user_id, None)
        return revoked

    async def _state(self, user_id: str, users: UserLookup) -> tuple[bool, int | None] | None:
        cached = self._cache.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1], cached[2]
        try:
            return await self._lookups.run(
                ("revocation", id(users), user_id), lambda: self._read(user_id, users)
            )
        except Exception as exc:  # any store's failure, or its deadline
            # Read again: a revoke() in this process meanwhile has dropped the entry.
            cached = self._cache.get(user_id)
            if cached is not None and time.monotonic() - cached[0] < 2 * self._ttl:
                log.warning(
                    "revocation lookup failed, using the state read %.1f s ago: %s",
                    time.monotonic() - cached[0],
                    type(exc).__name__,
                )
                return cached[1], cached[2]
            log.warning("revocation lookup failed, refusing the session: %s", type(exc).__name__)
            return None

    async def _read(self, user_id: str, users: UserLookup) -> tuple[bool, int | None]:
        """Read the user's state and cache it, even when the request gave up waiting."""
        now = time.monotonic()
        revocations = self._revocations
        user = await users.get_by_id(user_id)
        state = (user is not None, user.sessions_valid_after if user else None)
        if revocations != self._revocations:
            return state
        self._cache[user_id] = (now, *state)
        self._cache.move_to_end(user_id)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return state
