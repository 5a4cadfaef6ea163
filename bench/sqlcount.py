"""SQL statements per request on the session paths, counted at the database driver.

The real app (`create_app`, SQLite file, migrated) is driven in-process through httpx's
ASGI transport, with a listener on the engine's `before_cursor_execute`. A token that
carries a role must cost no statement at all on `/api/auth/verify` and `GET
/api/auth/session`; a token without one is completed by one lookup, which is counted too
(it shows the counter sees statements when there are some).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

from authsvc.app import create_app
from authsvc.migrations import upgrade
from authsvc.settings import Settings
from authsvc.tokens import TokenCodec
from bench.common import SESSION_COOKIE, STOREFRONT, THIRTY_DAYS

PATHS = ("/api/auth/verify", "/api/auth/session")


async def _count(settings: Settings, token: str, requests: int) -> tuple[int, int, set[int]]:
    app = create_app(settings)
    statements: list[str] = []

    def counter(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = app.services.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", counter)
    statuses: set[int] = set()
    transport = httpx.ASGITransport(app=app)
    cookies = {SESSION_COOKIE: token}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for _ in range(requests):
            for path in PATHS:
                answer = await client.get(path, cookies=cookies)
                statuses.add(answer.status_code)
    event.remove(engine, "before_cursor_execute", counter)
    await app.services.database.dispose()
    return len(statements), requests * len(PATHS), statuses


def measure(directory: Path, secret: str, requests: int) -> dict[str, Any]:
    url = f"sqlite+aiosqlite:///{directory / 'sqlcount.db'}"
    upgrade(url)
    settings = Settings(
        _env_file=None, secret=secret, url="http://127.0.0.1", database_url=url
    ).check()
    codec = TokenCodec([secret])
    with_role = codec.encode(STOREFRONT, THIRTY_DAYS)
    without_role = codec.encode({k: v for k, v in STOREFRONT.items() if k != "role"}, THIRTY_DAYS)
    statements, sent, statuses = asyncio.run(_count(settings, with_role, requests))
    control, control_sent, _ = asyncio.run(_count(settings, without_role, requests))
    return {
        "requests": sent,
        "statuses": sorted(statuses),
        "statements": statements,
        "statements_per_request": statements / sent,
        "control_without_role_statements_per_request": control / control_sent,
    }
