"""The application: `AuthService`, and `create_app`, the one place where the parts are wired.

`AuthService` is the FastAPI application with one change: its ASGI entry point first looks
the path up among the hot routes (an exact path, or the Envoy prefix) and answers those
itself; everything else goes to FastAPI unchanged. The hot routes are `/api/auth/verify`
(every forward-auth check a proxy makes: `routes/forward_auth.py`), `/healthz` (probed by
every orchestrator: `routes/health.py`) and the frontend's `/session`, `/csrf` and
`/providers` (every page load: `routes/frontend.py`). They carry most of a sidecar's
traffic and need nothing FastAPI adds; measured in docs/performance.md, FastAPI's
per-request work (middleware stack, telemetry hooks) alone costs more than the whole
forward-auth check. Each hot route is registered with its OpenAPI description
(`hot_openapi`, merged into the document by `openapi.py`), and each handler catches its own
errors (there is no error middleware around them).

Before any request, the app brings its services up to date with the dependency overrides
in force (`deps.ServiceResolver`: nothing to do when there are none), so the hot routes
and FastAPI's routes see the same parts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from authsvc import __version__
from authsvc.callbacks import Callbacks
from authsvc.deps import ServiceResolver
from authsvc.errors import install_error_handlers
from authsvc.events import Events
from authsvc.metrics import ObservabilityMiddleware
from authsvc.openapi import install_openapi
from authsvc.routes import api_docs, auth, fallback, forward_auth, frontend, health, oauth_sign_in
from authsvc.services import Services, build_services
from authsvc.settings import Settings, load_settings
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import UserRepository


class AuthService(FastAPI):
    """FastAPI, plus hot routes answered before FastAPI's own per-request machinery, and
    the services container every route reads (`services`, as built; `resolver`, with the
    dependency overrides in force)."""

    def __init__(self, *, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.resolver = ServiceResolver(services)
        self.hot_exact: dict[str, ASGIApp] = {}
        self.hot_prefixes: tuple[tuple[str, ASGIApp], ...] = ()
        # OpenAPI path items by path, for the hot routes FastAPI's routes do not describe.
        self.hot_openapi: dict[str, dict[str, Any]] = {}

    def add_hot_route(
        self,
        path: str,
        handler: ASGIApp,
        *,
        with_subpaths: bool = False,
        openapi: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        """Serve `path` (and, `with_subpaths`, everything under it) with `handler`;
        `openapi` describes it, by path, unless a FastAPI route of that path does."""
        self.hot_exact[path] = handler
        if with_subpaths:
            self.hot_prefixes = (*self.hot_prefixes, (path + "/", handler))
        self.hot_openapi.update(openapi or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.dependency_overrides or self.resolver.overridden:
            await self.resolver.sync(self.dependency_overrides)
        if scope["type"] == "http":
            path: str = scope["path"]
            handler = self.hot_exact.get(path)
            if handler is None:
                handler = next((h for p, h in self.hot_prefixes if path.startswith(p)), None)
            if handler is not None:
                await handler(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def through_fastapi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """What FastAPI answers (for a hot route's request that needs FastAPI's machinery)."""
        await super().__call__(scope, receive, send)


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
    for router in (auth.router, oauth_sign_in.router, fallback.router):
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
    app.add_hot_route(
        health.HEALTHZ,
        health.healthz(services.metrics),
        openapi={health.HEALTHZ: health.HEALTHZ_OPENAPI},
    )
    verify_path = settings.public_url.base_path + "/verify"
    app.add_hot_route(
        verify_path,
        forward_auth.ForwardAuthEndpoint(app, app.resolver, verify_path),
        with_subpaths=True,
        openapi={
            verify_path: forward_auth.OPENAPI,
            verify_path + "/{path}": forward_auth.ENVOY_OPENAPI,
        },
    )
    # Described by their FastAPI routes (routes/auth.py), which answer whatever these do not.
    served = frontend.FrontendEndpoint(
        app.resolver, app.through_fastapi, settings.public_url.base_path
    )
    for path in frontend.PATHS:
        app.add_hot_route(settings.public_url.base_path + path, served)
    install_openapi(app, settings, app.hot_openapi)
    return app
