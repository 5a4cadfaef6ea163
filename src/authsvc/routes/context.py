"""What every `/api/auth` request works out first, as next-auth's `init` does.

The cookie jar (parsed from the raw header), the CSRF state, the parsed body of a POST
and the callback URL. Cookies that the request earned on the way (a new CSRF cookie, a
changed callback-url cookie) are collected here and put on whatever response is sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from starlette.requests import ClientDisconnect

from authsvc.callbacks import run_redirect
from authsvc.cookies import CookiePolicy, parse_cookie_header
from authsvc.csrf import CsrfState, csrf_state, csrf_verified
from authsvc.deps import ServicesDep
from authsvc.services import Services
from authsvc.settings import Settings

MAX_BODY_BYTES = 64 * 1024
MAX_FORM_FIELDS = 100
# next-auth's bodies are flat; `data` for update() may nest a little. Deeper is refused
# before anything walks it (json.loads itself gives up near 1000 with RecursionError).
MAX_JSON_DEPTH = 32
TOO_DEEP = "request body is nested too deeply"


class BadRequestError(Exception):
    """The request cannot be read; `status` and `message` are safe to send back."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class AuthContext:
    # The app's services, with the dependency overrides in force.
    services: Services
    settings: Settings
    policy: CookiePolicy
    cookies: dict[str, str]
    csrf: CsrfState
    body: dict[str, Any]
    callback_url: str
    origin_ok: bool
    pending_cookies: list[str] = field(default_factory=list)
    # The request has an `X-Auth-Return-Redirect` header (Auth.js v5's JSON mode).
    return_redirect: bool = False

    @property
    def base(self) -> str:
        return self.settings.public_url.base

    @property
    def origin(self) -> str:
        return self.settings.public_url.origin

    @property
    def authjs_v5(self) -> bool:
        return self.settings.authjs_v5

    @property
    def json_mode(self) -> bool:
        if self.authjs_v5:  # Auth.js v5 asks with a header, whatever its value
            return self.return_redirect
        # next-auth checks for the *string* "true"; a JSON boolean still gets a redirect.
        return self.body.get("json") == "true"

    @property
    def csrf_ok(self) -> bool:
        return self.origin_ok and csrf_verified(self.csrf, self.body.get("csrfToken"))


async def read_body(request: Request) -> dict[str, Any]:
    """A POST body as next-auth reads it: urlencoded form or a JSON object."""
    if request.method != "POST":
        return {}
    headers = request.headers
    raw = await read_raw_body(headers.get("content-length"), request.stream())
    return parse_body(raw, headers.get("content-type", ""))


async def read_raw_body(declared: str | None, chunks: AsyncIterator[bytes]) -> bytes:
    """The body's bytes, refused past MAX_BODY_BYTES (by its Content-Length, before reading)."""
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise BadRequestError(413, "request body too large")
    raw = b""
    try:
        async for chunk in chunks:
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                raise BadRequestError(413, "request body too large")
    except ClientDisconnect:
        # The client went away, or the server cut a body slower than AUTHSVC_BODY_TIMEOUT.
        raise BadRequestError(400, "request body incomplete") from None
    return raw


def parse_body(raw: bytes, content_type_header: str) -> dict[str, Any]:
    """A body's fields, from its bytes and its Content-Type header."""
    if not raw:
        return {}
    content_type = content_type_header.split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError(400, "request body is not UTF-8") from None
    if content_type == "application/json":
        try:
            parsed = json.loads(text)
        except RecursionError:
            raise BadRequestError(400, TOO_DEEP) from None
        except ValueError:
            raise BadRequestError(400, "request body is not valid JSON") from None
        if _nested_deeper_than(parsed, MAX_JSON_DEPTH):
            raise BadRequestError(400, TOO_DEEP)
        if not isinstance(parsed, dict):
            raise BadRequestError(400, "request body must be a JSON object")
        if not _encodable(parsed):
            raise BadRequestError(400, "request body contains invalid Unicode escapes")
        return parsed
    if content_type in ("application/x-www-form-urlencoded", ""):
        try:
            pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except ValueError:
            raise BadRequestError(400, "too many form fields") from None
        form: dict[str, Any] = {}
        for key, value in pairs:
            form.setdefault(key, value)
        return form
    raise BadRequestError(415, "send application/x-www-form-urlencoded or application/json")


def _nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (iterative: no recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return False


def _encodable(value: Any) -> bool:
    """A JSON `\\ud800` escape decodes to a lone surrogate, which nothing can encode."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _origin_allowed(
    method: str, sec_fetch_site: str | None, origin: str | None, settings: Settings
) -> bool:
    """Fetch-metadata and Origin checks on top of the CSRF token (stricter than next-auth)."""
    if method != "POST":
        return True
    if sec_fetch_site == "cross-site":
        return False
    # Frontends on the CORS allow-list post cross-origin (same-site) on purpose.
    return origin is None or origin == settings.public_url.origin or origin in settings.cors_origins


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the context needs of a request: its method, the headers it reads (the first of
    each name, as Starlette's `Headers.get` gives it), its `callbackUrl` query parameter
    and its parsed body."""

    method: str
    cookie: str | None = None
    origin: str | None = None
    sec_fetch_site: str | None = None
    return_redirect: bool = False
    query_callback_url: str | None = None
    body: dict[str, Any] = field(default_factory=dict)


async def build_context(request: Request, services: Services) -> AuthContext:
    headers = request.headers
    facts = RequestFacts(
        method=request.method,
        cookie=headers.get("cookie"),
        origin=headers.get("origin"),
        sec_fetch_site=headers.get("sec-fetch-site"),
        return_redirect="x-auth-return-redirect" in headers,
        query_callback_url=request.query_params.get("callbackUrl"),
        body=await read_body(request),
    )
    return context_from(facts, services)


def context_from(facts: RequestFacts, services: Services) -> AuthContext:
    """The context of a request (see the module docstring), from what was read of it."""
    settings = services.settings
    redirect = services.callbacks.redirect
    policy = services.cookie_policy
    cookies = parse_cookie_header(facts.cookie)
    csrf = csrf_state(cookies.get(policy.csrf_token), services.csrf_secrets)
    body = facts.body
    origin = settings.public_url.origin
    pending: list[str] = []
    if csrf.new_cookie is not None:
        pending.append(policy.serialize(policy.csrf_token, csrf.new_cookie))

    requested = body.get("callbackUrl")
    if not isinstance(requested, str):
        requested = facts.query_callback_url
    stored = cookies.get(policy.callback_url)
    if requested:
        callback_url = run_redirect(redirect, requested, origin)
    elif stored:
        callback_url = run_redirect(redirect, stored, origin)
    else:
        callback_url = origin
    if callback_url != stored:
        pending.append(policy.serialize(policy.callback_url, callback_url))

    return AuthContext(
        services=services,
        settings=settings,
        policy=policy,
        cookies=cookies,
        csrf=csrf,
        body=body,
        callback_url=callback_url,
        origin_ok=_origin_allowed(facts.method, facts.sec_fetch_site, facts.origin, settings),
        pending_cookies=pending,
        return_redirect=facts.return_redirect,
    )


async def auth_context(request: Request, services: ServicesDep) -> AuthContext:
    return await build_context(request, services)


Ctx = Annotated[AuthContext, Depends(auth_context)]
