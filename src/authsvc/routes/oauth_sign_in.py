"""`POST /signin/{provider}` and `GET|POST /callback/{provider}` for OAuth providers."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from authsvc.oauth_checks import clear_checks
from authsvc.openapi import BAD_BODY, REDIRECT, URL_OR_REDIRECT, CsrfForm, Responses, form_doc
from authsvc.outbound import ProviderError
from authsvc.providers import credentials
from authsvc.routes.context import AuthContext, Ctx
from authsvc.routes.responses import (
    csrf_failure,
    error_redirect,
    finish_sign_in,
    redirect,
    unsupported,
)
from authsvc.sign_in.oauth_flow import FlowContext, begin_sign_in, complete_sign_in

log = logging.getLogger("authsvc.oauth")
router = APIRouter(tags=["next-auth"])

NOT_SUPPORTED_DOC = {
    "description": "A provider that is not enabled: next-auth's text answer.",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}
CALLBACK_RESPONSES: Responses = {"302": REDIRECT, "400": NOT_SUPPORTED_DOC}
CALLBACK_DESCRIPTION = (
    "Verifies state/PKCE/nonce, exchanges the code, signs the user in and redirects to the "
    "callback URL with the session cookie. Failures redirect to "
    "`/error?error=<next-auth code>`."
)


def _flow(ctx: AuthContext, provider_id: str) -> FlowContext:
    settings = ctx.settings
    return FlowContext(
        http=ctx.services.http,
        policy=ctx.policy,
        secrets=settings.all_secrets,
        redirect_uri=f"{ctx.base}/callback/{provider_id}",
        # One deadline for the whole exchange with the provider in this request (discovery,
        # token, user info, keys), not per call: a trickling provider cannot stack them.
        deadline=settings.oauth_timeout,
        now=time.time(),
    )


@router.post(
    "/signin/{provider}",
    summary="Start signing in with a provider",
    description="CSRF-protected. Redirects (302, or `{url}` with `json=true`) to the "
    "provider's authorization page; query parameters such as `prompt` or `login_hint` "
    "are forwarded to it.",
    responses={**URL_OR_REDIRECT, **BAD_BODY},
    openapi_extra={"requestBody": form_doc(CsrfForm)},
)
async def signin_post(request: Request, ctx: Ctx, provider: str) -> Response:
    if not ctx.csrf_ok:
        return csrf_failure(ctx, "signin")
    if provider == credentials.PROVIDER_ID and ctx.settings.credentials_enabled:
        # Credentials sign in through /callback/credentials; next-auth sends them to the page.
        return redirect(ctx, f"{ctx.base}/signin")
    oauth_provider = ctx.services.providers.get(provider)
    if oauth_provider is None:
        return redirect(ctx, f"{ctx.base}/signin?csrf=true")
    try:
        url, cookies = await begin_sign_in(
            oauth_provider, request.query_params, _flow(ctx, provider)
        )
    except ProviderError as exc:
        log.warning("OAuthSignin %s: %s", provider, exc)
        return error_redirect(ctx, "OAuthSignin")
    return redirect(ctx, url, cookies=cookies)


# A redirect either way (status_code=302), or next-auth's text answer: no JSON body.
@router.get(
    "/callback/{provider}",
    operation_id="oauth_callback_get",
    summary="OAuth callback",
    description=CALLBACK_DESCRIPTION,
    status_code=302,
    response_class=Response,
    responses=CALLBACK_RESPONSES,
)
@router.post(
    "/callback/{provider}",
    operation_id="oauth_callback_post",
    status_code=302,
    response_class=Response,
    responses={**CALLBACK_RESPONSES, "413": BAD_BODY["413"], "415": BAD_BODY["415"]},
    summary="Where a provider sends the browser back (GET, or POST for form_post)",
    description=CALLBACK_DESCRIPTION,
)
async def oauth_callback(request: Request, ctx: Ctx, provider: str) -> Response:
    oauth_provider = ctx.services.providers.get(provider)
    if oauth_provider is None:
        return unsupported(request.method)
    params = dict(request.query_params) if request.method == "GET" else ctx.body
    cleared = clear_checks(ctx.policy, ctx.cookies)
    outcome = await complete_sign_in(
        oauth_provider, params, ctx.cookies, _flow(ctx, provider), ctx.services
    )
    return await finish_sign_in(ctx, provider, outcome, cookies=cleared)
