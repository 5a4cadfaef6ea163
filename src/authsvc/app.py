"""`create_app`: the one place where the parts are wired together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from authsvc import __version__
from authsvc.callbacks import DefaultJwtCallback, DefaultSessionCallback
from authsvc.db import Database
from authsvc.errors import install_error_handlers
from authsvc.hotpath import AuthService
from authsvc.lookups import BoundedLookups
from authsvc.metrics import Metrics, ObservabilityMiddleware
from authsvc.openapi import install_openapi
from authsvc.outbound import make_client
from authsvc.providers.registry import build_providers
from authsvc.revocation import RevocationCheck
from authsvc.routes import auth, fallback, health, oauth, verify
from authsvc.settings import Settings, load_settings
from authsvc.throttle import SignInThrottle
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import (
    SqlAlchemyCheckStore,
    SqlAlchemyUserRepository,
    UserRepository,
)
from authsvc.users.tables import tables_for


def create_app(
    settings: Settings | None = None,
    *,
    users: UserRepository | None = None,
    hasher: PasswordHasher | None = None,
) -> AuthService:
    """Build the service. Settings come from the environment unless given."""
    settings = (settings or load_settings()).check()
    database = Database(
        settings.database_url,
        timeout=settings.database_timeout,
        pool_size=settings.database_pool_size,
    )
    # The session path's lookups share one budget: at most a pool's worth at once.
    lookups = BoundedLookups(
        timeout=settings.session_lookup_timeout,
        slots=database.pool_size,
        background_limit=settings.database_timeout * 2,
    )

    http = make_client(settings.oauth_timeout)
    throttle = SignInThrottle.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        metrics.flush()
        await http.aclose()
        await database.dispose()
        await throttle.aclose()

    metrics = Metrics(group_directory=settings.metrics_dir)
    app = AuthService(
        metrics=metrics,
        title="authsvc",
        version=__version__,
        summary="NextAuth.js v4-compatible sessions as a stand-alone service.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.codec = settings.session_codec()
    tables = tables_for(settings)
    app.state.user_tables = tables
    app.state.users = users or SqlAlchemyUserRepository(database.sessions, tables)
    app.state.hasher = hasher or PasswordHasher()
    app.state.throttle = throttle
    app.state.jwt_callback = DefaultJwtCallback(
        app.state.users,
        timeout=settings.session_lookup_timeout,
        role_max_age=settings.role_max_age,
        lookups=lookups,
    )
    app.state.revocation = (
        RevocationCheck(
            app.state.users,
            ttl=settings.revocation_cache_ttl,
            timeout=settings.session_lookup_timeout,
            lookups=lookups,
        )
        if settings.revocation
        else None
    )
    app.state.session_callback = DefaultSessionCallback()
    app.state.providers = build_providers(settings)
    app.state.http = http
    app.state.check_store = SqlAlchemyCheckStore(database.sessions, tables.used_checks)
    app.state.metrics = metrics
    app.include_router(health.router)
    for router in (auth.router, oauth.router, fallback.router):
        app.include_router(router, prefix=settings.public_url.base_path)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST"],
            # X-Auth-Return-Redirect: how Auth.js v5's client asks for JSON instead of a 302.
            allow_headers=["Content-Type", "Authorization", "X-Auth-Return-Redirect"],
        )
    app.add_middleware(
        ObservabilityMiddleware,
        metrics=app.state.metrics,
        trusted=settings.trusted_proxy_networks,
        prefix=settings.public_url.base_path,
    )
    install_openapi(app, settings)
    install_error_handlers(app)
    verify_path = settings.public_url.base_path + "/verify"
    app.add_hot_route(verify_path, verify.VerifyEndpoint(app, verify_path), with_subpaths=True)
    return app
