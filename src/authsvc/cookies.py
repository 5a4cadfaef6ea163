"""Cookies as next-auth v4 writes and reads them.

Names and attributes follow next-auth's `defaultCookies`; serialisation follows
`cookie@0.7.2` (attribute order, `encodeURIComponent` values); the session token is
split into `.0 … .n` chunks of 3933 characters like next-auth's `SessionStore`.
`CookiePolicy.authjs` gives Auth.js v5's variant (`authjs.*`, 3936, empties skipped).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

if TYPE_CHECKING:
    from authsvc.settings import Settings

CHUNK_SIZE = 3933  # 4096 minus next-auth's estimated 163 bytes of attributes
AUTHJS_CHUNK_SIZE = 3936  # Auth.js v5 estimates 160 bytes of attributes
MAX_CHUNKS = 8
MAX_COOKIE_HEADER = 32 * 1024
MAX_COOKIES = 200
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CHUNK_SUFFIX = re.compile(r"\.(0|[1-9][0-9]?)")
# encodeURIComponent leaves these unescaped besides letters, digits and `-_.~`.
_URI_COMPONENT_SAFE = "!*'()"


# What encodeURIComponent leaves as it is; a session token (base64url and dots) is all of it.
_URI_COMPONENT_PLAIN = re.compile(r"[A-Za-z0-9\-_.~!*'()]*")
# Values short enough to remember decoded (the CSRF and callback-url cookies a browser sends
# on every request); a session token has no escapes and is not decoded at all.
_MEMO_VALUE_LENGTH = 512


def encode_value(value: str) -> str:
    if _URI_COMPONENT_PLAIN.fullmatch(value):
        return value
    return quote(value, safe=_URI_COMPONENT_SAFE)


def parse_cookie_header(header: str | None) -> dict[str, str]:
    """Parse a raw Cookie header like `cookie@0.7.2`: the first occurrence of a name wins.

    Browsers send the cookie with the most specific path first, and next-auth's parser
    keeps the first one too, so both sides agree on which duplicate counts.
    """
    cookies: dict[str, str] = {}
    if not header or len(header) > MAX_COOKIE_HEADER:
        return cookies
    for part in header.split(";")[:MAX_COOKIES]:
        name, sep, value = part.partition("=")
        if not sep:
            continue
        name = name.strip()
        if not name or name in cookies:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if "%" in value:
            value = _memo_decode(value) if len(value) <= _MEMO_VALUE_LENGTH else _decode(value)
        cookies[name] = value
    return cookies


def _decode(value: str) -> str:
    """`decodeURIComponent`, or the raw value when that would throw (cookie's tryDecode)."""
    decoded = decode_uri_component(value)
    return value if decoded is None else decoded


_memo_decode = lru_cache(maxsize=1024)(_decode)


def decode_uri_component(value: str) -> str | None:
    """JavaScript's `decodeURIComponent`; None where it would throw (bad escape or UTF-8)."""
    if _BAD_ESCAPE.search(value):
        return None
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        return None


def http_date(timestamp: float) -> str:
    """`Date.prototype.toUTCString()`: `Mon, 28 Dec 2026 02:46:35 GMT`."""
    return _http_date(math.floor(timestamp))


@lru_cache(maxsize=8)
def _http_date(seconds: int) -> str:
    # Every cookie re-issued within the same second expires the same second.
    return formatdate(seconds, usegmt=True)


@dataclass(frozen=True, slots=True)
class CookiePolicy:
    """Cookie names and attributes, decided once from NEXTAUTH_URL (never from the request)."""

    secure: bool
    prefix: str = "next-auth"
    # `Domain=` to share cookies across subdomains; never on the CSRF cookie (`__Host-`).
    domain: str | None = None
    chunk_size: int = CHUNK_SIZE
    # Auth.js v5's SessionStore ignores session cookies with an empty value; v4 keeps them.
    skip_empty_chunks: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> CookiePolicy:
        """The policy of a deployment: next-auth's or Auth.js's cookies, Secure as
        NEXTAUTH_URL (or AUTHSVC_USE_SECURE_COOKIES) says, AUTHSVC_COOKIE_DOMAIN."""
        domain = settings.session_cookie_domain
        if settings.authjs_v5:
            return cls.authjs(secure=settings.secure_cookies, domain=domain)
        return cls(secure=settings.secure_cookies, domain=domain)

    @classmethod
    def authjs(cls, *, secure: bool, domain: str | None = None) -> CookiePolicy:
        """Auth.js v5's cookies: `authjs.*` names, 3936-character chunks, empties skipped."""
        return cls(
            secure=secure,
            prefix="authjs",
            domain=domain,
            chunk_size=AUTHJS_CHUNK_SIZE,
            skip_empty_chunks=True,
        )

    def _name(self, suffix: str) -> str:
        return f"{'__Secure-' if self.secure else ''}{self.prefix}.{suffix}"

    @property
    def session_token(self) -> str:
        return self._name("session-token")

    @property
    def csrf_token(self) -> str:
        return f"{'__Host-' if self.secure else ''}{self.prefix}.csrf-token"

    @property
    def callback_url(self) -> str:
        return self._name("callback-url")

    @property
    def state(self) -> str:
        return self._name("state")

    @property
    def pkce_code_verifier(self) -> str:
        return self._name("pkce.code_verifier")

    @property
    def nonce(self) -> str:
        return self._name("nonce")

    def serialize(
        self, name: str, value: str, *, expires: float | None = None, max_age: int | None = None
    ) -> str:
        parts = [f"{name}={encode_value(value)}"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if self.domain and name != self.csrf_token:
            parts.append(f"Domain={self.domain}")
        parts.append("Path=/")
        if expires is not None:
            parts.append(f"Expires={http_date(expires)}")
        parts.append("HttpOnly")
        if self.secure:
            parts.append("Secure")
        parts.append("SameSite=Lax")
        return "; ".join(parts)

    def clear(self, name: str) -> str:
        return self.serialize(name, "", max_age=0)


def read_session_token(
    cookies: Mapping[str, str], name: str, *, skip_empty: bool = False
) -> str | None:
    """The session token, whole or reassembled from its chunks in numeric order.

    Deterministic where next-auth is not: the plain name wins over chunks, and chunks
    must run `.0 … .n-1` without a gap (at most MAX_CHUNKS), or there is no token.
    `skip_empty`: cookies with an empty value do not count (Auth.js v5).
    """
    if skip_empty:
        cookies = {cookie_name: value for cookie_name, value in cookies.items() if value}
    if name in cookies:
        return cookies[name] or None
    chunks: dict[int, str] = {}
    for cookie_name, value in cookies.items():
        if cookie_name.startswith(name):
            match = _CHUNK_SUFFIX.fullmatch(cookie_name[len(name) :])
            if match:
                chunks[int(match.group(1))] = value
    if not chunks or len(chunks) > MAX_CHUNKS or set(chunks) != set(range(len(chunks))):
        return None
    return "".join(chunks[i] for i in range(len(chunks))) or None


def has_session_cookie(cookies: Mapping[str, str], name: str) -> bool:
    return any(cookie_name.startswith(name) for cookie_name in cookies)


def session_cookie_headers(
    policy: CookiePolicy,
    request_cookies: Mapping[str, str],
    token: str | None,
    expires: float | None = None,
) -> list[str]:
    """Set-Cookie values that leave the browser with exactly `token` (or none).

    Every cookie of the request under the session name is cleared unless rewritten, the
    request's names first, then new ones, like next-auth's SessionStore.
    """
    name = policy.session_token
    size = policy.chunk_size
    writes: dict[str, str] = {}
    if token:
        if len(token) <= size:
            writes[name] = token
        else:
            for i in range(0, len(token), size):
                writes[f"{name}.{i // size}"] = token[i : i + size]
    headers: list[str] = []
    for existing, value in request_cookies.items():
        if not existing.startswith(name) or (policy.skip_empty_chunks and not value):
            continue
        if existing in writes:
            headers.append(policy.serialize(existing, writes.pop(existing), expires=expires))
        else:
            headers.append(policy.clear(existing))
    for chunk_name, value in writes.items():
        headers.append(policy.serialize(chunk_name, value, expires=expires))
    return headers
