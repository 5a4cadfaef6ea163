"""The `/api/auth/*` routes, with next-auth v4's statuses, bodies, headers and cookies.

Handlers parse the request (see `routes.context`), call functions that know nothing of
HTTP, and shape the response. Responses follow next-auth's Pages-Router handler: a
redirect is a 302, or `{"url": …}` with the internal status when the body has
`json=true`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from authsvc import pages
from authsvc.cookies import has_session_cookie, read_session_token, session_cookie_headers
from authsvc.deps import (
    CodecDep,
    HasherDep,
    JwtCallbackDep,
    RedirectDep,
    SessionCallbackDep,
    SettingsDep,
    UsersDep,
)
from authsvc.providers import credentials
from authsvc.routes.context import AuthContext, build_context
from authsvc.session import resolve_session

log = logging.getLogger("authsvc.routes.auth")

NO_STORE = {"Cache-Control": "private, no-cache, no-store", "Pragma": "no-cache", "Expires": "0"}
JSON = "application/json"
JSON_UTF8 = "application/json; charset=utf-8"
SIGNIN_ERROR_CODES = frozenset(
    {
        "Signin",
        "OAuthSignin",
        "OAuthCallback",
        "OAuthCreateAccount",
        "EmailCreateAccount",
        "Callback",
        "OAuthAccountNotLinked",
        "EmailSignin",
        "CredentialsSignin",
        "SessionRequired",
    }
)


async def auth_context(
    request: Request, settings: SettingsDep, redirect: RedirectDep
) -> AuthContext:
    return await build_context(request, settings, redirect)


Ctx = Annotated[AuthContext, Depends(auth_context)]
router = APIRouter(tags=["next-auth"])


def _dump(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _respond(
    ctx: AuthContext | None,
    response: Response,
    extra_cookies: list[str] | None = None,
) -> Response:
    for cookie in [*(ctx.pending_cookies if ctx else []), *(extra_cookies or [])]:
        response.headers.append("set-cookie", cookie)
    return response


def _json(
    ctx: AuthContext | None,
    body: Any,
    *,
    status: int = 200,
    media_type: str = JSON,
    headers: dict[str, str] | None = None,
    cookies: list[str] | None = None,
) -> Response:
    response = Response(_dump(body), status_code=status, media_type=media_type, headers=headers)
    return _respond(ctx, response, cookies)


def _redirect(
    ctx: AuthContext, url: str, *, status: int = 200, cookies: list[str] | None = None
) -> Response:
    if ctx.json_mode:
        return _json(ctx, {"url": url}, status=status, media_type=JSON_UTF8, cookies=cookies)
    return _respond(ctx, Response(status_code=302, headers={"Location": url}), cookies)


def _unsupported(method: str) -> Response:
    return Response(
        f"Error: This action with HTTP {method} is not supported by NextAuth.js",
        status_code=400,
        media_type="text/plain",
    )


@router.get("/providers", summary="Enabled sign-in providers")
async def providers(settings: SettingsDep) -> Response:
    base = settings.public_url.base
    body: dict[str, Any] = {}
    if settings.credentials_enabled:
        body[credentials.PROVIDER_ID] = {
            "id": credentials.PROVIDER_ID,
            "name": credentials.PROVIDER_NAME,
            "type": "credentials",
            "signinUrl": f"{base}/signin/{credentials.PROVIDER_ID}",
            "callbackUrl": f"{base}/callback/{credentials.PROVIDER_ID}",
        }
    return _json(None, body)


@router.get("/csrf", summary="The CSRF token for state-changing POSTs")
async def csrf(ctx: Ctx) -> Response:
    return _json(ctx, {"csrfToken": ctx.csrf.token}, headers=NO_STORE)


async def _session_response(
    ctx: AuthContext,
    codec: CodecDep,
    jwt_callback: JwtCallbackDep,
    session_callback: SessionCallbackDep,
    *,
    headers: dict[str, str] | None,
    update: bool,
) -> Response:
    settings = ctx.settings
    now = time.time()
    outcome = await resolve_session(
        read_session_token(ctx.cookies, ctx.policy.session_token),
        codec=codec,
        jwt_callback=jwt_callback,
        session_callback=session_callback,
        max_age=settings.session_max_age,
        trigger="update" if update else None,
        data=ctx.body.get("data") if update else None,
        now=now,
    )
    if outcome.kind == "none" or outcome.token is None:
        # An undecodable cookie is cleared, every chunk of it.
        stale = outcome.kind == "invalid"
        cookies = session_cookie_headers(ctx.policy, ctx.cookies, None) if stale else []
        return _json(ctx, {}, headers=headers, cookies=cookies)
    token = codec.encode(outcome.token, settings.session_max_age, now=now)
    cookies = session_cookie_headers(
        ctx.policy, ctx.cookies, token, expires=now + settings.session_max_age
    )
    return _json(ctx, outcome.session, headers=headers, cookies=cookies)


@router.get("/session", summary="The current session, or {} when signed out")
async def get_session(
    ctx: Ctx, codec: CodecDep, jwt: JwtCallbackDep, session: SessionCallbackDep
) -> Response:
    return await _session_response(ctx, codec, jwt, session, headers=NO_STORE, update=False)


@router.post("/session", summary="Update the session (jwt callback trigger 'update')")
async def update_session(
    ctx: Ctx, codec: CodecDep, jwt: JwtCallbackDep, session: SessionCallbackDep
) -> Response:
    if not ctx.csrf_ok:
        return _json(None, {}, status=400)
    return await _session_response(ctx, codec, jwt, session, headers=None, update=True)


@router.post("/callback/credentials", summary="Sign in with email and password")
async def credentials_callback(
    ctx: Ctx,
    codec: CodecDep,
    users: UsersDep,
    hasher: HasherDep,
    jwt_callback: JwtCallbackDep,
) -> Response:
    if not ctx.settings.credentials_enabled:
        return _unsupported("POST")
    if not ctx.csrf_ok:
        return _redirect(ctx, f"{ctx.base}/signin?csrf=true")
    user = await credentials.authorize(ctx.body, users=users, hasher=hasher)
    if user is None:
        query = urlencode({"error": "CredentialsSignin", "provider": credentials.PROVIDER_ID})
        return _redirect(ctx, f"{ctx.base}/error?{query}", status=401)
    claims = await credentials.sign_in_token(user, jwt_callback)
    now = time.time()
    max_age = ctx.settings.session_max_age
    token = codec.encode(claims, max_age, now=now)
    cookies = session_cookie_headers(ctx.policy, ctx.cookies, token, expires=now + max_age)
    return _redirect(ctx, ctx.callback_url, cookies=cookies)


@router.get("/callback/credentials", include_in_schema=False)
async def credentials_callback_get() -> Response:
    # next-auth answers 500 here; a client-caused error is a 4xx in authsvc.
    return Response(
        "Error: Callback for provider type credentials not supported",
        status_code=405,
        media_type="text/plain",
        headers={"Allow": "POST"},
    )


@router.post("/signin/{provider}", summary="Start signing in with a provider")
async def signin_post(ctx: Ctx, provider: str) -> Response:
    if ctx.csrf_ok and provider == credentials.PROVIDER_ID and ctx.settings.credentials_enabled:
        # Credentials sign in through /callback/credentials; next-auth sends them to the page.
        return _redirect(ctx, f"{ctx.base}/signin")
    return _redirect(ctx, f"{ctx.base}/signin?csrf=true")


@router.post("/signout", summary="Sign out: clear every session cookie")
async def signout(ctx: Ctx) -> Response:
    if not ctx.csrf_ok:
        return _redirect(ctx, f"{ctx.base}/signout?csrf=true")
    cookies: list[str] = []
    if has_session_cookie(ctx.cookies, ctx.policy.session_token):
        cookies = session_cookie_headers(ctx.policy, ctx.cookies, None)
    return _redirect(ctx, ctx.callback_url, cookies=cookies)


def _html(ctx: AuthContext, html: str, status: int = 200) -> Response:
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
    return _respond(ctx, response)


@router.get("/signin", summary="The built-in sign-in page", response_class=HTMLResponse)
async def signin_page(ctx: Ctx, request: Request) -> Response:
    html = pages.signin_page(
        base=ctx.base,
        csrf_token=ctx.csrf.token,
        callback_url=ctx.callback_url,
        error=request.query_params.get("error"),
        credentials=ctx.settings.credentials_enabled,
    )
    return _html(ctx, html)


@router.get("/signout", summary="The built-in sign-out page", response_class=HTMLResponse)
async def signout_page(ctx: Ctx) -> Response:
    return _html(ctx, pages.signout_page(base=ctx.base, csrf_token=ctx.csrf.token))


@router.get("/error", summary="Error page / redirect by next-auth error code")
async def error(ctx: Ctx, request: Request) -> Response:
    code = request.query_params.get("error") or ""
    if code in SIGNIN_ERROR_CODES:
        return _respond(
            ctx,
            Response(
                status_code=302,
                headers={"Location": f"{ctx.base}/signin?{urlencode({'error': code})}"},
            ),
        )
    status = {"configuration": 500, "accessdenied": 403, "verification": 403}.get(code.lower(), 200)
    return _html(ctx, pages.error_page(status=status, base=ctx.base), status)


@router.post("/_log", include_in_schema=False)
async def client_log() -> Response:
    # next-auth/react's client logger posts here; accepted and dropped.
    return Response(status_code=200)


@router.api_route("/{action:path}", methods=["GET", "POST"], include_in_schema=False)
async def unsupported(request: Request) -> Response:
    return _unsupported(request.method)
