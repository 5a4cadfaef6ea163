"""Response shapes shared by the /api/auth routes (next-auth's Pages-Router handler).

A redirect is a 302 with `Location`, or `{"url": …}` with the internal status when the
request asked for JSON (`json=true`). Cookies the request earned on the way (see
`routes.context`) go on whatever response is sent.

In Auth.js v5 mode the shapes are `@auth/core`'s `Auth()`: JSON mode is asked for with the
`X-Auth-Return-Redirect` header and is always a 200; a failure is a bare redirect (no
cookies) to the sign-in or error page with v5's error type; "no session" is `null`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse, Response

from authsvc import pages
from authsvc.callbacks import run_redirect
from authsvc.routes.context import AuthContext
from authsvc.sign_in.result import THROTTLED_ERROR, UNAVAILABLE_ERROR, SignedIn, SignInFailure

NO_STORE = {"Cache-Control": "private, no-cache, no-store", "Pragma": "no-cache", "Expires": "0"}
JSON = "application/json"
JSON_UTF8 = "application/json; charset=utf-8"


# json.dumps(body, separators=(",", ":"), ensure_ascii=False), without a new encoder a call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dump(body: Any) -> bytes:
    return _ENCODER.encode(body).encode()


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
    return respond(ctx, JsonAnswer(dump(body), status, media_type, headers), cookies)


class JsonAnswer(Response):
    """Starlette's `Response` for an encoded JSON body, its headers in the order and bytes
    Starlette's `init_headers` gives them (the given headers, then content-length and
    content-type), without its general case: a quarter of a signed-out `/session`'s own
    work was building responses (docs/performance.md)."""

    def __init__(
        self, body: bytes, status: int, media_type: str, headers: Mapping[str, str] | None
    ) -> None:
        self.status_code = status
        self.media_type = media_type
        self.background = None
        self.body = body
        raw = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        if media_type.startswith("text/") or any(
            name in (b"content-length", b"content-type") for name, _ in raw
        ):
            self.init_headers(headers)
            return
        if not (status < 200 or status in (204, 304)):
            raw.append((b"content-length", str(len(body)).encode("latin-1")))
        raw.append((b"content-type", media_type.encode("latin-1")))
        self.raw_headers = raw


def redirect(
    ctx: AuthContext, url: str, *, status: int = 200, cookies: list[str] | None = None
) -> Response:
    if ctx.json_mode and ctx.authjs_v5:
        # @auth/core turns the redirect into JSON and keeps its headers, Location included.
        return json_response(ctx, {"url": url}, headers={"Location": url}, cookies=cookies)
    if ctx.json_mode:
        return json_response(
            ctx, {"url": url}, status=status, media_type=JSON_UTF8, cookies=cookies
        )
    return respond(ctx, Response(status_code=302, headers={"Location": url}), cookies)


def no_session(ctx: AuthContext) -> dict[str, Any] | None:
    """The body for "no session": `{}` in next-auth v4, `null` in Auth.js v5."""
    return None if ctx.authjs_v5 else {}


# Auth.js v5 sends a failure to the page of its kind with its client-safe type; every
# other type becomes `Configuration` on the error page. Keyed by authsvc's v4 code.
AUTHJS_ERRORS = {
    "CredentialsSignin": ("signin", "CredentialsSignin"),
    "MissingCSRF": ("signin", "MissingCSRF"),
    "OAuthAccountNotLinked": ("signin", "OAuthAccountNotLinked"),
    "Callback": ("signin", "OAuthCallbackError"),
    "AccessDenied": ("error", "AccessDenied"),
}


def error_redirect(
    ctx: AuthContext,
    code: str,
    *,
    status: int = 200,
    provider: str | None = None,
    cookies: list[str] | None = None,
) -> Response:
    """A failed sign-in: next-auth's `/error?error=<code>` (the status shows in JSON mode),
    or in Auth.js v5 mode `@auth/core`'s bare redirect to the page for the error."""
    if not ctx.authjs_v5:
        query = {"error": code, **({"provider": provider} if provider else {})}
        return redirect(ctx, f"{ctx.base}/error?{urlencode(query)}", status=status, cookies=cookies)
    page, kind = AUTHJS_ERRORS.get(code, ("error", "Configuration"))
    params = {"error": kind, **({"code": "credentials"} if kind == "CredentialsSignin" else {})}
    url = f"{ctx.base}/{page}?{urlencode(params)}"
    if ctx.json_mode:
        return json_response(None, {"url": url}, cookies=cookies)
    return respond(None, Response(status_code=302, headers={"Location": url}), cookies)


