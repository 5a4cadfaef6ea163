"""The callbackUrl rule: next-auth's default `redirect` callback, made strict.

next-auth keeps a target that starts with `/` (prefixing the origin) or whose origin is
the base origin, and sends everything else to the base. authsvc does the same and also
refuses control characters, backslashes and userinfo, and never raises: a value no URL
parser accepts is just "somewhere else", so it ends at the base URL.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Protocol
from urllib.parse import quote, urlsplit

MAX_URL_LENGTH = 2048
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")
# Characters kept as they are in a Location header; everything else is percent-encoded.
_LOCATION_SAFE = "!#$%&'()*+,-./:;=?@[]_~"


class RedirectCallback(Protocol):
    """`redirect({url, baseUrl})` from next-auth: return where to send the user."""

    def __call__(self, url: str, base_url: str) -> str: ...


@lru_cache(maxsize=1024)  # pure; the same few URLs come back in every callback-url cookie
def origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    suffix = "" if port in (None, default_port) else f":{port}"
    return f"{parts.scheme}://{host}{suffix}"


def default_redirect(url: str, base_url: str) -> str:
    if not url or len(url) > MAX_URL_LENGTH:
        return base_url
    return _judged(url, base_url)


# Pure, and a browser's callback-url cookie comes back with every request; the length cap
# above bounds the memo (at most 1,024 x 2,048 characters).
@lru_cache(maxsize=1024)
def _judged(url: str, base_url: str) -> str:
    if _UNSAFE.search(url):
        return base_url
    if url.startswith("/"):
        return _bounded(quote(base_url + url, safe=_LOCATION_SAFE), base_url)
    # Both the raw text and the parsed origin must agree, so no parser differential helps.
    rest = url[len(base_url) :] if url.startswith(base_url) else None
    if rest is not None and rest[:1] in ("", "/", "?", "#") and origin_of(url) == base_url:
        return _bounded(quote(url, safe=_LOCATION_SAFE), base_url)
    return base_url


def _bounded(location: str, base_url: str) -> str:
    """The length cap holds for what is sent too, so the rule accepts its own output when
    it comes back in the callback-url cookie (encoding is idempotent: `%` stays as is)."""
    return location if len(location) <= MAX_URL_LENGTH else base_url
