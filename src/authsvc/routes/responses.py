"""Response shapes shared by the /api/auth routes (next-auth's Pages-Router handler).

A redirect is a 302 with `Location`, or `{"url": …}` with the internal status when the
request asked for JSON (`json=true`). Cookies the request earned on the way (see
`routes.context`) go on whatever response is sent.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.responses import HTMLResponse, Response

from authsvc import pages
from authsvc.cookies import session_cookie_headers
from authsvc.routes.context import AuthContext
from authsvc.tokens import Claims, TokenCodec

NO_STORE = {"Cache-Control": "private, no-cache, no-store", "Pragma": "no-cache", "Expires": "0"}
JSON = "application/json"
JSON_UTF8 = "application/json; charset=utf-8"


def dump(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def respond(
    ctx: AuthContext | None,
    response: Response,
    extra_cookies: list[str] | None = None,
) -> Response:
    for cookie in [*(ctx.pending_cookies if ctx else []), *(extra_cookies or [])]:
        response.headers.append("set-cookie", cookie)
    return response


def json_response(
    ctx: AuthContext | None,
    body: Any,
    *,
    status: int = 200,
    media_type: str = JSON,
    headers: dict[str, str] | None = None,
    cookies: list[str] | None = None,
) -> Response:
    response = Response(dump(body), status_code=status, media_type=media_type, headers=headers)
    return respond(ctx, response, cookies)


def redirect(
    ctx: AuthContext, url: str, *, status: int = 200, cookies: list[str] | None = None
) -> Response:
    if ctx.json_mode:
        return json_response(
            ctx, {"url": url}, status=status, media_type=JSON_UTF8, cookies=cookies
        )
    return respond(ctx, Response(status_code=302, headers={"Location": url}), cookies)


def unsupported(method: str) -> Response:
    return Response(
        f"Error: This action with HTTP {method} is not supported by NextAuth.js",
        status_code=400,
        media_type="text/plain",
    )


def html_response(ctx: AuthContext, html: str, status: int = 200) -> Response:
    response = HTMLResponse(
        html,
        status_code=status,
        headers={
            "Content-Security-Policy": pages.CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
        },
    )
    return respond(ctx, response)


def new_session_cookies(ctx: AuthContext, codec: TokenCodec, claims: Claims) -> list[str]:
    """Set-Cookies for a fresh session holding `claims` (stale chunks cleared)."""
    now = time.time()
    max_age = ctx.settings.session_max_age
    token = codec.encode(claims, max_age, now=now)
    return session_cookie_headers(ctx.policy, ctx.cookies, token, expires=now + max_age)
