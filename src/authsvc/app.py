"""`create_app`: the one place where the parts are wired together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from authsvc import __version__
from authsvc.callbacks import Callbacks
from authsvc.errors import install_error_handlers
from authsvc.events import Events
from authsvc.hotpath import AuthService
from authsvc.metrics import ObservabilityMiddleware
from authsvc.openapi import install_openapi
from authsvc.routes import api_docs, auth, fallback, frontend, health, oauth, verify
from authsvc.services import build_services
from authsvc.settings import Settings, load_settings
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import UserRepository


def create_app(
    settings: Settings | None = None,
    *,
    callbacks: Callbacks | None = None,
    events: Events | None = None,
    users: UserRepository | None = None,
    hasher: PasswordHasher | None = None,
    http: httpx.AsyncClient | None = None,
) -> AuthService:
    """Build the service. Settings come from the environment unless given.

    `callbacks` and `events` are next-auth's options of those names (see
    `authsvc.callbacks`, `authsvc.events`); `users` replaces the user store, `hasher` the
    password hasher and `http` the client used to talk to OAuth providers. Whatever is
    given here is what every route, the hot path and the CLI use (`app.services`).
    """
    settings = (settings or load_settings()).check()
    services = build_services(
        settings, callbacks=callbacks, events=events, users=users, hasher=hasher, http=http
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await services.aclose()

    app = AuthService(
        services=services,
        title="authsvc",
        version=__version__,
        summary="NextAuth.js v4-compatible sessions as a stand-alone service.",
        lifespan=lifespan,
        # /docs is authsvc's own (routes/api_docs.py): no CDN, a strict CSP, no ReDoc.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.include_router(health.router)
    app.include_router(api_docs.router)
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
        metrics=services.metrics,
        trusted=settings.trusted_proxy_networks,
        prefix=settings.public_url.base_path,
    )
    install_error_handlers(app)
    verify_path = settings.public_url.base_path + "/verify"
    app.add_hot_route(
        verify_path,
        verify.VerifyEndpoint(app, verify_path),
        with_subpaths=True,
        openapi={verify_path: verify.OPENAPI, verify_path + "/{path}": verify.ENVOY_OPENAPI},
    )
    # Described by their FastAPI routes (routes/auth.py), which answer whatever these do not.
    served = frontend.FrontendEndpoint(app, settings.public_url.base_path)
    for path in frontend.PATHS:
        app.add_hot_route(settings.public_url.base_path + path, served)
    install_openapi(app, settings, app.hot_openapi)
    return app
