"""Limits the HTTP server enforces before a request reaches the app.

uvicorn's default parser (httptools) accepts a request head of any size: measured with
uvicorn 0.54, a 1 MiB `Cookie` header is read, buffered and handed to the app. The app
then bounds its own reading (a POST body over 64 KiB is a 413 at once, before it is read;
see `routes.context`), but the head is already in memory by then.

`LimitedHttpToolsProtocol` is uvicorn's httptools protocol that counts the bytes of the
request line and headers as they arrive and answers 431 and closes the connection once
they pass the limit. The limit is uvicorn's own `h11_max_incomplete_event_size`, which
bounds the head in uvicorn's other parser (h11) the same way, so one setting
(AUTHSVC_MAX_HEADER_BYTES) holds whichever parser runs.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_HEAD_BYTES = 32 * 1024
_431 = b"Request header fields too large"


class HeadTooLargeError(Exception):
    """Raised inside a parser callback; httptools stops parsing the connection."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_HEAD_BYTES
        self._in_head = True
        self._head_bytes = 0  # request line and headers the parser has handed over
        self._head_received = 0  # bytes received while the head was still incomplete
        self._head_too_large = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._head_received = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_head_bytes:
            self._head_too_large = True
            raise HeadTooLargeError

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # The parser hands over a header only once it is complete and keeps a partial one
        # to itself; this bounds that buffer (one header line sent slowly, or endlessly).
        if self._in_head and not self._head_too_large and not self.transport.is_closing():
            self._head_received += len(data)
            if self._head_received > self.max_head_bytes:
                self._head_too_large = True
                self.send_400_response("")

    def send_400_response(self, msg: str) -> None:
        if not self._head_too_large:
            super().send_400_response(msg)
            return
        content = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: " + str(len(_431)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                _431,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
