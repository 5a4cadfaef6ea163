"""The HTTP client for talking to OAuth providers, with hard bounds (R25).

Every request has a timeout, redirects are never followed, TLS is verified, and a
response body larger than `max_bytes` is cut off with an error instead of being read
into memory. A provider that is down, slow, huge or talks HTML ends as ProviderError.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

MAX_RESPONSE_BYTES = 256 * 1024
USER_AGENT = "authsvc (+https://github.com/authsvc)"


class ProviderError(Exception):
    """A provider request failed; the message is for logs (never holds a secret or token)."""


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, limit: int) -> None:
        self._stream = stream
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        async for chunk in self._stream:
            received += len(chunk)
            if received > self._limit:
                raise ProviderError(f"response larger than {self._limit} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


class _CappedTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._limit:
            await response.aclose()
            raise ProviderError(f"response larger than {self._limit} bytes")
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        response.stream = _CappedStream(stream, self._limit)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def make_client(
    timeout: float,
    *,
    max_bytes: int = MAX_RESPONSE_BYTES,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    inner = transport or httpx.AsyncHTTPTransport(retries=0)
    return httpx.AsyncClient(
        transport=_CappedTransport(inner, max_bytes),
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
    )


async def get_json(
    client: httpx.AsyncClient, url: str, *, headers: dict[str, str] | None = None
) -> Any:
    """GET a JSON document, or raise ProviderError saying (safely) what went wrong."""
    try:
        response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise ProviderError(f"GET {_where(url)} failed: {type(exc).__name__}") from None
    return decode_json(response)


def decode_json(response: httpx.Response) -> Any:
    where = f"{response.request.method} {_where(str(response.request.url))}"
    if response.status_code != 200:
        raise ProviderError(f"{where} answered {response.status_code}")
    try:
        return json.loads(response.content)
    except ValueError:
        raise ProviderError(f"{where} did not answer JSON") from None


def _where(url: str) -> str:
    """The URL without its query, which may carry tokens."""
    return url.split("?", 1)[0]
