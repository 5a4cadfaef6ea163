"""`/healthz` (liveness) and `/readyz` (readiness), including a real database outage."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from authsvc.app import create_app
from authsvc.migrations import upgrade
from tests.conftest import BASE, PG_ADMIN_DSN, StatementCounter, make_settings


async def test_healthz_is_ok_and_not_cached(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert response.headers["cache-control"] == "no-store"


async def test_healthz_touches_no_database(
    client: httpx.AsyncClient, sql_statements: StatementCounter
) -> None:
    await client.get("/healthz")
    assert sql_statements.count == 0


async def test_readyz_is_ready_on_a_migrated_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"settings": "ok", "database": "ok"}}
    assert response.headers["cache-control"] == "no-store"


async def test_readyz_is_503_on_a_database_without_the_schema() -> None:
    app = create_app(make_settings())  # in-memory SQLite, never migrated
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"


async def test_readyz_is_503_within_the_timeout_when_postgresql_is_unreachable() -> None:
    settings = make_settings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none", database_timeout=0.5
    )
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        response = await asyncio.wait_for(http.get("/readyz"), 5)
    assert response.status_code == 503


@pytest.fixture
async def own_database() -> AsyncIterator[tuple[str, str]]:
    """A PostgreSQL database of this test alone, so it can be switched off and on."""
    name = f"authsvc_ready_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    await asyncio.to_thread(upgrade, f"{url}/{name}")
    yield name, f"{url}/{name}"
    await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def set_reachable(name: str, reachable: bool) -> None:
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(reachable).lower()}')
        if not reachable:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
    finally:
        await admin.close()


@pytest.fixture
async def outage_client(
    own_database: tuple[str, str],
) -> AsyncIterator[httpx.AsyncClient]:
    _, url = own_database
    app = create_app(make_settings(database_url=url, database_timeout=1.0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http
    await app.services.database.dispose()


async def test_readyz_follows_a_database_outage_and_recovers_without_restart(
    own_database: tuple[str, str], outage_client: httpx.AsyncClient
) -> None:
    name, _ = own_database
    before = (await outage_client.get("/readyz")).status_code
    await set_reachable(name, False)
    during = (await outage_client.get("/readyz")).status_code
    await set_reachable(name, True)
    after = (await outage_client.get("/readyz")).status_code
    assert (before, during, after) == (200, 503, 200)


async def test_healthz_stays_200_during_a_database_outage(
    own_database: tuple[str, str], outage_client: httpx.AsyncClient
) -> None:
    await outage_client.get("/readyz")  # a pooled connection exists, then dies
    await set_reachable(own_database[0], False)
    assert (await outage_client.get("/healthz")).status_code == 200
