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

This is the HTTP layer of the forward-auth feature; the decision is `forward_auth.py`'s.
It is the service's hot path, so it is a plain ASGI handler that the app calls before
FastAPI's routing and middleware (a hot route: see `app.py`; docs/performance.md for what
that buys); FastAPI cannot see it, so its OpenAPI description is here (`OPENAPI`,
`ENVOY_OPENAPI`), registered with it. It reads the same services container as the FastAPI
routes, dependency overrides included (`deps.ServiceResolver`): without overrides, or with
overrides that take no parameters, the container is ready before the request; an
override that needs the request is resolved by FastAPI for /verify too
(`deps.resolved_by_fastapi`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from functools import lru_cache
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, Response
from starlette.types import Message, Receive, Scope, Send

from authsvc import forward_auth, proxy_trust
from authsvc.cookies import parse_cookie_header
from authsvc.deps import ServiceResolver, resolved_by_fastapi
from authsvc.forward_auth import Allow, Decision, Deny, PolicyError
from authsvc.metrics import Metrics, VerifyOutcome
from authsvc.openapi import COOKIE_OR_BEARER_SECURITY, IdentityBody, MessageBody, json_doc
from authsvc.routes.responses import dump
from authsvc.services import Services
from authsvc.settings import Settings

log = logging.getLogger("authsvc.verify")

Headers = Sequence[tuple[bytes, bytes]]
JSON_NO_STORE = ((b"content-type", b"application/json"), (b"cache-control", b"no-store"))
WWW_AUTHENTICATE = (b"www-authenticate", b'Bearer realm="authsvc"')


def response(status: int, body: bytes, extra: Headers = ()) -> tuple[int, Headers, bytes]:
    """A complete answer: status, every header, and the body."""
    length = (b"content-length", str(len(body)).encode())
    auth = (WWW_AUTHENTICATE,) if status == 401 else ()
    return status, (*JSON_NO_STORE, length, *auth, *extra), body


DENIED = {
    "unauthenticated": response(401, dump({"message": "no valid session"})),
    "forbidden": response(403, dump({"message": "forbidden by policy"})),
}
INTERNAL_ERROR = response(500, dump({"message": "internal error"}))
# Where the FastAPI-resolved answer leaves its outcome for the metrics.
OUTCOME = "authsvc.verify_outcome"


IDENTITY_HEADER_DOCS = {
    "X-Auth-Request-User": "The user id.",
    "X-Auth-Request-Email": "The email address.",
    "X-Auth-Request-Preferred-Username": "The email address (the unique login).",
    "X-Auth-Request-Groups": "The user's groups, comma-separated: their role.",
    "X-Auth-Request-Role": "The role, e.g. ADMIN.",
    "X-Auth-Request-Name": "The display name, or the email when none is set.",
}
ALLOWED_RESPONSE = {
    **json_doc(IdentityBody, "Allowed: copy the identity headers onto the upstream request."),
    "headers": {
        name: {"description": text, "schema": {"type": "string"}}
        for name, text in IDENTITY_HEADER_DOCS.items()
    },
}
RESPONSES = {
    "200": ALLOWED_RESPONSE,
    "400": json_doc(MessageBody, "A policy parameter that cannot mean anything."),
    "401": json_doc(MessageBody, "No valid session (cookie or bearer token)."),
    "403": json_doc(MessageBody, "A valid session that fails the policy."),
    "500": json_doc(MessageBody, "Internal failure: the proxy must deny."),
}
POLICY_PARAMETERS = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": True,
    }
    for name, description in (
        ("allowed_roles", "Roles, comma-separated; any may match."),
        ("allowed_groups", "Synonym of allowed_roles (oauth2-proxy's name)."),
        ("allowed_emails", "Exact addresses, comma-separated."),
        ("allowed_email_domains", "`example.com`, or `.example.com` / `*.example.com`."),
    )
]
# The path items of `/verify` and `/verify/{path}` (hot routes: FastAPI cannot see them).
OPENAPI = {
    "get": {
        "tags": ["forward-auth"],
        "summary": "Forward-auth check (nginx auth_request, Traefik ForwardAuth, "
        "Caddy forward_auth)",
        "description": """Validates the session cookie (or `Authorization: Bearer <token>`, as
next-auth's `getToken`) for a reverse proxy's forward-auth / `auth_request` call. Any HTTP
method is accepted (documented here as GET); the request body is never read.

Optional policy (oauth2-proxy semantics; comma-separated, repeatable; all kinds must pass,
any entry of a kind may match): `allowed_roles` (alias `allowed_groups`), `allowed_emails`,
`allowed_email_domains` (`example.com` exact, `.example.com` or `*.example.com` with
subdomains).""",
        "operationId": "verify",
        "security": COOKIE_OR_BEARER_SECURITY,
        "parameters": POLICY_PARAMETERS,
        "responses": RESPONSES,
    }
}
ENVOY_OPENAPI = {
    "get": {
        "tags": ["forward-auth"],
        "summary": "Forward-auth check for Envoy ext_authz (original path appended)",
        "description": """The same check for Envoy's `ext_authz` HTTP service: set
`path_prefix` to this route's prefix and Envoy appends the original path. Any method; 200
is the only "allow" Envoy knows. Policy parameters are refused here (400): the query string
is the client's.""",
        "operationId": "verify_envoy",
        "security": COOKIE_OR_BEARER_SECURITY,
        "parameters": [
            {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "responses": RESPONSES,
    }
}


@lru_cache(maxsize=4096)
def allowed(identity: forward_auth.Identity) -> tuple[int, Headers, bytes]:
    """The 200 answer for an identity (memoised: a pure function of it)."""
    headers, body = forward_auth.rendered(identity)
    return response(200, body, headers)


class ForwardAuthEndpoint:
    def __init__(self, app: FastAPI, resolver: ServiceResolver, path: str) -> None:
        self.app = app
        self.resolver = resolver
        self.metrics: Metrics = resolver.base.metrics
        self.path = path
        self.envoy_prefix = path + "/"
        self.envoy_route = path + "/{path:path}"
        # While some dependency override needs the request, FastAPI resolves the services
        # for /verify as for any route. Without such overrides it is never used.
        self.resolving = resolved_by_fastapi(app, path, self._resolved)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        services = self.resolver.services
        if services is None:
            outcome, status = await self._through_fastapi(scope, receive, send)
        else:
            outcome, (status, headers, body) = await self._safe_answer(scope, services)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        route = self.path if scope["path"] == self.path else self.envoy_route
        self.metrics.observe_verify(
            scope["method"], route, status, outcome, time.perf_counter() - started
        )

    async def _safe_answer(
        self, scope: Scope, services: Services
    ) -> tuple[VerifyOutcome, tuple[int, Headers, bytes]]:
        try:
            return await self._answer(scope, services)
        except Exception as exc:
            # Fail closed: whatever went wrong, the proxy gets a 5xx and denies.
            log.error("verify failed: %s", type(exc).__name__)
            return "error", INTERNAL_ERROR

    async def _resolved(self, request: Request, services: Services) -> Response:
        outcome, (status, headers, body) = await self._safe_answer(request.scope, services)
        request.scope[OUTCOME] = outcome
        response = Response(body, status_code=status)
        response.raw_headers = list(headers)
        return response

    async def _through_fastapi(
        self, scope: Scope, receive: Receive, send: Send
    ) -> tuple[VerifyOutcome, int]:
        status = 0

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.resolving(scope, receive, observed)
        except Exception as exc:
            # An override that raised: fail closed, as for any other internal failure.
            log.error("verify failed: %s", type(exc).__name__)
            if status:
                return "error", status
            status, headers, body = INTERNAL_ERROR
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return "error", status
        outcome: VerifyOutcome = scope.get(OUTCOME, "error")
        return outcome, status

    async def _answer(
        self, scope: Scope, services: Services
    ) -> tuple[VerifyOutcome, tuple[int, Headers, bytes]]:
        settings = services.settings
        path: str = scope["path"]
        envoy_path = None if path == self.path else path[len(self.envoy_prefix) :]
        try:
            policy = _policy(scope["query_string"], envoy_path)
        except PolicyError as exc:
            return "bad_request", response(400, dump({"message": str(exc)}))
        cookie_header, authorization = _request_headers(scope["headers"])
        cookies = parse_cookie_header(cookie_header)
        store = services.session_store
        raw_token = store.token(cookies, authorization)
        now = time.time()
        decision = await forward_auth.decide(raw_token, policy, services, now=now)
        _log_decision(scope, settings, decision, envoy_path)
        if isinstance(decision, Deny):
            return decision.outcome, DENIED[decision.outcome]
        answer = allowed(decision.identity)
        if settings.verify_refresh and store.has_cookie(cookies):
            refreshed = store.save(cookies, decision.token, now)
            status, headers, body = answer
            cookie_headers = [(b"set-cookie", cookie.encode("latin-1")) for cookie in refreshed]
            answer = (status, (*headers, *cookie_headers), body)
        return "allow", answer


def _request_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """The Cookie (HTTP/2 may split it into several) and Authorization headers."""
    cookies: list[str] = []
    authorization = None
    for name, value in headers:
        if name == b"cookie":
            cookies.append(value.decode("latin-1"))
        elif name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
    return ("; ".join(cookies) if cookies else None), authorization


def _policy(query_string: bytes, envoy_path: str | None) -> forward_auth.Policy:
    if not query_string:
        return forward_auth.NO_POLICY
    params = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    if envoy_path is None:
        return forward_auth.parse_policy(params)
    if forward_auth.has_policy_params(params):
        raise PolicyError(
            "policy parameters are read on /verify only; on the Envoy path the query string "
            "belongs to the client"
        )
    return forward_auth.NO_POLICY


def _log_decision(
    scope: Scope, settings: Settings, decision: Decision, envoy_path: str | None
) -> None:
    level = logging.DEBUG if isinstance(decision, Allow) else logging.INFO
    if not log.isEnabledFor(level):
        return
    peer = scope.get("client")
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    original = proxy_trust.original_request(
        method=scope["method"],
        path="/" + envoy_path if envoy_path is not None else scope["path"],
        peer=peer[0] if peer else None,
        headers=headers,
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
