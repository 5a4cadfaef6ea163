"""The hot routes, answered by plain ASGI handlers before anything FastAPI does.

`/api/auth/verify` (every forward-auth check a proxy makes) and `/healthz` (probed by
every orchestrator) carry most of a sidecar's traffic and need nothing FastAPI adds:
no body, no dependency graph, no validation, no middleware. The frontend's routes
(`/session`, `/csrf`, `/providers`: every page load) are served here too, by the same
handlers FastAPI's routes run (`routes/frontend.py`), falling back to FastAPI whenever its
machinery could change the answer. `AuthService` is the FastAPI
application with one change: its ASGI entry point first looks the path up among the hot
routes (an exact path, or the Envoy prefix) and answers those itself; everything else
goes to FastAPI unchanged. Measured in docs/performance.md: FastAPI's per-request work
(middleware stack, telemetry hooks) alone costs more than the whole forward-auth check.
Each hot route is registered with its OpenAPI description (`hot_openapi`, merged into the
document by `openapi.py`), and each handler catches its own errors (there is no error
middleware around them).

Before any request, the app brings its services up to date with the dependency overrides
in force (`deps.ServiceResolver`: nothing to do when there are none), so the hot routes
and FastAPI's routes see the same parts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from authsvc.deps import ServiceResolver
from authsvc.openapi import HealthBody, json_doc
from authsvc.services import Services

HEALTHZ = "/healthz"
HEALTHZ_BODY = b'{"status":"ok"}'
HEALTHZ_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"content-length", str(len(HEALTHZ_BODY)).encode()),
]
HEALTHZ_OPENAPI = {
    "get": {
        "tags": ["operations"],
        "summary": "Liveness: the process answers (no dependency is checked)",
        "operationId": "healthz",
        "responses": {"200": json_doc(HealthBody, "Alive.")},
    }
}


class AuthService(FastAPI):
    """FastAPI, plus hot routes answered before FastAPI's own per-request machinery, and
    the services container every route reads (`services`, as built; `resolver`, with the
    dependency overrides in force)."""

    def __init__(self, *, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.resolver = ServiceResolver(services)
        self.hot_metrics = services.metrics
        self.hot_exact: dict[str, ASGIApp] = {HEALTHZ: self.healthz}
        self.hot_prefixes: tuple[tuple[str, ASGIApp], ...] = ()
        # OpenAPI path items by path, for the hot routes FastAPI's routes do not describe.
        self.hot_openapi: dict[str, dict[str, Any]] = {HEALTHZ: HEALTHZ_OPENAPI}

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

    async def healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Liveness: a constant answer that touches nothing else."""
        started = time.perf_counter()
        await send({"type": "http.response.start", "status": 200, "headers": HEALTHZ_HEADERS})
        await send({"type": "http.response.body", "body": HEALTHZ_BODY})
        self.hot_metrics.observe(scope["method"], HEALTHZ, 200, time.perf_counter() - started)
