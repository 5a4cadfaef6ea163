"""The services container: every part of a running authsvc, built once, typed.

`create_app` builds one `Services` and hands it to everything that works: the FastAPI
routes (through `deps.ServicesDep`), the hot path (`/verify`), the CLI and the Python
dependency (`SessionAuth.from_app`). A part given to `create_app` (the user store, the
password hasher, the callbacks, the events) is therefore the one every use sees; so is
a FastAPI dependency override of it (resolved in one place: `deps.ServiceResolver`).

It is a frozen value: a variant with one part replaced is `dataclasses.replace(...)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from authsvc.callbacks import Callbacks
from authsvc.cookies import CookiePolicy
from authsvc.db import Database
from authsvc.events import Events
from authsvc.freshness import RoleFreshness
from authsvc.lookups import BoundedLookups, session_lookups
from authsvc.metrics import Metrics
from authsvc.outbound import make_client
from authsvc.providers.oauth_client import OAuthProvider
from authsvc.providers.registry import build_providers
from authsvc.revocation import RevocationCheck
from authsvc.session import session_codec
from authsvc.session_store import SessionStore
from authsvc.settings import Settings
from authsvc.throttle import SignInThrottle
from authsvc.tokens import TokenCodec
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import (
    CheckStore,
    SqlAlchemyCheckStore,
    SqlAlchemyUserRepository,
    UserRepository,
)
from authsvc.users.tables import UserTables, tables_for


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    # Cookie names and attributes for every response (from the settings, never the request).
    cookie_policy: CookiePolicy
    database: Database
    # The tables the built-in store and check store use (authsvc's, or the storefront's
    # Prisma tables with AUTHSVC_USER_SCHEMA=prisma).
    user_tables: UserTables
    codec: TokenCodec
    users: UserRepository
    hasher: PasswordHasher
    checks: CheckStore
    throttle: SignInThrottle
    providers: Mapping[str, OAuthProvider]
    http: httpx.AsyncClient
    metrics: Metrics
    callbacks: Callbacks
    events: Events
    # The session path's database reads share one budget: at most a pool's worth at once.
    lookups: BoundedLookups
    # The opt-in modes (AUTHSVC_REVOCATION, AUTHSVC_ROLE_MAX_AGE); None when off.
    revocation: RevocationCheck | None
    freshness: RoleFreshness | None
    # The session cookie's load/save/clear, derived from the cookie policy, the codec and
    # the session lifetime: built with the container, and again with any variant
    # (`replace`, dependency overrides), so it always uses the container's own parts.
    session_store: SessionStore = field(init=False)
    # What CSRF cookies are hashed with (`Settings.csrf_secrets`), worked out once.
    csrf_secrets: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        store = SessionStore(self.cookie_policy, self.codec, self.settings.session_max_age)
        object.__setattr__(self, "session_store", store)
        object.__setattr__(self, "csrf_secrets", tuple(self.settings.csrf_secrets))

    async def aclose(self) -> None:
        """Release what the parts hold open (connections, pools, the HTTP client), and write
        this process's last metrics for its group."""
        self.metrics.flush()
        await self.http.aclose()
        await self.database.dispose()
        await self.throttle.aclose()


def build_services(
    settings: Settings,
    *,
    callbacks: Callbacks | None = None,
    events: Events | None = None,
    users: UserRepository | None = None,
    hasher: PasswordHasher | None = None,
    http: httpx.AsyncClient | None = None,
) -> Services:
    """Every part, from checked settings and whatever the application supplies itself."""
    database = Database(
        settings.database_url,
        timeout=settings.database_timeout,
        pool_size=settings.database_pool_size,
    )
    lookups = session_lookups(settings, database.pool_size)
    tables = tables_for(settings)
    return Services(
        settings=settings,
        cookie_policy=CookiePolicy.from_settings(settings),
        database=database,
        user_tables=tables,
        codec=session_codec(settings),
        users=users or SqlAlchemyUserRepository(database.sessions, tables),
        hasher=hasher or PasswordHasher(),
        checks=SqlAlchemyCheckStore(database.sessions, tables.used_checks),
        throttle=SignInThrottle.from_settings(settings),
        providers=build_providers(settings),
        http=http or make_client(settings.oauth_timeout),
        metrics=Metrics(group_directory=settings.metrics_dir),
        callbacks=callbacks or Callbacks(),
        events=events or Events(),
        lookups=lookups,
        revocation=RevocationCheck(ttl=settings.revocation_cache_ttl, lookups=lookups)
        if settings.revocation
        else None,
        freshness=RoleFreshness(max_age=settings.role_max_age, lookups=lookups)
        if settings.role_max_age
        else None,
    )
