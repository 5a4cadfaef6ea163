"""authsvc's bounded HTTP client for providers (R25), against a real server on loopback.

Body cap (declared Content-Length and chunked), no redirects followed, no retries, a
timeout, and anything but a 200 JSON answer ends as ProviderError whose message never
repeats the query string.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from authsvc.outbound import MAX_RESPONSE_BYTES, ProviderError, get_json, make_client
from tests.hostile_idp import HUGE_BYTES, Fault, HostileIdP, running_idp
from tests.servers import free_port

TIMEOUT = 0.5
# A fault bound, not a performance target: generous for a loaded CI machine.
BOUND = 5.0


@pytest.fixture(scope="module")
def server() -> Iterator[HostileIdP]:
    with running_idp() as idp:
        yield idp


@pytest.fixture
def idp(server: HostileIdP) -> Iterator[HostileIdP]:
    server.reset()
    server.slow_seconds = 5.0
    yield server
    server.reset()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    http = make_client(TIMEOUT)
    yield http
    await http.aclose()


async def test_a_json_answer_is_returned_as_data(
    idp: HostileIdP, client: httpx.AsyncClient
) -> None:
    assert await get_json(client, f"{idp.base}/probe") == {"ok": True}


def test_the_default_cap_is_256_kib() -> None:
    assert MAX_RESPONSE_BYTES == 256 * 1024 < HUGE_BYTES


async def test_a_body_over_the_cap_with_a_content_length_is_refused(
    idp: HostileIdP, client: httpx.AsyncClient
) -> None:
    idp.faults["probe"] = Fault.HUGE
    with pytest.raises(ProviderError, match="larger than 262144 bytes"):
        await get_json(client, f"{idp.base}/probe")


async def test_a_chunked_body_over_the_cap_is_refused(
    idp: HostileIdP, client: httpx.AsyncClient
) -> None:
    idp.faults["probe"] = Fault.HUGE_CHUNKED
    with pytest.raises(ProviderError, match="larger than 262144 bytes"):
        await get_json(client, f"{idp.base}/probe")


async def test_a_declared_huge_length_is_refused_without_waiting_for_the_body(
    idp: HostileIdP, client: httpx.AsyncClient
) -> None:
    idp.faults["probe"] = Fault.HUGE_DECLARED
    # The server stalls after 1 KiB: reading the body would end in a ReadTimeout instead.
    with pytest.raises(ProviderError, match="larger than"):
        await get_json(client, f"{idp.base}/probe")


async def test_a_body_exactly_at_a_small_cap_is_accepted(idp: HostileIdP) -> None:
    size = len(b'{"ok":true}')
    async with make_client(TIMEOUT, max_bytes=size) as http:
        assert await get_json(http, f"{idp.base}/probe") == {"ok": True}


async def test_a_body_one_byte_over_a_small_cap_is_refused(idp: HostileIdP) -> None:
    size = len(b'{"ok":true}')
    async with make_client(TIMEOUT, max_bytes=size - 1) as http:
        with pytest.raises(ProviderError, match="larger than"):
            await get_json(http, f"{idp.base}/probe")


async def test_redirects_are_not_followed(idp: HostileIdP, client: httpx.AsyncClient) -> None:
    idp.faults["probe"] = Fault.REDIRECT
    with pytest.raises(ProviderError, match="answered 302"):
        await get_json(client, f"{idp.base}/probe")
    assert idp.count("redirected") == 0


async def test_a_slow_answer_times_out(idp: HostileIdP, client: httpx.AsyncClient) -> None:
    idp.faults["probe"] = Fault.SLOW
    started = time.monotonic()
    with pytest.raises(ProviderError, match="ReadTimeout"):
        await get_json(client, f"{idp.base}/probe")
    assert time.monotonic() - started < BOUND


async def test_an_unreachable_provider_is_a_provider_error(client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderError, match="ConnectError"):
        await get_json(client, f"http://127.0.0.1:{free_port()}/jwks")


async def test_a_failed_request_is_not_retried(idp: HostileIdP, client: httpx.AsyncClient) -> None:
    idp.faults["probe"] = Fault.STATUS_500
    with pytest.raises(ProviderError, match="answered 500"):
        await get_json(client, f"{idp.base}/probe")
    assert idp.count("probe") == 1


async def test_an_html_page_is_a_provider_error(idp: HostileIdP, client: httpx.AsyncClient) -> None:
    idp.faults["probe"] = Fault.HTML
    with pytest.raises(ProviderError, match="did not answer JSON"):
        await get_json(client, f"{idp.base}/probe")


async def test_invalid_json_is_a_provider_error(idp: HostileIdP, client: httpx.AsyncClient) -> None:
    idp.faults["probe"] = Fault.INVALID_JSON
    with pytest.raises(ProviderError, match="did not answer JSON"):
        await get_json(client, f"{idp.base}/probe")


async def test_json_with_an_error_status_is_a_provider_error(
    idp: HostileIdP, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderError, match="answered 404"):
        await get_json(client, f"{idp.base}/no-such-endpoint")


async def test_error_messages_leave_out_the_query_string(
    idp: HostileIdP, client: httpx.AsyncClient
) -> None:
    idp.faults["probe"] = Fault.STATUS_500
    with pytest.raises(ProviderError) as raised:
        await get_json(client, f"{idp.base}/probe?access_token=sekrit-token-value")
    assert "sekrit" not in str(raised.value)
    assert str(raised.value) == f"GET {idp.base}/probe answered 500"


async def test_requests_identify_authsvc_and_ask_for_json(
    idp: HostileIdP, client: httpx.AsyncClient
) -> None:
    await get_json(client, f"{idp.base}/probe")
    headers = idp.seen("probe")[0].headers
    assert headers["user-agent"].startswith("authsvc")
    assert headers["accept"] == "application/json"
