"""Database reads on the request path, each answered within its deadline.

The session path reads the database only in a few cases (a token without a role, role
freshness, revocation), and must answer within AUTHSVC_SESSION_LOOKUP_TIMEOUT even when
the database is slow. Cancelling a read at its deadline does not achieve that: a query or
connection attempt cut midway leaves its connection in an unknown state, so SQLAlchemy
closes it (a round trip on the slow network, measured at 2 s behind a proxy adding 2 s
per packet) and the next read opens a new one, so a slow database got a connection per
request.

So a read that misses its deadline is not cancelled. The caller stops waiting and gets
`TimeoutError`; the read goes on in the background, bounded by the database's own limits
(connect and statement timeouts, AUTHSVC_DB_TIMEOUT, and `background_limit` as a last
resort), and returns its connection to the pool. Reads of the same key share one flight,
and at most `slots` reads run at once: past that a caller gets `TimeoutError` at once,
without touching the pool, so a slow database sees a bounded number of connections and
connection attempts, and everything recovers by itself once it is fast again.

A database that is down answers every read with an error, quickly: a request with nothing
to fall back on would send a connection attempt each, and PostgreSQL starting up or
shutting down forks a backend to refuse each one. So once a read fails with a database
error, reads are refused at once (`LookupsUnavailableError`, without touching the pool)
for `retry_after` seconds; then one read goes through as a probe, others still refused
while it runs, and its success lets every read through again. Callers fall back as they
do on a deadline (revocation: the state read last), only sooner.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from authsvc.settings import Settings

log = logging.getLogger("authsvc.lookups")

T = TypeVar("T")
# Seconds a database error keeps reads refused before one is let through to try again.
RETRY_AFTER = 0.5


class LookupsBusyError(TimeoutError):
    """Every slot is taken by a read still running: the database is slow or away."""


class LookupsUnavailableError(TimeoutError):
    """A read failed with a database error a moment ago: this one is not sent."""


class BoundedLookups:
    def __init__(
        self,
        *,
        timeout: float,
        slots: int,
        background_limit: float,
        retry_after: float = RETRY_AFTER,
    ) -> None:
        self.timeout = timeout
        self.slots = slots
        self.background_limit = background_limit
        self.retry_after = retry_after
        self._inflight: dict[Hashable, asyncio.Task[Any]] = {}
        # Set (monotonic time) by a read that failed with a database error; cleared by a
        # read that succeeds. Past it, the one read in `_probe` finds out.
        self._failing_until: float | None = None
        self._probe: asyncio.Task[Any] | None = None

    @property
    def running(self) -> int:
        return len(self._inflight)

    async def run(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """`read()`'s result, or its exception, or TimeoutError once the deadline passes."""
        task = self._inflight.get(key)
        if task is None:
            if len(self._inflight) >= self.slots:
                raise LookupsBusyError("every database lookup slot is busy")
            failing_until = self._failing_until
            if failing_until is not None and (
                self._probe is not None or time.monotonic() < failing_until
            ):
                raise LookupsUnavailableError("the database failed a moment ago")
            task = asyncio.ensure_future(self._bounded(read))
            self._inflight[key] = task
            if failing_until is not None:
                self._probe = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # asyncio.wait never cancels the task: others may be waiting for it, and it
        # should finish and give its connection back.
        done, _ = await asyncio.wait({task}, timeout=self.timeout)
        if not done:
            raise TimeoutError("database lookup missed its deadline")
        result: T = task.result()
        return result

    async def _bounded(self, read: Callable[[], Awaitable[T]]) -> T:
        async with asyncio.timeout(self.background_limit):
            return await read()

    def _finished(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if self._probe is task:
            self._probe = None
        if task.cancelled():
            return
        # Retrieving the outcome also marks it seen: a caller that gave up is no reason
        # for a warning.
        error = task.exception()
        if error is None:
            self._failing_until = None
        elif is_database_error(error):
            self._failing_until = time.monotonic() + self.retry_after
        if error is not None:
            log.debug("background lookup failed: %s", type(error).__name__)


def is_database_error(error: BaseException) -> bool:
    """A connection's or the database's failure (authsvc.db's DATABASE_ERRORS), found
    without importing SQLAlchemy, which the Python dependency runs without: an error of a
    module never imported cannot have been raised."""
    if isinstance(error, OSError | TimeoutError):
        return True
    sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")
    return sqlalchemy_errors is not None and isinstance(error, sqlalchemy_errors.SQLAlchemyError)


def session_lookups(settings: Settings, slots: int) -> BoundedLookups:
    """The session path's budget: `slots` reads at once (a pool's worth), each answered
    within AUTHSVC_SESSION_LOOKUP_TIMEOUT, none running past twice AUTHSVC_DB_TIMEOUT."""
    return BoundedLookups(
        timeout=settings.session_lookup_timeout,
        slots=slots,
        background_limit=settings.database_timeout * 2,
    )
