"""The `/api/auth/*` routes, with next-auth v4's statuses, bodies, headers and cookies.

Handlers parse the request (see `routes.context`), call functions that know nothing of
HTTP, and shape the response. Responses follow next-auth's Pages-Router handler: a
redirect is a 302, or `{"url": …}` with the internal status when the body has
`json=true`.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from authsvc import pages
from authsvc.callbacks import SignInParams
from authsvc.cookies import has_session_cookie, read_session_token, session_cookie_headers
from authsvc.deps import (
    CodecDep,
    HasherDep,
    JwtCallbackDep,
    ProvidersDep,
    SessionCallbackDep,
    SettingsDep,
    SignInCallbackDep,
    UsersDep,
)
from authsvc.metrics import MetricsDep
from authsvc.providers import credentials
from authsvc.routes.context import AuthContext, Ctx
from authsvc.routes.responses import (
    NO_STORE,
    html_response,
    json_response,
    new_session_cookies,
    redirect,
    respond,
    unsupported,
)
from authsvc.session import resolve_session

log = logging.getLogger("authsvc.routes.auth")

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


router = APIRouter(tags=["next-auth"])


@router.get("/providers", summary="Enabled sign-in providers")
async def providers(settings: SettingsDep, oauth_providers: ProvidersDep) -> Response:
    base = settings.public_url.base
    listed = [(p.id, p.name, "oauth") for p in oauth_providers.values()]
    if settings.credentials_enabled:
        listed.append((credentials.PROVIDER_ID, credentials.PROVIDER_NAME, "credentials"))
    body = {
        provider_id: {
            "id": provider_id,
            "name": name,
            "type": kind,
            "signinUrl": f"{base}/signin/{provider_id}",
            "callbackUrl": f"{base}/callback/{provider_id}",
        }
        for provider_id, name, kind in listed
    }
    return json_response(None, body)


@router.get("/csrf", summary="The CSRF token for state-changing POSTs")
async def csrf(ctx: Ctx) -> Response:
    return json_response(ctx, {"csrfToken": ctx.csrf.token}, headers=NO_STORE)


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
        return json_response(ctx, {}, headers=headers, cookies=cookies)
    token = codec.encode(outcome.token, settings.session_max_age, now=now)
    cookies = session_cookie_headers(
        ctx.policy, ctx.cookies, token, expires=now + settings.session_max_age
    )
    return json_response(ctx, outcome.session, headers=headers, cookies=cookies)


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
        return json_response(None, {}, status=400)
    return await _session_response(ctx, codec, jwt, session, headers=None, update=True)


@router.post("/callback/credentials", summary="Sign in with email and password")
async def credentials_callback(
    ctx: Ctx,
    codec: CodecDep,
    users: UsersDep,
    hasher: HasherDep,
    jwt_callback: JwtCallbackDep,
    sign_in_callback: SignInCallbackDep,
    metrics: MetricsDep,
) -> Response:
    if not ctx.settings.credentials_enabled:
        return unsupported("POST")
    if not ctx.csrf_ok:
        metrics.signin_outcome(credentials.PROVIDER_ID, "csrf")
        return redirect(ctx, f"{ctx.base}/signin?csrf=true")
    user = await credentials.authorize(ctx.body, users=users, hasher=hasher)
    if user is None:
        metrics.signin_outcome(credentials.PROVIDER_ID, "failure")
        query = urlencode({"error": "CredentialsSignin", "provider": credentials.PROVIDER_ID})
        return redirect(ctx, f"{ctx.base}/error?{query}", status=401)
    account = credentials.account_for(user)
    if not await sign_in_callback(SignInParams(account=account, user=user, credentials=ctx.body)):
        metrics.signin_outcome(credentials.PROVIDER_ID, "denied")
        return redirect(ctx, f"{ctx.base}/error?error=AccessDenied", status=403)
    claims = await credentials.sign_in_token(user, account, jwt_callback)
    metrics.signin_outcome(credentials.PROVIDER_ID, "success")
    return redirect(ctx, ctx.callback_url, cookies=new_session_cookies(ctx, codec, claims))


@router.get("/callback/credentials", include_in_schema=False)
async def credentials_callback_get() -> Response:
    # next-auth answers 500 here; a client-caused error is a 4xx in authsvc.
    return Response(
        "Error: Callback for provider type credentials not supported",
        status_code=405,
        media_type="text/plain",
        headers={"Allow": "POST"},
    )


@router.post("/signout", summary="Sign out: clear every session cookie")
async def signout(ctx: Ctx) -> Response:
    if not ctx.csrf_ok:
        return redirect(ctx, f"{ctx.base}/signout?csrf=true")
    cookies: list[str] = []
    if has_session_cookie(ctx.cookies, ctx.policy.session_token):
        cookies = session_cookie_headers(ctx.policy, ctx.cookies, None)
    return redirect(ctx, ctx.callback_url, cookies=cookies)


@router.get("/signin", summary="The built-in sign-in page", response_class=HTMLResponse)
async def signin_page(ctx: Ctx, request: Request, oauth_providers: ProvidersDep) -> Response:
    html = pages.signin_page(
        base=ctx.base,
        csrf_token=ctx.csrf.token,
        callback_url=ctx.callback_url,
        error=request.query_params.get("error"),
        credentials=ctx.settings.credentials_enabled,
        oauth=[(p.id, p.name) for p in oauth_providers.values()],
    )
    return html_response(ctx, html)


@router.get("/signout", summary="The built-in sign-out page", response_class=HTMLResponse)
async def signout_page(ctx: Ctx) -> Response:
    return html_response(ctx, pages.signout_page(base=ctx.base, csrf_token=ctx.csrf.token))


@router.get("/error", summary="Error page / redirect by next-auth error code")
async def error(ctx: Ctx, request: Request) -> Response:
    code = request.query_params.get("error") or ""
    if code in SIGNIN_ERROR_CODES:
        return respond(
            ctx,
            Response(
                status_code=302,
                headers={"Location": f"{ctx.base}/signin?{urlencode({'error': code})}"},
            ),
        )
    status = {"configuration": 500, "accessdenied": 403, "verification": 403}.get(code.lower(), 200)
    return html_response(ctx, pages.error_page(status=status, base=ctx.base), status)


@router.post("/_log", include_in_schema=False)
async def client_log() -> Response:
    # next-auth/react's client logger posts here; accepted and dropped.
    return Response(status_code=200)
