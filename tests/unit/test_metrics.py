"""Prometheus metrics at `/metrics`: requests, latencies, verify and sign-in outcomes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from authsvc.app import AuthService, create_app
from authsvc.metrics import FLUSH_SECONDS
from authsvc.tokens import TokenCodec
from authsvc.users.models import Role
from tests.conftest import BASE, SECRET, make_settings
from tests.processes import run_authsvc

PASSWORD = "correct-horse-battery"


@pytest.fixture
async def memory_client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http
    await app.services.database.dispose()


async def samples(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_are_served_in_the_prometheus_text_format(
    memory_client: httpx.AsyncClient,
) -> None:
    response = await memory_client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE authsvc_http_requests_total counter" in response.text


async def test_requests_are_counted_by_route_template_not_raw_path(
    memory_client: httpx.AsyncClient,
) -> None:
    await memory_client.get("/api/auth/verify/orders/1")
    await memory_client.get("/api/auth/verify/orders/2")
    found = await samples(memory_client)
    route = "/api/auth/verify/{path:path}"
    assert value(found, "authsvc_http_requests_total", method="GET", route=route, status="401") == 2
    assert not any("/orders/" in dict(labels).get("route", "") for _, labels in found)


async def test_unmatched_paths_share_one_label(memory_client: httpx.AsyncClient) -> None:
    await memory_client.get("/no/such/thing")
    found = await samples(memory_client)
    assert (
        value(found, "authsvc_http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )


async def test_request_latency_is_a_histogram(memory_client: httpx.AsyncClient) -> None:
    await memory_client.get("/healthz")
    found = await samples(memory_client)
    count = value(
        found, "authsvc_http_request_duration_seconds_count", method="GET", route="/healthz"
    )
    assert count == 1


async def test_verify_outcomes_are_counted(memory_client: httpx.AsyncClient) -> None:
    # Minted here, not at import: a slow suite can outlive a 600-second token.
    token = TokenCodec([SECRET]).encode({"sub": "u1", "email": "a@b.co", "role": "ADMIN"}, 600)
    cookie = {"cookie": f"next-auth.session-token={token}"}
    await memory_client.get("/api/auth/verify", headers=cookie)
    await memory_client.get("/api/auth/verify")
    await memory_client.get("/api/auth/verify?allowed_roles=STAFF", headers=cookie)
    await memory_client.get("/api/auth/verify?allowed_roles=nope", headers=cookie)
    found = await samples(memory_client)
    counts = {
        outcome: value(found, "authsvc_verify_outcomes_total", outcome=outcome)
        for outcome in ("allow", "unauthenticated", "forbidden", "bad_request", "error")
    }
    assert counts == {
        "allow": 1,
        "unauthenticated": 1,
        "forbidden": 1,
        "bad_request": 1,
        "error": 0,
    }


async def test_sign_in_outcomes_are_counted(app: AuthService, client: httpx.AsyncClient) -> None:
    await app.services.users.create(
        email="ana@example.com",
        password_hash=await app.services.hasher.hash(PASSWORD),
        role=Role.ADMIN,
    )
    csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    form = {"email": "ana@example.com", "csrfToken": csrf}
    await client.post("/api/auth/callback/credentials", data={**form, "password": PASSWORD})
    await client.post("/api/auth/callback/credentials", data={**form, "password": "wrong-password"})
    await client.post("/api/auth/callback/credentials", data={"email": "x", "password": "y"})
    found = await samples(client)
    counts = {
        outcome: value(
            found, "authsvc_signin_outcomes_total", provider="credentials", outcome=outcome
        )
        for outcome in ("success", "failure", "csrf")
    }
    assert counts == {"success": 1, "failure": 1, "csrf": 1}


async def test_two_apps_in_one_process_keep_separate_counters() -> None:
    first, second = create_app(make_settings()), create_app(make_settings())
    for app in (first, second):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
            await http.get("/healthz")
            found = await samples(http)
        assert (
            value(
                found, "authsvc_http_requests_total", method="GET", route="/healthz", status="200"
            )
            == 1
        )


async def test_latency_buckets_are_cumulative_and_the_sum_is_the_time_spent(
    memory_client: httpx.AsyncClient,
) -> None:
    for _ in range(3):
        await memory_client.get("/healthz")
    found = await samples(memory_client)
    labels = {"method": "GET", "route": "/healthz"}
    name = "authsvc_http_request_duration_seconds"
    assert value(found, f"{name}_bucket", le="+Inf", **labels) == 3
    assert value(found, f"{name}_bucket", le="2.5", **labels) == 3
    assert 0 < value(found, f"{name}_sum", **labels) < 3


# --- `authsvc serve --workers N`: one scrape shows the whole process group -------------------

GROUP_REQUESTS = 120


def _healthz_count(exposition: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith("authsvc_http_requests_total{") and 'route="/healthz"' in line
    )


def _scrape(url: str) -> str:
    return httpx.get(f"{url}/metrics", headers={"connection": "close"}).text


def test_every_scrape_of_a_multi_worker_server_counts_every_workers_requests(
    tmp_path: Path,
) -> None:
    with run_authsvc(tmp_path, public_url="http://localhost:3000", workers=2) as server:
        time.sleep(FLUSH_SECONDS + 0.5)  # the start-up probes are counted and written
        before = _healthz_count(_scrape(server.url))
        for _ in range(GROUP_REQUESTS):  # a new connection each: the workers share them
            httpx.get(f"{server.url}/healthz", headers={"connection": "close"})
        time.sleep(FLUSH_SECONDS + 0.5)
        scrapes = [_scrape(server.url) for _ in range(10)]
    assert {_healthz_count(text) for text in scrapes} == {before + GROUP_REQUESTS}
    assert all("authsvc_metrics_processes 2.0" in text for text in scrapes)


def test_a_single_process_reports_itself_alone(tmp_path: Path) -> None:
    with run_authsvc(tmp_path, public_url="http://localhost:3000") as server:
        before = _healthz_count(_scrape(server.url))
        httpx.get(f"{server.url}/healthz")
        text = _scrape(server.url)
    assert "authsvc_metrics_processes 1.0" in text
    assert _healthz_count(text) == before + 1
