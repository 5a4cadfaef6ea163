"""The frontend's routes on the hot path: `GET/POST /session`, `GET /csrf`, `GET /providers`.

Every page a browser loads calls `GET /session` (next-auth's `useSession()`, on load, on
focus and on its refetch interval), and `signIn`/`signOut` fetch `/csrf` and `/providers`
first. FastAPI's per-request machinery (its middleware stack, routing, the dependency
graph) cost several times what these routes do (docs/performance.md), so the app hands
them here first, like `/verify` (hot routes: see `app.py`). This endpoint runs the very
same handlers as the FastAPI routes (`routes.auth`), on a context built by the same
function (`routes.context.context_from`), and does what the middleware would do: the
metrics and access-log line (`ObservabilityMiddleware`), a clear 4xx for an unreadable
body and a bare 500 for anything unexpected (`errors.py`). The answers are therefore the
FastAPI routes' own, byte for byte; tests/unit/routes/test_frontend.py compares them.

FastAPI still answers whenever its machinery could change the outcome: a dependency
override that is not one of the container's parts resolved once (`deps.ServiceResolver`
works that out when the overrides change), a request CORS must see (an `Origin` header while
AUTHSVC_CORS_ORIGINS is set), or a method these routes do not serve (405, HEAD, OPTIONS).
The OpenAPI document describes the FastAPI routes, which stay in place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi.responses import Response
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from authsvc.deps import ServiceResolver
from authsvc.errors import bad_request_response, unhandled_response
from authsvc.metrics import access_log, log_access
from authsvc.routes import auth
from authsvc.routes.context import (
    BadRequestError,
    RequestFacts,
    context_from,
    parse_body,
    read_raw_body,
)
from authsvc.services import Services

Handler = Callable[[Scope, Receive, Services], Awaitable[Response]]


async def _get_session(scope: Scope, receive: Receive, services: Services) -> Response:
    return await auth.get_session(context_from(await _facts(scope, receive), services))


async def _update_session(scope: Scope, receive: Receive, services: Services) -> Response:
    return await auth.update_session(context_from(await _facts(scope, receive), services))


async def _csrf(scope: Scope, receive: Receive, services: Services) -> Response:
    return await auth.csrf(context_from(await _facts(scope, receive), services))


async def _providers(scope: Scope, receive: Receive, services: Services) -> Response:
    return await auth.providers(services)


# The routes served here, by path under the base path and method (as routes.auth has them).
HANDLERS: dict[tuple[str, str], Handler] = {
    ("/session", "GET"): _get_session,
    ("/session", "POST"): _update_session,
    ("/csrf", "GET"): _csrf,
    ("/providers", "GET"): _providers,
}
PATHS = frozenset(path for path, _ in HANDLERS)


class FrontendEndpoint:
    def __init__(self, resolver: ServiceResolver, through_fastapi: ASGIApp, base_path: str) -> None:
        self.resolver = resolver
        self.through_fastapi = through_fastapi
        services = resolver.base
        self.metrics = services.metrics
        self.trusted = services.settings.trusted_proxy_networks
        self.cors = bool(services.settings.cors_origins)
        self.handlers = {
            (base_path + path, method): handler for (path, method), handler in HANDLERS.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        handler = self.handlers.get((path, method))
        services = self.resolver.direct
        if handler is None or services is None or (self.cors and _has_header(scope, b"origin")):
            await self.through_fastapi(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        try:
            try:
                response = await handler(scope, receive, services)
            except BadRequestError as exc:
                response = bad_request_response(exc)
            except Exception as exc:
                response = unhandled_response(exc, method, path)
            status = response.status_code
            await response(scope, receive, send)
        finally:
            elapsed = time.perf_counter() - started
            # The route template is the path itself: these routes have no parameters.
            self.metrics.observe(method, path, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                log_access(scope, method, status, elapsed, self.trusted)


def _has_header(scope: Scope, name: bytes) -> bool:
    return any(key == name for key, _ in scope["headers"])


async def _facts(scope: Scope, receive: Receive) -> RequestFacts:
    """What `routes.context.build_context` reads of a Starlette request, from the scope."""
    cookie = origin = sec_fetch_site = content_length = content_type = None
    return_redirect = False
    for name, value in scope["headers"]:
        # Starlette's `Headers.get` answers the first header of a name.
        if name == b"cookie":
            if cookie is None:
                cookie = value.decode("latin-1")
        elif name == b"origin":
            if origin is None:
                origin = value.decode("latin-1")
        elif name == b"sec-fetch-site":
            if sec_fetch_site is None:
                sec_fetch_site = value.decode("latin-1")
        elif name == b"x-auth-return-redirect":
            return_redirect = True
        elif name == b"content-length":
            if content_length is None:
                content_length = value.decode("latin-1")
        elif name == b"content-type" and content_type is None:
            content_type = value.decode("latin-1")
    query_string: bytes = scope["query_string"]
    method: str = scope["method"]
    body = {}
    if method == "POST":
        raw = await read_raw_body(content_length, _chunks(receive))
        body = parse_body(raw, content_type or "")
    return RequestFacts(
        method=method,
        cookie=cookie,
        origin=origin,
        sec_fetch_site=sec_fetch_site,
        return_redirect=return_redirect,
        query_callback_url=QueryParams(query_string).get("callbackUrl") if query_string else None,
        body=body,
    )


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body's chunks as Starlette's `Request.stream()` gives them."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
