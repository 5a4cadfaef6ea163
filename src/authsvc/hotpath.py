"""The hot routes, answered by plain ASGI handlers before FastAPI's routing and middleware.

`/api/auth/verify` (every forward-auth check a proxy makes) and `/healthz` (probed by
every orchestrator) carry most of a sidecar's traffic and need nothing FastAPI adds:
no body, no dependency graph, no validation. Dispatching them here, on an exact path or
the Envoy prefix, skips that per-request work; everything else goes to the FastAPI app
unchanged. Both hot routes are still described in the OpenAPI document (`openapi.py`).
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Receive, Scope, Send

from authsvc.metrics import Metrics

HEALTHZ = "/healthz"
_HEALTHZ_BODY = b'{"status":"ok"}'
_HEALTHZ_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"content-length", str(len(_HEALTHZ_BODY)).encode()),
]


class HotPathMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        exact: dict[str, ASGIApp],
        prefixes: tuple[tuple[str, ASGIApp], ...] = (),
    ) -> None:
        self.app = app
        self.exact = {HEALTHZ: self.healthz, **exact}
        self.prefixes = prefixes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            handler = self.exact.get(path)
            if handler is None:
                handler = next((h for p, h in self.prefixes if path.startswith(p)), None)
            if handler is not None:
                await handler(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Liveness: a constant answer that touches nothing else."""
        started = time.perf_counter()
        await send({"type": "http.response.start", "status": 200, "headers": _HEALTHZ_HEADERS})
        await send({"type": "http.response.body", "body": _HEALTHZ_BODY})
        self.metrics.observe(scope["method"], HEALTHZ, 200, time.perf_counter() - started)
