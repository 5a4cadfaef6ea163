"""Forward-auth: `/verify` for nginx, Traefik and Caddy; `/verify/{path}` for Envoy.

200 with the identity headers for a valid session that passes the policy in the query
string, 401 without a valid session, 403 when the policy fails, 400 for a policy that
cannot mean anything. Never a redirect (nginx turns one into a 500); never cached; any
internal failure answers 500, so the proxy denies. Every HTTP method is answered the same
way, and no request body is read.

On the Envoy path the query string is the client's own (ext_authz appends the original
path and query to `path_prefix`), so policy parameters there are refused rather than
obeyed or ignored: a policy must be set on `/verify`, or enforced in Envoy from the
`X-Auth-Request-Role` header.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from authsvc import forward_auth
from authsvc.callbacks import JwtCallback, SessionCallback
from authsvc.cookies import has_session_cookie, parse_cookie_header, session_cookie_headers
from authsvc.deps import CodecDep, JwtCallbackDep, SessionCallbackDep, SettingsDep
from authsvc.forward_auth import Allow, Decision, Deny, PolicyError
from authsvc.metrics import Metrics, VerifyOutcome
from authsvc.openapi import BEARER_SCHEME, COOKIE_SCHEME, IdentityBody, MessageBody
from authsvc.routes.responses import dump
from authsvc.session import request_token
from authsvc.settings import Settings
from authsvc.tokens import TokenCodec

log = logging.getLogger("authsvc.verify")

# Every method in the IANA HTTP method registry but GET (routed separately so the
# documentation lists the endpoint once) and PRI (the HTTP/2 preface, never a request).
OTHER_METHODS = [
    "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "QUERY",
    "ACL", "BASELINE-CONTROL", "BIND", "CHECKIN", "CHECKOUT", "COPY", "LABEL", "LINK",
    "LOCK", "MERGE", "MKACTIVITY", "MKCALENDAR", "MKCOL", "MKREDIRECTREF", "MKWORKSPACE",
    "MOVE", "ORDERPATCH", "PROPFIND", "PROPPATCH", "REBIND", "REPORT", "SEARCH", "UNBIND",
    "UNCHECKOUT", "UNLINK", "UNLOCK", "UPDATE", "UPDATEREDIRECTREF", "VERSION-CONTROL",
]  # fmt: skip
NO_STORE = (b"cache-control", b"no-store")
STATUS = {"unauthenticated": 401, "forbidden": 403}
MESSAGES = {"unauthenticated": "no valid session", "forbidden": "forbidden by policy"}

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": IdentityBody,
        "description": "Allowed. The identity is in the body and in the headers below; "
        "copy the headers onto the upstream request.",
        "headers": {
            name: {"description": description, "schema": {"type": "string"}}
            for name, description in (
                (forward_auth.USER, "The user id."),
                (forward_auth.EMAIL, "The email address."),
                (forward_auth.PREFERRED_USERNAME, "The email address (the unique login)."),
                (forward_auth.GROUPS, "The user's groups, comma-separated: their role."),
                (forward_auth.ROLE, "The role, e.g. ADMIN."),
                (forward_auth.NAME, "The display name, or the email when none is set."),
            )
        },
    },
    400: {"model": MessageBody, "description": "A policy parameter that cannot mean anything."},
    401: {"model": MessageBody, "description": "No valid session (cookie or bearer token)."},
    403: {"model": MessageBody, "description": "A valid session that fails the policy."},
    500: {"model": MessageBody, "description": "Internal failure: the proxy must deny."},
}
SECURITY: dict[str, Any] = {"security": [{COOKIE_SCHEME: []}, {BEARER_SCHEME: []}]}
DESCRIPTION = """Validates the session cookie (or `Authorization: Bearer <token>`, as next-auth's
`getToken`) for a reverse proxy's forward-auth / `auth_request` call. Any HTTP method is
accepted; the request body is never read.

Optional policy (oauth2-proxy semantics; comma-separated, repeatable; all kinds must pass,
any entry of a kind may match): `allowed_roles` (alias `allowed_groups`), `allowed_emails`,
`allowed_email_domains` (`example.com` exact, `.example.com` or `*.example.com` with
subdomains)."""
ENVOY_DESCRIPTION = """The same check for Envoy's `ext_authz` HTTP service: set
`path_prefix` to this route's prefix and Envoy appends the original path. Any method; 200
is the only "allow" Envoy knows. Policy parameters are refused here (400): the query string
is the client's."""

router = APIRouter(tags=["forward-auth"])


def _reply(status: int, body: Any, headers: Iterable[tuple[bytes, bytes]] = ()) -> Response:
    response = Response(dump(body), status_code=status, media_type="application/json")
    response.raw_headers.append(NO_STORE)
    response.raw_headers.extend(headers)
    if status == 401:
        response.raw_headers.append((b"www-authenticate", b'Bearer realm="authsvc"'))
    return response


