"""Opt-in role freshness: a token's role is re-read once it is older than a set age.

By default the role in the token is used as it is (next-auth's behaviour): a role change
applies at the next sign-in or `update()`. With AUTHSVC_ROLE_MAX_AGE > 0 every session
read whose role was last read from the database longer ago than that (the token's
`roleCheckedAt` claim, seconds) gets it read again, by user id, through a per-process
cache that lives as long (its reads bounded like every session-path lookup: see
lookups.py); the re-issued cookie then carries the fresh role. A user who no
longer exists loses the role (fails closed); a lookup that fails keeps the token's role
and is logged.

It runs after whichever jwt callback is in place, so an application's own callback keeps
it without doing anything.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from authsvc.callbacks import claims_from_user
from authsvc.lookups import BoundedLookups
from authsvc.tokens import Claims
from authsvc.users.records import UserLookup, UserRecord

log = logging.getLogger("authsvc.freshness")

# When the token's role was last read from the database (seconds).
ROLE_CHECKED_AT = "roleCheckedAt"
CACHE_SIZE = 10_000


class RoleFreshness:
    def __init__(self, *, max_age: int, lookups: BoundedLookups) -> None:
        self._max_age = max_age
        self._lookups = lookups
        # user id -> (when read, the user or None); bounded like the token cache.
        self._cache: OrderedDict[str, tuple[float, UserRecord | None]] = OrderedDict()

    def stamp(self, token: Claims) -> None:
        """The role was just read from the user (sign-in)."""
        token[ROLE_CHECKED_AT] = int(time.time())

    async def refresh(self, token: Claims, users: UserLookup) -> None:
        """Re-read the role of a token whose role is older than the maximum age."""
        if "role" not in token:
            return
        now = time.time()
        checked = token.get(ROLE_CHECKED_AT)
        fresh = isinstance(checked, int | float) and not isinstance(checked, bool)
        if fresh and now - checked <= self._max_age:  # type: ignore[operator]
            return
        user_id = token.get("id") or token.get("sub")
        if not isinstance(user_id, str):
            return
        cached = self._cache.get(user_id)
        if cached is not None and now - cached[0] <= self._max_age:
            user = cached[1]
        else:
            try:
                user = await self._lookups.run(
                    ("fresh", id(users), user_id), lambda: self._read(user_id, users)
                )
            except Exception as exc:  # any store's failure, or its deadline
                log.warning("role refresh failed, keeping the token's role: %s", type(exc).__name__)
                return
        if user is None:
            token.pop("role", None)  # the account is gone: no role, so no access
            return
        token.update(claims_from_user(user))
        token[ROLE_CHECKED_AT] = int(now)

    async def _read(self, user_id: str, users: UserLookup) -> UserRecord | None:
        """Read the user and remember it, even when the request gave up waiting."""
        read_at = time.time()
        user = await users.get_by_id(user_id)
        self._cache[user_id] = (read_at, user)
        self._cache.move_to_end(user_id)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return user
