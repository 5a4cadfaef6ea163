"""The session cookie's store: load, save and clear the session, in one type.

In the spirit of next-auth's and oauth2-proxy's `SessionStore`: it finds the session token
a request carries (the session cookie, whole or in chunks, else a Bearer header), decodes
it to claims, writes claims back as cookies (encoded, chunked, the request's stale chunks
cleared) and clears the session cookie with every chunk. It knows no web framework: it
takes a request's parsed cookies and Authorization header as plain values and gives back
Set-Cookie values. `cookies.py` holds the primitives (names, serialisation, chunking) and
this is their only user for the session cookie; what runs between load and save (the
callbacks) is `session.py`'s.

The services container builds one for its cookie policy, codec and session lifetime, so
the hot paths (`/session`, `/verify`) use it without building anything per request.
"""

from __future__ import annotations

from collections.abc import Mapping

from authsvc.cookies import (
    CookiePolicy,
    decode_uri_component,
    has_session_cookie,
    read_session_token,
    session_cookie_headers,
)
from authsvc.tokens import Claims, TokenCodec, is_session_shaped


class SessionStore:
    """The session cookie of one configuration (policy, codec, max age). Immutable."""

    __slots__ = ("codec", "cookie_name", "max_age", "policy", "skip_empty")

    def __init__(self, policy: CookiePolicy, codec: TokenCodec, max_age: int) -> None:
        self.policy = policy
        self.codec = codec
        self.max_age = max_age
        # Looked up on every request: computed once here rather than by the policy each time.
        self.cookie_name = policy.session_token
        # Auth.js v5 ignores session cookies with an empty value; next-auth v4 reads them.
        self.skip_empty = policy.skip_empty_chunks

    def has_cookie(self, cookies: Mapping[str, str]) -> bool:
        """Whether the request carries any cookie under the session name, valid or not."""
        return has_session_cookie(cookies, self.cookie_name)

    def token(self, cookies: Mapping[str, str], authorization: str | None = None) -> str | None:
        """The raw token as next-auth's `getToken` finds it (`/session` passes no header).

        The session cookie (whole or chunked) wins; without one, `Authorization: Bearer
        <token>` where the first space-separated word is exactly `Bearer` and the second is
        percent-decoded. A value that does not decode is no token (GHSA-xmf8-cvqr-rfgj).
        """
        token = read_session_token(cookies, self.cookie_name, skip_empty=self.skip_empty)
        if token is not None or not authorization:
            return token
        words = authorization.split(" ")
        if words[0] != "Bearer" or len(words) < 2:
            return None
        return decode_uri_component(words[1]) or None

    def decode(self, raw: str, now: float | None = None) -> Claims | None:
        """The claims of a valid session token: authentic, unexpired, session-shaped (R6)."""
        claims = self.codec.decode(raw, now)
        if claims is None:
            return None
        # The app's session codec checks the shape itself (and caches only what passed).
        if self.codec.accepts is not is_session_shaped and not is_session_shaped(claims):
            return None
        return claims

    def load(
        self,
        cookies: Mapping[str, str],
        authorization: str | None = None,
        now: float | None = None,
    ) -> Claims | None:
        """The claims of the session the request carries, or None (no token, or not valid)."""
        raw = self.token(cookies, authorization)
        return None if raw is None else self.decode(raw, now)

    def save(self, cookies: Mapping[str, str], claims: Claims, now: float) -> list[str]:
        """Set-Cookie values that (re-)issue the session as `claims`, valid for max age from
        `now`: the request's cookies under the session name first (rewritten, or cleared
        when the new token has fewer chunks), then the new ones, like next-auth."""
        token = self.codec.encode(claims, self.max_age, now=now)
        return session_cookie_headers(self.policy, cookies, token, expires=now + self.max_age)

    def clear(self, cookies: Mapping[str, str]) -> list[str]:
        """Set-Cookie values that delete the session cookie and every chunk the request sent."""
        return session_cookie_headers(self.policy, cookies, None)
