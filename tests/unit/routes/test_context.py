"""Reading request bodies (`routes.context.read_body`): hostile JSON gets a clear 400.

A hostile run found that JSON nested about 1000 deep made `json.loads` raise
RecursionError, which surfaced as `500 {"message":"internal error"}` on every JSON POST
route; depth 500 was already a 400 (a list is not an object). Any depth is now a 400.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from authsvc.app import create_app
from tests.conftest import BASE, make_settings

JSON_POST_ROUTES = [
    "/api/auth/callback/credentials",
    "/api/auth/session",
    "/api/auth/signout",
    "/api/auth/signin/github",
]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(github={"client_id": "id", "client_secret": "secret"})
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http
    await app.services.database.dispose()


def nested_lists(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("path", JSON_POST_ROUTES)
@pytest.mark.parametrize("depth", [1000, 5000, 30_000])
async def test_json_lists_nested_deeply_get_a_clear_400(
    client: httpx.AsyncClient, path: str, depth: int
) -> None:
    response = await client.post(
        path, content=nested_lists(depth), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "message" in response.json()


@pytest.mark.parametrize("path", JSON_POST_ROUTES)
@pytest.mark.parametrize("depth", [100, 1000, 10_000])
async def test_json_objects_nested_deeply_get_a_clear_400(
    client: httpx.AsyncClient, path: str, depth: int
) -> None:
    response = await client.post(
        path, content=nested_objects(depth), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"message": "request body is nested too deeply"}


async def test_a_shallow_json_body_is_still_read(client: httpx.AsyncClient) -> None:
    csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    body = {"csrfToken": csrf, "data": {"a": {"b": [1, 2, {"c": 3}]}}, "json": "true"}
    response = await client.post("/api/auth/session", json=body)
    assert response.status_code == 200