def _policy(request: Request, envoy_path: str | None) -> forward_auth.Policy:
    params = request.query_params.multi_items()
    if envoy_path is None:
        return forward_auth.parse_policy(params)
    if forward_auth.has_policy_params(params):
        raise PolicyError(
            "policy parameters are read on /verify only; on the Envoy path the query string "
            "belongs to the client"
        )
    return forward_auth.NO_POLICY


def _allowed(
    allow: Allow, settings: Settings, codec: TokenCodec, cookies: dict[str, str], now: float
) -> Response:
    identity = allow.identity
    # Raw UTF-8 bytes for non-ASCII names, as oauth2-proxy sends them.
    headers = [
        (name.lower().encode(), value.encode())
        for name, value in forward_auth.identity_headers(identity).items()
    ]
    policy = settings.cookie_policy
    if settings.verify_refresh and has_session_cookie(cookies, policy.session_token):
        token = codec.encode(allow.token, settings.session_max_age, now=now)
        expires = now + settings.session_max_age
        for cookie in session_cookie_headers(policy, cookies, token, expires=expires):
            headers.append((b"set-cookie", cookie.encode("latin-1")))
    body = {"id": identity.user_id, "email": identity.email, "role": identity.role}
    return _reply(200, {**body, "name": identity.name}, headers)


async def _verify(
    request: Request,
    settings: Settings,
    codec: TokenCodec,
    jwt_callback: JwtCallback,
    session_callback: SessionCallback,
    *,
    envoy_path: str | None,
) -> Response:
    metrics: Metrics = request.app.state.metrics
    outcome: VerifyOutcome = "error"
    try:
        policy = _policy(request, envoy_path)
        cookies = parse_cookie_header(request.headers.get("cookie"))
        raw_token = request_token(
            cookies, request.headers.get("authorization"), settings.cookie_policy.session_token
        )
        now = time.time()
        decision = await forward_auth.decide(
            raw_token,
            policy,
            codec=codec,
            jwt_callback=jwt_callback,
            session_callback=session_callback,
            max_age=settings.session_max_age,
            now=now,
        )
        outcome = decision.outcome
        _log_decision(request, settings, decision, envoy_path)
        if isinstance(decision, Deny):
            return _reply(STATUS[decision.outcome], {"message": MESSAGES[decision.outcome]})
        return _allowed(decision, settings, codec, cookies, now)
    except PolicyError as exc:
        outcome = "bad_request"
        return _reply(400, {"message": str(exc)})
    except Exception as exc:
        # Fail closed: whatever went wrong, the proxy gets a 5xx and denies.
        outcome = "error"
        log.error("verify failed: %s", type(exc).__name__)
        return _reply(500, {"message": "internal error"})
    finally:
        metrics.verify_outcome(outcome)


def _log_decision(
    request: Request, settings: Settings, decision: Decision, envoy_path: str | None
) -> None:
    level = logging.DEBUG if isinstance(decision, Allow) else logging.INFO
    if not log.isEnabledFor(level):
        return
    peer = request.client.host if request.client else None
    original = forward_auth.original_request(
        method=request.method,
        path="/" + envoy_path if envoy_path is not None else request.url.path,
        peer=peer,
        headers=request.headers,
        trusted=settings.trusted_proxy_networks,
    )
    user = decision.identity.user_id if decision.identity else "-"
    log.log(
        level,
        "verify %s %s %s user=%s client=%s",
        decision.outcome,
        original.method,
        original.path,
        user,
        original.client,
        extra={
            "fields": {
                "outcome": decision.outcome,
                "method": original.method,
                "path": original.path,
                "host": original.host,
                "user": user,
                "client": original.client,
            }
        },
    )


@router.get(
    "/verify",
    summary="Forward-auth check (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth)",
    description=DESCRIPTION,
    responses=RESPONSES,
    openapi_extra=SECURITY,
)
async def verify(
    request: Request,
    settings: SettingsDep,
    codec: CodecDep,
    jwt_callback: JwtCallbackDep,
    session_callback: SessionCallbackDep,
) -> Response:
    return await _verify(request, settings, codec, jwt_callback, session_callback, envoy_path=None)


@router.get(
    "/verify/{path:path}",
    summary="Forward-auth check for Envoy ext_authz (original path appended)",
    description=ENVOY_DESCRIPTION,
    responses=RESPONSES,
    openapi_extra=SECURITY,
)
async def verify_envoy(
    request: Request,
    path: str,
    settings: SettingsDep,
    codec: CodecDep,
    jwt_callback: JwtCallbackDep,
    session_callback: SessionCallbackDep,
) -> Response:
    return await _verify(request, settings, codec, jwt_callback, session_callback, envoy_path=path)


router.add_api_route("/verify", verify, methods=OTHER_METHODS, include_in_schema=False)
router.add_api_route(
    "/verify/{path:path}", verify_envoy, methods=OTHER_METHODS, include_in_schema=False
)
