"""Operations endpoints at the root: `/readyz`, `/metrics` (and `/healthz`, in hotpath.py).
None needs a cookie.

- `/healthz` is liveness: it answers while the process serves requests, and touches
  nothing else (a database outage must not get healthy replicas restarted).
- `/readyz` is readiness: the settings hold and the database answers a query on the
  users table within AUTHSVC_DB_TIMEOUT; 503 otherwise, and 200 again as soon as the
  database is back (no restart: the pool pings and reconnects).
- `/metrics` is the Prometheus exposition. Keep these off the public internet (the proxy
  examples only route `/api/auth/*` to authsvc).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Executable, literal, select

from authsvc.db import Database
from authsvc.deps import ServicesDep
from authsvc.openapi import ReadyBody
from authsvc.settings import ConfigError, Settings
from authsvc.users.tables import UserTables

log = logging.getLogger("authsvc.health")
router = APIRouter(tags=["operations"])


NO_STORE = {"Cache-Control": "no-store"}


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
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(services: ServicesDep) -> Response:
    body, content_type = services.metrics.exposition()
    return Response(body, media_type=content_type, headers=NO_STORE)