def sign_in_refused(
    ctx: AuthContext, answer: bool | str, *, cookies: list[str] | None = None
) -> Response:
    """The signIn callback said no: `AccessDenied` (403), or to the URL it answered with
    (as next-auth does, but through the redirect callback, so never off-site by default)."""
    if isinstance(answer, str):
        target = run_redirect(ctx.services.callbacks.redirect, answer, ctx.origin)
        return redirect(ctx, target, cookies=cookies)
    return error_redirect(ctx, "AccessDenied", status=403, cookies=cookies)


def csrf_failure(ctx: AuthContext, action: str) -> Response:
    """A POST without a verified CSRF token: back to the page with `?csrf=true` (v4), or
    v5's `MissingCSRF` on the sign-in page."""
    if ctx.authjs_v5:
        return error_redirect(ctx, "MissingCSRF")
    return redirect(ctx, f"{ctx.base}/{action}?csrf=true")


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
            # `no-referrer` would make the browser send `Origin: null` on the forms, which
            # the CSRF origin check refuses; `same-origin` keeps URLs from other sites.
            "Referrer-Policy": "same-origin",
        },
    )
    return respond(ctx, response)


# The status next-auth answers a failed sign-in with in JSON mode (200 for the rest;
# AccessDenied is 403, see `sign_in_refused`). `Configuration`: the jwt callback failed
# ("a problem with the server configuration; check the server logs").
_SIGN_IN_STATUS = {
    "CredentialsSignin": 401,
    "Configuration": 500,
    THROTTLED_ERROR: 429,
    UNAVAILABLE_ERROR: 503,
}
# Failures whose error page names the provider (only the credentials flow's).
_NAMES_PROVIDER = frozenset({"CredentialsSignin", THROTTLED_ERROR, UNAVAILABLE_ERROR})


async def finish_sign_in(
    ctx: AuthContext,
    provider: str,
    outcome: SignedIn | SignInFailure,
    *,
    cookies: list[str] | None = None,
) -> Response:
    """A sign-in flow's result as next-auth answers it: the session cookie and a redirect
    to the callback URL, or the failure's page; `cookies` go on either."""
    services = ctx.services
    if isinstance(outcome, SignInFailure):
        services.metrics.signin_outcome(provider, outcome.outcome)
        return _sign_in_failure(ctx, outcome, provider, cookies=cookies)
    session = services.session_store.save(ctx.cookies, outcome.claims, time.time())
    await services.events.emit(outcome.event)
    services.metrics.signin_outcome(provider, "success")
    return redirect(ctx, ctx.callback_url, cookies=[*(cookies or []), *session])


def _sign_in_failure(
    ctx: AuthContext, failure: SignInFailure, provider: str, *, cookies: list[str] | None = None
) -> Response:
    """next-auth's error redirect for the failure's code; no code: back to the sign-in page."""
    if failure.code is None:
        return redirect(ctx, f"{ctx.base}/signin", cookies=cookies)
    if failure.code == "AccessDenied":
        return sign_in_refused(ctx, failure.refusal, cookies=cookies)
    status = _SIGN_IN_STATUS.get(failure.code, 200)
    named = provider if failure.code in _NAMES_PROVIDER else None
    if failure.retry_after is not None:
        return _try_again_later(
            ctx, failure.code, status, named, failure.retry_after, cookies=cookies
        )
    return error_redirect(ctx, failure.code, status=status, provider=named, cookies=cookies)


def _try_again_later(
    ctx: AuthContext,
    code: str,
    status: int,
    provider: str | None,
    retry_after: int,
    *,
    cookies: list[str] | None = None,
) -> Response:
    """429 or 503 with Retry-After: `{"url": …/error?error=<code>}` for next-auth/react (its
    `signIn()` then reports that error and status), an HTML page for a plain form."""
    headers = {**NO_STORE, "Retry-After": str(retry_after)}
    if ctx.json_mode:
        query = urlencode({"error": code, **({"provider": provider} if provider else {})})
        body = {"url": f"{ctx.base}/error?{query}"}
        return json_response(
            ctx, body, status=status, media_type=JSON_UTF8, headers=headers, cookies=cookies
        )
    response = html_response(ctx, pages.error_page(status=status, base=ctx.base), status)
    response.headers.update(headers)
    return respond(None, response, cookies)
