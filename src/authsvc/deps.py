"""FastAPI dependencies: how routes reach the services, and where applications plug in.

Every route takes one dependency, `ServicesDep`: the app's services container with the
dependency overrides in force applied. The getters below are the override points, one per
part: overriding one (`app.dependency_overrides[get_user_repository] = …`) replaces that
part everywhere it is used, the default callbacks, revocation and the hot path included.
An override may have any FastAPI signature (`Request`, sub-dependencies, `def` or `async
def`, `yield`).

`ServiceResolver` is where overrides are resolved, once for every kind of route:
- an override that takes no parameters is called once, when authsvc first sees it, and its
  value is part of the container from then on (as if given to `create_app`);
- any other override needs the request, so FastAPI resolves it on each request: the
  resolver installs an override of `get_services` that depends on the overridden getters,
  and FastAPI's own dependency resolution does the rest, on the FastAPI routes and on the
  hot path alike (see `routes/forward_auth.py`).
Without overrides (the usual production case) a route gets the container as it is.

Getters read the container as the app built it (`request.app.services`), never the
resolved one, so an override can itself depend on another getter without a cycle.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request

from authsvc.callbacks import JwtCallback, SessionCallback, SignInCallback
from authsvc.events import Events
from authsvc.metrics import Metrics
from authsvc.providers.oauth import OAuthProvider
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


def only_parts_overridden(overrides: Mapping[Any, Any]) -> bool:
    """Whether every override in force stands for a part of the container (nothing else a
    route depends on, such as `get_services` itself or a route's own dependency)."""
    return all(getter in _PARTS for getter in overrides)


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
        self._seen = self._fingerprint({})

    @property
    def overridden(self) -> bool:
        """Whether some override is in force (else the container is used as it is)."""
        return self.services is not self.base

    async def sync(self, overrides: dict[Any, Any]) -> None:
        """Bring the plan up to date with the overrides (a tuple compare when unchanged)."""
        seen = self._fingerprint(overrides)
        if seen == self._seen:
            return
        own = overrides.get(get_services)
        if own is not None and not getattr(own, "authsvc_resolver", False):
            # The application replaced the whole container itself.
            self.services = None
            self._seen = seen
            return
        services = self.base
        per_request: list[Callable[..., Any]] = []
        for getter in _PARTS:
            override = overrides.get(getter)
            if override is None:
                continue
            if _resolvable_once(override):
                value = override()
                if inspect.isawaitable(value):
                    value = await value
                services = with_part(services, getter, value)
            else:
                per_request.append(getter)
        if per_request:
            overrides[get_services] = _resolving(services, per_request)
            self.services = None
        else:
            overrides.pop(get_services, None)
            self.services = services
        self._seen = self._fingerprint(overrides)

    @staticmethod
    def _fingerprint(overrides: Mapping[Any, Any]) -> tuple[object, ...]:
        return (*(overrides.get(getter) for getter in _PARTS), overrides.get(get_services))


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
