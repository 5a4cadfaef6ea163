"""Operations endpoints at the root: `/healthz`, `/readyz`, `/metrics`. None needs a cookie.

- `/healthz` is liveness: it answers while the process serves requests, and touches
  nothing else (a database outage must not get healthy replicas restarted). Every
  orchestrator probes it, so it is a plain ASGI handler that the app answers before
  FastAPI's routing and middleware (a hot route: see `app.py`), registered with its
  OpenAPI description (`HEALTHZ_OPENAPI`).
- `/readyz` is readiness: the settings hold and the database answers a query on the
  users table within AUTHSVC_DB_TIMEOUT; 503 otherwise, and 200 again as soon as the
  database is back (no restart: the pool pings and reconnects).
- `/metrics` is the Prometheus exposition. Keep these off the public internet (the proxy
  examples only route `/api/auth/*` to authsvc).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Executable, literal, select
from starlette.types import ASGIApp, Receive, Scope, Send

from authsvc.db import Database
from authsvc.deps import ServicesDep
from authsvc.metrics import Metrics
from authsvc.openapi import HealthBody, ReadyBody, json_doc
from authsvc.settings import ConfigError, Settings
from authsvc.users.tables import UserTables

log = logging.getLogger("authsvc.health")
router = APIRouter(tags=["operations"])


NO_STORE = {"Cache-Control": "no-store"}
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
        "description": "A constant answer while the process serves requests; it touches "
        "nothing else, so a database outage does not get healthy replicas restarted "
        "(readiness is `/readyz`).",
        "operationId": "healthz",
        "responses": {"200": json_doc(HealthBody, "Alive.")},
    }
}


def healthz(metrics: Metrics) -> ASGIApp:
    """The `/healthz` handler: a constant answer that touches nothing else, counted."""

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        await send({"type": "http.response.start", "status": 200, "headers": HEALTHZ_HEADERS})
        await send({"type": "http.response.body", "body": HEALTHZ_BODY})
        metrics.observe(scope["method"], HEALTHZ, 200, time.perf_counter() - started)

    return answer


def _reply(status: int, body: Any) -> Response:
    return JSONResponse(body, status_code=status, headers=NO_STORE)


def ready_query(tables: UserTables) -> Executable:
    """One row of the users table (the storefront's, in Prisma mode)."""
    return select(literal(1)).select_from(tables.users).limit(1)


async def _database_ready(database: Database, tables: UserTables, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            async with database.engine.connect() as conn:
                await conn.execute(ready_query(tables))
    except Exception as exc:
        log.warning("readiness: database unavailable (%s)", type(exc).__name__)
        return False
    return True


def _settings_ready(settings: Settings) -> bool:
    try:
        settings.check()
    except ConfigError:
        return False
    return True


@router.get(
    "/readyz",
    summary="Readiness: settings valid and database reachable",
    description="200 while the settings hold and the database answers a query on the users "
    "table within AUTHSVC_DB_TIMEOUT; 503 otherwise, and 200 again as soon as the database "
    "is back (no restart needed).",
    responses={
        200: {"model": ReadyBody, "description": "Ready to serve."},
        503: {"model": ReadyBody, "description": "Not ready: see `checks`."},
    },
)
async def readyz(services: ServicesDep) -> Response:
    settings = services.settings
    checks = {
        "settings": "ok" if _settings_ready(settings) else "invalid",
        "database": "ok"
        if await _database_ready(services.database, services.user_tables, settings.database_timeout)
        else "unavailable",
    }
    if all(value == "ok" for value in checks.values()):
        return _reply(200, {"status": "ready", "checks": checks})
    return _reply(503, {"status": "unavailable", "checks": checks})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="The Prometheus text exposition: requests and their durations by route, "
    "forward-auth decisions and sign-in outcomes. Keep it off the public internet.",
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(services: ServicesDep) -> Response:
    body, content_type = services.metrics.exposition()
    return Response(body, media_type=content_type, headers=NO_STORE)
