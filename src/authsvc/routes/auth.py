"""The `/api/auth/*` routes, with next-auth v4's statuses, bodies, headers and cookies.

Handlers parse the request (see `routes.context`), call functions that know nothing of
HTTP, and shape the response. Responses follow next-auth's Pages-Router handler: a
redirect is a 302, or `{"url": …}` with the internal status when the body has
`json=true`.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from authsvc import pages
from authsvc.deps import ServicesDep
from authsvc.events import SessionEvent, SignOutEvent
from authsvc.openapi import (
    AUTHJS_V5_RESPONSES,
    BAD_BODY,
    COOKIE_SECURITY,
    HTML,
    REDIRECT,
    URL_OR_REDIRECT,
    CredentialsForm,
    CsrfBody,
    CsrfForm,
    MessageBody,
    ProviderBody,
    SessionBody,
    UpdateForm,
    UrlBody,
    form_doc,
    json_doc,
    ref,
)
from authsvc.providers import credentials
from authsvc.proxy_trust import client_address
from authsvc.routes.context import AuthContext, Ctx
from authsvc.routes.responses import (
    NO_STORE,
    csrf_failure,
    finish_sign_in,
    html_response,
    json_response,
    no_session,
    redirect,
    respond,
    unsupported,
)
from authsvc.session import resolve_session, session_owner
from authsvc.sign_in.credentials_flow import sign_in_with_password
from authsvc.sign_in.result import THROTTLED_ERROR, UNAVAILABLE_ERROR

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
        THROTTLED_ERROR,
        UNAVAILABLE_ERROR,
    }
)


router = APIRouter(tags=["next-auth"])


@router.get(
    "/providers",
    summary="Enabled sign-in providers",
    description="Each enabled provider (the configured OAuth providers, and `credentials` "
    "unless AUTHSVC_CREDENTIALS=false) with its sign-in and callback URLs, as next-auth "
    "lists them; next-auth/react's `signIn()` fetches it first.",
    responses={
        "200": {
            "description": "Enabled providers by id.",
            "content": {
                "application/json": {
                    "schema": {"type": "object", "additionalProperties": ref(ProviderBody)}
                }
            },
        }
    },
)
async def providers(services: ServicesDep) -> Response:
    settings = services.settings
    base = settings.public_url.base
    listed = [(p.id, p.name, "oauth") for p in services.providers.values()]
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


@router.get(
    "/csrf",
    summary="The CSRF token for state-changing POSTs",
    description="next-auth's double-submit token: send it as `csrfToken` with every POST. "
    "Sets the CSRF cookie (the token and its hash) when it is missing or does not verify.",
    responses={"200": json_doc(CsrfBody, "Sets the CSRF cookie when missing.")},
)
async def csrf(ctx: Ctx) -> Response:
    return json_response(ctx, {"csrfToken": ctx.csrf.token}, headers=NO_STORE)


async def _session_response(
    ctx: AuthContext, *, headers: dict[str, str] | None, update: bool
) -> Response:
    services = ctx.services
    store = services.session_store
    now = time.time()
    outcome = await resolve_session(
        store.token(ctx.cookies),
        services,
        trigger="update" if update else None,
        data=ctx.body.get("data") if update else None,
        now=now,
    )
    if outcome.token is None or outcome.session is None:
        # An undecodable cookie is cleared, every chunk of it; a cookie whose callback
        # failed is kept (a broken callback must not sign everyone out).
        cookies = store.clear(ctx.cookies) if outcome.kind == "invalid" else []
        return json_response(ctx, no_session(ctx), headers=headers, cookies=cookies)
    cookies = store.save(ctx.cookies, outcome.token, now)
    await services.events.emit(SessionEvent(session=outcome.session, token=outcome.token))
    return json_response(ctx, outcome.session, headers=headers, cookies=cookies)


def _authjs_v5_session(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"anyOf": [ref(SessionBody), {"type": "null"}]}}
        },
    }


@router.get(
    "/session",
    summary="The current session, or {} when signed out",
    description="What next-auth's `useSession()` and `getSession()` read: the session the "
    "jwt and session callbacks make of the session cookie, whose expiry is extended (the "
    "cookie is re-issued). Signed out: `{}` (`null` in Auth.js v5 mode); an undecodable "
    "cookie is cleared.",
    responses={
        "200": json_doc(SessionBody, "The session (cookie re-issued), or {} when signed out.")
    },
    openapi_extra={
        "security": [*COOKIE_SECURITY, {}],
        # Auth.js v5 answers `null` where next-auth answers `{}`.
        AUTHJS_V5_RESPONSES: {
            "200": _authjs_v5_session("The session (cookie re-issued), or null when signed out.")
        },
    },
)
async def get_session(ctx: Ctx) -> Response:
    return await _session_response(ctx, headers=NO_STORE, update=False)


@router.post(
    "/session",
    summary="Update the session (jwt callback trigger 'update')",
    description="next-auth's `update()`: runs the jwt callback with trigger `update` and the "
    "posted `data`, re-issues the cookie and answers the new session. CSRF-protected: "
    "without a valid `csrfToken` the answer is 400 with `{}` (`null` in Auth.js v5 mode).",
    responses={
        "200": json_doc(SessionBody, "The updated session, or {} when signed out."),
        **BAD_BODY,
        "400": {
            "description": 'CSRF check failed (`{}`), or an unreadable body (`{"message": …}`).',
            "content": {
                "application/json": {"schema": {"anyOf": [ref(MessageBody), {"type": "object"}]}}
            },
        },
    },
    openapi_extra={
        "security": COOKIE_SECURITY,
        "requestBody": form_doc(UpdateForm),
        AUTHJS_V5_RESPONSES: {
            "200": _authjs_v5_session("The updated session, or null when signed out."),
            "400": {"description": "CSRF check failed: `null`."},
        },
    },
)
async def update_session(ctx: Ctx) -> Response:
    if not ctx.csrf_ok:
        return json_response(None, no_session(ctx), status=400)
    return await _session_response(ctx, headers=None, update=True)


THROTTLED_DOC = {
    "description": "Too many sign-in attempts for this account or address: `Retry-After` "
    "says when to try again. With `json=true` a URL whose `error` is `TooManyRequests`; "
    "otherwise an HTML page.",
    "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    "content": {
        "application/json": {"schema": ref(UrlBody)},
        "text/html": {"schema": {"type": "string"}},
    },
}


@router.post(
    "/callback/credentials",
    summary="Sign in with email and password",
    description="CSRF-protected. Throttled per account and per address, then the password is "
    "checked against the user store and the signIn callback runs; on success the session "
    "cookie is set and the answer redirects (302, or `{url}` with `json=true`) to the "
    "callback URL. A wrong email or password is next-auth's `CredentialsSignin` error "
    "(401 with `json=true`).",
    responses={
        **URL_OR_REDIRECT,
        "401": json_doc(UrlBody, "With `json=true`: sign-in failed (CredentialsSignin)."),
        "429": THROTTLED_DOC,
        "503": {
            **THROTTLED_DOC,
            "description": "The user store did not answer (database down or slow): "
            "`Retry-After` says when to try again. With `json=true` a URL whose `error` is "
            "`ServiceUnavailable`; otherwise an HTML page. `/readyz` is red meanwhile.",
        },
        **BAD_BODY,
    },
    openapi_extra={"requestBody": form_doc(CredentialsForm)},
)
async def credentials_callback(ctx: Ctx, request: Request) -> Response:
    if not ctx.settings.credentials_enabled:
        return unsupported("POST")
    if not ctx.csrf_ok:
        ctx.services.metrics.signin_outcome(credentials.PROVIDER_ID, "csrf")
        return csrf_failure(ctx, "signin")
    peer = request.client.host if request.client else None
    address = client_address(
        peer, request.headers.get("x-forwarded-for"), ctx.settings.trusted_proxy_networks
    )
    outcome = await sign_in_with_password(ctx.body, address, ctx.services)
    return await finish_sign_in(ctx, credentials.PROVIDER_ID, outcome)


@router.get("/callback/credentials", include_in_schema=False)
async def credentials_callback_get() -> Response:
    # next-auth answers 500 here; a client-caused error is a 4xx in authsvc.
    return Response(
        "Error: Callback for provider type credentials not supported",
        status_code=405,
        media_type="text/plain",
        headers={"Allow": "POST"},
    )


@router.post(
    "/signout",
    summary="Sign out: clear every session cookie",
    description="CSRF-protected. Clears every chunk of the session cookie (in revocation "
    "mode, also ends the user's sessions on every device), emits the signOut event and "
    "redirects (302, or `{url}` with `json=true`) to the callback URL.",
    responses={**URL_OR_REDIRECT, **BAD_BODY},
    openapi_extra={"requestBody": form_doc(CsrfForm)},
)
async def signout(ctx: Ctx) -> Response:
    if not ctx.csrf_ok:
        return csrf_failure(ctx, "signout")
    services = ctx.services
    store = services.session_store
    cookies: list[str] = []
    if store.has_cookie(ctx.cookies):
        cookies = store.clear(ctx.cookies)
        claims = store.load(ctx.cookies)
        owner = session_owner(claims)
        if services.revocation is not None and owner is not None:
            # Revocation mode: a copied cookie must stop working too, on every device.
            await services.revocation.revoke(owner, services.users)
        await services.events.emit(SignOutEvent(token=claims))
    return redirect(ctx, ctx.callback_url, cookies=cookies)


@router.get(
    "/signin",
    summary="The built-in sign-in page",
    description="A form for each enabled provider, showing `?error=` when given; a redirect "
    "to the application's own page instead when AUTHSVC_PAGES_SIGNIN is set.",
    response_class=HTMLResponse,
    responses={"200": HTML},
)
async def signin_page(ctx: Ctx, request: Request) -> Response:
    error = request.query_params.get("error")
    if ctx.settings.pages_signin:
        query = {"callbackUrl": ctx.callback_url, **({"error": error} if error else {})}
        return _to_page(ctx, ctx.settings.pages_signin, query)
    html = pages.signin_page(
        base=ctx.base,
        csrf_token=ctx.csrf.token,
        callback_url=ctx.callback_url,
        error=error,
        credentials=ctx.settings.credentials_enabled,
        oauth=[(p.id, p.name) for p in ctx.services.providers.values()],
    )
    return html_response(ctx, html)


@router.get(
    "/signout",
    summary="The built-in sign-out page",
    description="A confirmation form that posts to `/signout`; a redirect to the "
    "application's own page instead when AUTHSVC_PAGES_SIGNOUT is set.",
    response_class=HTMLResponse,
    responses={"200": HTML},
)
async def signout_page(ctx: Ctx) -> Response:
    if ctx.settings.pages_signout:
        return _to_page(ctx, ctx.settings.pages_signout, {"callbackUrl": ctx.callback_url})
    return html_response(ctx, pages.signout_page(base=ctx.base, csrf_token=ctx.csrf.token))


@router.get(
    "/error",
    summary="Error page / redirect by next-auth error code",
    description="A sign-in error code (`?error=CredentialsSignin`, `OAuthCallback`, …) "
    "redirects to the sign-in page, which shows it. Any other code is the error page (403 "
    "for AccessDenied and Verification, 500 for Configuration), or a redirect to the "
    "application's own page when AUTHSVC_PAGES_ERROR is set.",
    response_class=HTMLResponse,
    responses={
        "200": HTML,
        "302": REDIRECT,
        "403": HTML,
        "500": {"description": "Configuration error page.", **HTML},
    },
)
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
    if ctx.settings.pages_error:
        return _to_page(ctx, ctx.settings.pages_error, {"error": code})
    status = {"configuration": 500, "accessdenied": 403, "verification": 403}.get(code.lower(), 200)
    return html_response(ctx, pages.error_page(status=status, base=ctx.base), status)


def _to_page(ctx: AuthContext, page: str, query: dict[str, str]) -> Response:
    """A redirect to one of the application's own pages (next-auth's `pages` option)."""
    target = ctx.origin + page if page.startswith("/") else page
    separator = "&" if "?" in target else "?"
    location = f"{target}{separator}{urlencode(query)}" if query else target
    return respond(ctx, Response(status_code=302, headers={"Location": location}))


@router.post("/_log", include_in_schema=False)
async def client_log() -> Response:
    # next-auth/react's client logger posts here; accepted and dropped.
    return Response(status_code=200)
