"""FastAPI dependencies: how routes reach the services, and where applications plug in.

Every route takes one dependency, `ServicesDep`: the app's services container with the
dependency overrides in force applied. The getters below are the override points, one per
part: overriding one (`app.dependency_overrides[get_user_repository] = …`) replaces that
part everywhere it is used, the default callbacks, revocation and the hot path included.
An override may have any FastAPI signature (`Request`, sub-dependencies, `def` or `async
def`, `yield`).

`ServiceResolver` is where overrides are resolved, the one place for every kind of route,
FastAPI's and the hot routes the app answers before FastAPI (`app.py`):
- an override that takes no parameters is called once, when authsvc first sees it, and its
  value is part of the container from then on (as if given to `create_app`);
- any other override needs the request, so FastAPI resolves it on each request: the
  resolver installs an override of `get_services` that depends on the overridden getters,
  and FastAPI's own dependency resolution does the rest, on the FastAPI routes and, through
  `resolved_by_fastapi`, on a hot route alike (`routes/forward_auth.py`).
The hot routes read what the resolver worked out when the overrides last changed
(`services`, `direct`): without overrides (the usual production case) that is the
container as it is, and a request costs nothing more.

Getters read the container as the app built it (`request.app.services`), never the
resolved one, so an override can itself depend on another getter without a cycle.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from authsvc.callbacks import JwtCallback, SessionCallback, SignInCallback
from authsvc.events import Events
from authsvc.metrics import Metrics
from authsvc.providers.oauth_client import OAuthProvider
from authsvc.redirects import RedirectCallback
from authsvc.revocation import RevocationCheck
from authsvc.services import Services
from authsvc.settings import Settings
from authsvc.throttle import SignInThrottle
from authsvc.tokens import TokenCodec
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import CheckStore, UserRepository


def _built(request: Request) -> Services:
    services: Services = request.app.services
    return services


async def get_settings(request: Request) -> Settings:
    return _built(request).settings


async def get_codec(request: Request) -> TokenCodec:
    return _built(request).codec


async def get_user_repository(request: Request) -> UserRepository:
    return _built(request).users


async def get_password_hasher(request: Request) -> PasswordHasher:
    return _built(request).hasher


async def get_check_store(request: Request) -> CheckStore:
    return _built(request).checks


async def get_throttle(request: Request) -> SignInThrottle:
    return _built(request).throttle


async def get_providers(request: Request) -> Mapping[str, OAuthProvider]:
    return _built(request).providers


async def get_metrics(request: Request) -> Metrics:
    return _built(request).metrics


async def get_revocation(request: Request) -> RevocationCheck | None:
    return _built(request).revocation


async def get_jwt_callback(request: Request) -> JwtCallback:
    return _built(request).callbacks.jwt


async def get_session_callback(request: Request) -> SessionCallback:
    return _built(request).callbacks.session


async def get_sign_in_callback(request: Request) -> SignInCallback:
    return _built(request).callbacks.sign_in


async def get_redirect_callback(request: Request) -> RedirectCallback:
    return _built(request).callbacks.redirect


async def get_events(request: Request) -> Events:
    return _built(request).events


# Each override point and the part of the container it stands for.
_PARTS: dict[Callable[..., Awaitable[Any]], str] = {
    get_settings: "settings",
    get_codec: "codec",
    get_user_repository: "users",
    get_password_hasher: "hasher",
    get_check_store: "checks",
    get_throttle: "throttle",
    get_providers: "providers",
    get_metrics: "metrics",
    get_revocation: "revocation",
    get_jwt_callback: "callbacks.jwt",
    get_session_callback: "callbacks.session",
    get_sign_in_callback: "callbacks.sign_in",
    get_redirect_callback: "callbacks.redirect",
    get_events: "events",
}


def with_part(services: Services, getter: Callable[..., Any], value: Any) -> Services:
    """`services` with the part that `getter` stands for replaced by `value`."""
    path = _PARTS[getter]
    if path.startswith("callbacks."):
        callbacks = dataclasses.replace(services.callbacks, **{path.split(".")[1]: value})
        return dataclasses.replace(services, callbacks=callbacks)
    return dataclasses.replace(services, **{path: value})


async def get_services(request: Request) -> Services:
    """The container with the overrides in force (FastAPI's cache makes it once a request)."""
    resolver: ServiceResolver = request.app.resolver
    return resolver.services or resolver.base


ServicesDep = Annotated[Services, Depends(get_services)]


class ServiceResolver:
    """Applies `app.dependency_overrides` to the container; see the module docstring."""

    def __init__(self, services: Services) -> None:
        self.base = services
        # The container with the overrides applied, or None while some override needs the
        # request (FastAPI resolves `get_services` per request then).
        self.services: Services | None = services
        # `services` while every override in force stands for a part of the container, else
        # None: something else a route depends on (its own dependency, `get_services`
        # itself) is overridden, so only FastAPI can answer a route that depends on more.
        self.direct: Services | None = services
        # Whether some override is in force (else the container is used as it is).
        self.overridden = False
        self._seen: tuple[tuple[Any, Any], ...] = ()
        # Each override resolved once, with its value: called again only when replaced.
        self._once: dict[Callable[..., Any], tuple[object, object]] = {}

    async def sync(self, overrides: dict[Any, Any]) -> None:
        """Bring the plan up to date with the overrides (a tuple compare when unchanged)."""
        if tuple(overrides.items()) == self._seen:
            return
        own = overrides.get(get_services)
        if own is not None and getattr(own, "authsvc_resolver", False):
            del overrides[get_services]  # this resolver's, for the overrides as they were
            own = None
        self.overridden = bool(overrides)
        if own is not None:
            # The application replaced the whole container itself.
            self.services = self.direct = None
        else:
            self.services = await self._plan(overrides)
            self.direct = self.services if all(key in _PARTS for key in overrides) else None
        self._seen = tuple(overrides.items())

    async def _plan(self, overrides: dict[Any, Any]) -> Services | None:
        services = self.base
        per_request: list[Callable[..., Any]] = []
        once: dict[Callable[..., Any], tuple[object, object]] = {}
        for getter in _PARTS:
            override = overrides.get(getter)
            if override is None:
                continue
            if not _resolvable_once(override):
                per_request.append(getter)
                continue
            known = self._once.get(getter)
            if known is not None and known[0] is override:
                value = known[1]
            else:
                value = override()
                if inspect.isawaitable(value):
                    value = await value
            once[getter] = (override, value)
            services = with_part(services, getter, value)
        self._once = once
        if per_request:
            overrides[get_services] = _resolving(services, per_request)
            return None
        return services


def resolved_by_fastapi(
    app: FastAPI, path: str, endpoint: Callable[[Request, Services], Awaitable[Response]]
) -> ASGIApp:
    """`endpoint` as an ASGI app that gets the services FastAPI resolves for the request, as
    a FastAPI route at `path` would (overrides, sub-dependencies, `yield` clean-up, inside
    the exit stack FastAPI's own middleware provides) without FastAPI's routing or other
    middleware: how a hot route is answered while some override needs the request."""

    async def route_endpoint(request: Request, services: ServicesDep) -> Response:
        return await endpoint(request, services)

    route = APIRoute(
        path, route_endpoint, dependency_overrides_provider=app, include_in_schema=False
    )
    resolving = AsyncExitStackMiddleware(route.app)

    async def resolved(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = app  # what `request.app` is for an override
        await resolving(scope, receive, send)

    return resolved


def _resolvable_once(override: Callable[..., Any]) -> bool:
    """A plain function or class that takes nothing: its value does not depend on the request."""
    if inspect.isgeneratorfunction(override) or inspect.isasyncgenfunction(override):
        return False
    try:
        parameters = inspect.signature(override).parameters
    except (TypeError, ValueError):
        return False
    return not parameters


def _resolving(
    services: Services, getters: list[Callable[..., Any]]
) -> Callable[..., Awaitable[Services]]:
    """An override of `get_services` whose parameters are the getters FastAPI must resolve."""

    async def resolved(**values: Any) -> Services:
        result = services
        for getter in getters:
            result = with_part(result, getter, values[getter.__name__])
        return result

    resolved.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(
                getter.__name__,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[Any, Depends(getter)],
            )
            for getter in getters
        ]
    )
    resolved.authsvc_resolver = True  # type: ignore[attr-defined]
    return resolved
