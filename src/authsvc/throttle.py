"""Brute-force throttling of email + password sign-in, by account and by client address.

The rules (README, *Brute-force throttling*, says the same for operators):

- **Two limits**, each a moving window from the `limits` library: one per account (the
  normalised email; default 100 an hour, ASVS 4 2.2.1) and one per client address
  (default 300 an hour, against one address spraying many accounts). An attempt must fit
  both. A moving window has no lockout period: a throttled account gets one attempt back
  as each counted attempt turns an hour old, and `Retry-After` says when the next is due.
- **Every password check counts, reserved atomically before it runs**, so parallel
  requests cannot overshoot a limit (a check-then-count scheme lets a burst of parallel
  guesses all pass the check). A successful sign-in therefore counts too, and clears
  nothing: resetting the account's count on success would hand an attacker a fresh
  hundred guesses each time the real user signs in. A person signs in a few times an
  hour, far below either limit.
- **No enumeration**: the counts are taken before the user is looked up, so a known and
  an unknown account are throttled alike, and a throttled attempt costs no Argon2 work.
  A text that is not an email address cannot be an account: only the address limit applies.
- **No addresses in the store**: both keys are HMACs (under a key derived from
  NEXTAUTH_SECRET) of the normalised email and of the client address, so a dump of the
  Redis keys reveals neither. IPv6 clients are counted by their /64, which one host
  usually holds whole.
- **Storage**: in-process memory by default (one replica); Redis when
  AUTHSVC_RATE_LIMIT_STORAGE is a `redis://` URL, so replicas share the counts. Redis
  down or slow (each call is bounded): the error is logged and the in-process limiter
  takes over, so sign-in stays possible and still throttled (per replica), and Redis is
  tried again after `REDIS_RETRY_SECONDS`. The in-process limiter also counts every
  attempt Redis let through, so a Redis that stops answering (or is made slow by a burst
  of guesses, or restarts empty) never hands a replica a fresh budget: what one process
  lets through stays within each limit.
- **Malicious lockout** (ASVS 5 6.3.1): an attacker who knows an email can keep that
  account throttled only by spending its whole hourly budget, continuously, and only
  for password sign-in: sessions already issued, OAuth sign-in and other accounts are
  untouched, and the per-address limit caps what one address can spend.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from authsvc.settings import parse_limit
from authsvc.users.emails import normalize_email

if TYPE_CHECKING:
    from authsvc.settings import Settings

log = logging.getLogger("authsvc.throttle")

Scope = Literal["account", "address"]
NAMESPACE = "authsvc-signin"
# Bounds on Redis for one sign-in: each socket or pool wait, and the whole call. Generous,
# because under a burst of sign-ins the event loop's own queue adds to every wait, and a
# timeout moves the counting to this process alone; a sign-in costs ~0.1 s of Argon2 anyway.
REDIS_TIMEOUT = 1.0
REDIS_DEADLINE = 2.0
REDIS_CONNECTIONS = 32
# After a Redis failure, the in-process limiter is used this long before Redis is tried again.
REDIS_RETRY_SECONDS = 5.0
IPV6_PREFIX = 64


@dataclass(frozen=True, slots=True)
class Throttled:
    """The attempt was refused: which limit, and whole seconds until one is free again."""

    scope: Scope
    retry_after: int


def address_identity(address: str | None) -> str:
    """What the per-address limit counts: the IP (an IPv6 client's /64), or the text."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


class SignInThrottle:
    def __init__(
        self,
        *,
        secret: str,
        account_limit: RateLimitItem,
        address_limit: RateLimitItem,
        storage_url: str = "memory",
    ) -> None:
        self.account_limit = account_limit
        self.address_limit = address_limit
        self._key = hmac.new(secret.encode(), b"authsvc sign-in throttle", hashlib.sha256).digest()
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._pool: BlockingConnectionPool | None = None
        self._redis: MovingWindowRateLimiter | None = None
        if storage_url != "memory":
            # A burst of sign-ins waits its turn for a connection (within the timeout).
            self._pool = BlockingConnectionPool.from_url(
                storage_url,
                max_connections=REDIS_CONNECTIONS,
                timeout=REDIS_TIMEOUT,
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
                # One immediate retry: a pooled connection may have died since its last use.
                retry=Retry(NoBackoff(), 1),
            )
            options: dict[str, Any] = {"connection_pool": self._pool}
            storage = RedisStorage(
                "async+" + storage_url, implementation="redispy", wrap_exceptions=True, **options
            )
            self._redis = MovingWindowRateLimiter(storage)
        self._redis_retry_at = 0.0
        self._redis_down = False

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInThrottle:
        return cls(
            secret=settings.secret_value,
            account_limit=parse_limit("AUTHSVC_RATE_LIMIT_ACCOUNT", settings.rate_limit_account),
            address_limit=parse_limit("AUTHSVC_RATE_LIMIT_ADDRESS", settings.rate_limit_address),
            storage_url=settings.rate_limit_storage.get_secret_value(),
        )

    @property
    def shared(self) -> bool:
        """Whether counts are shared through Redis (False: this process only)."""
        return self._redis is not None

    def _digest(self, kind: str, value: str) -> str:
        message = f"{kind}\x00{value}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _keys(self, email: object, address: str | None) -> list[tuple[Scope, str, RateLimitItem]]:
        keys: list[tuple[Scope, str, RateLimitItem]] = [
            ("address", self._digest("address", address_identity(address)), self.address_limit)
        ]
        account = normalize_email(email)
        if account is not None:
            keys.append(("account", self._digest("account", account), self.account_limit))
        return keys

    async def acquire(self, email: object, address: str | None) -> Throttled | None:
        """Count one password check for this email and address, or refuse it.

        None: go ahead (the attempt is counted). `Throttled`: answer 429 without checking.
        """
        keys = self._keys(email, address)
        if self._redis is not None and time.monotonic() >= self._redis_retry_at:
            try:
                async with asyncio.timeout(REDIS_DEADLINE):
                    outcome = await _acquire(self._redis, keys)
            except (StorageError, RedisError, OSError, TimeoutError) as exc:
                self._redis_failed(exc)
            else:
                if self._redis_down:
                    self._redis_down = False
                    log.warning("rate-limit storage is back: sign-in counts are shared again")
                if outcome is not None:
                    return outcome
        return await _acquire(self._memory, keys)

    def _redis_failed(self, exc: BaseException) -> None:
        self._redis_retry_at = time.monotonic() + REDIS_RETRY_SECONDS
        if not self._redis_down:
            self._redis_down = True
            log.error(
                "rate-limit storage unavailable (%s): throttling sign-in with this process's "
                "own counts until it answers again",
                type(exc).__name__,
                extra={"fields": {"error": type(exc).__name__}},
            )

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


async def _acquire(
    limiter: MovingWindowRateLimiter, keys: Sequence[tuple[Scope, str, RateLimitItem]]
) -> Throttled | None:
    # The address first: an attempt refused there is not charged to the account.
    for scope, key, item in keys:
        if not await limiter.hit(item, NAMESPACE, scope, key):
            stats = await limiter.get_window_stats(item, NAMESPACE, scope, key)
            wait = math.ceil(stats.reset_time - time.time())
            return Throttled(scope=scope, retry_after=max(1, wait))
    return None
