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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from authsvc.settings import Settings

log = logging.getLogger("authsvc.lookups")

T = TypeVar("T")


class LookupsBusyError(TimeoutError):
    """Every slot is taken by a read still running: the database is slow or away."""


class BoundedLookups:
    def __init__(self, *, timeout: float, slots: int, background_limit: float) -> None:
        self.timeout = timeout
        self.slots = slots
        self.background_limit = background_limit
        self._inflight: dict[Hashable, asyncio.Task[Any]] = {}

    @property
    def running(self) -> int:
        return len(self._inflight)

    async def run(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """`read()`'s result, or its exception, or TimeoutError once the deadline passes."""
        task = self._inflight.get(key)
        if task is None:
            if len(self._inflight) >= self.slots:
                raise LookupsBusyError("every database lookup slot is busy")
            task = asyncio.ensure_future(self._bounded(read))
            self._inflight[key] = task
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
        # Mark the outcome retrieved: a caller that gave up is no reason for a warning.
        if not task.cancelled() and task.exception() is not None:
            log.debug("background lookup failed: %s", type(task.exception()).__name__)


def session_lookups(settings: Settings, slots: int) -> BoundedLookups:
    """The session path's budget: `slots` reads at once (a pool's worth), each answered
    within AUTHSVC_SESSION_LOOKUP_TIMEOUT, none running past twice AUTHSVC_DB_TIMEOUT."""
    return BoundedLookups(
        timeout=settings.session_lookup_timeout,
        slots=slots,
        background_limit=settings.database_timeout * 2,
    )
