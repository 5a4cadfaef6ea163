"""The OpenAPI document (`/openapi.json`, `/docs`): security schemes, response models, examples.

The next-auth routes answer with hand-built responses (their bytes must match next-auth's),
so FastAPI cannot infer their bodies; their responses and request bodies are described
here, by path, and merged into the generated document once. Routes added elsewhere
(forward-auth, health) declare theirs on the decorator with the models below.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from authsvc.cookies import CookiePolicy
from authsvc.settings import Settings

COOKIE_SCHEME = "sessionCookie"
BEARER_SCHEME = "bearerToken"
REF = "#/components/schemas/{model}"


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class MessageBody(BaseModel):
    model_config = _examples({"message": "no valid session"})
    message: str


class IdentityBody(BaseModel):
    model_config = _examples(
        {"id": "tz4a98xxat96iws9zmbrgj3a", "email": "ana@example.com", "role": "ADMIN", "name": "A"}
    )
    id: str
    email: str
    role: str
    name: str | None


class HealthBody(BaseModel):
    model_config = _examples({"status": "ok"})
    status: Literal["ok"]


class ReadyBody(BaseModel):
    model_config = _examples(
        {"status": "ready", "checks": {"settings": "ok", "database": "ok"}},
        {"status": "unavailable", "checks": {"settings": "ok", "database": "unavailable"}},
    )
    status: Literal["ready", "unavailable"]
    checks: dict[str, str]


class CsrfBody(BaseModel):
    model_config = _examples({"csrfToken": "9f2c…64 hex characters…"})
    csrfToken: str  # next-auth's field names are camelCase


class ProviderBody(BaseModel):
    id: str
    name: str
    type: str
    signinUrl: str
    callbackUrl: str


class SessionUser(BaseModel):
    name: str | None = None
    email: str | None = None
    image: str | None = None
    id: str
    role: str | None = None
    fundraiserId: str | None = None


class SessionBody(BaseModel):
    model_config = _examples(
        {
            "user": {
                "name": "Ana",
                "email": "ana@example.com",
                "image": "https://example.com/a.png",
                "id": "tz4a98xxat96iws9zmbrgj3a",
                "role": "ADMIN",
            },
            "expires": "2026-12-28T02:46:35.000Z",
        },
        {},
    )
    user: SessionUser | None = Field(default=None, description="Absent when signed out ({}).")
    expires: str | None = None


class UrlBody(BaseModel):
    model_config = _examples({"url": "http://localhost:3000/dashboard"})
    url: str


class CredentialsForm(BaseModel):
    email: str
    password: str
    csrfToken: str
    callbackUrl: str | None = None
    json_: Literal["true"] | None = Field(default=None, alias="json")


class CsrfForm(BaseModel):
    csrfToken: str
    callbackUrl: str | None = None
    json_: Literal["true"] | None = Field(default=None, alias="json")


class UpdateForm(BaseModel):
    csrfToken: str
    data: Any = Field(default=None, description="Passed to the jwt callback (trigger update).")


MODELS: list[type[BaseModel]] = [
    MessageBody,
    IdentityBody,
    HealthBody,
    CsrfBody,
    ProviderBody,
    SessionBody,
    UrlBody,
    CredentialsForm,
    CsrfForm,
    UpdateForm,
]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _form(model: type[BaseModel]) -> dict[str, Any]:
    schema = _ref(model)
    return {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": schema},
            "application/json": {"schema": schema},
        },
    }


REDIRECT = {
    "description": "Redirect (next-auth's Pages Router): `Location` is the target.",
    "headers": {"Location": {"schema": {"type": "string"}}},
}
HTML = {"description": "An HTML page.", "content": {"text/html": {"schema": {"type": "string"}}}}
BAD_BODY = {
    "400": _json(MessageBody, "Unreadable body (invalid JSON or UTF-8, too many fields)."),
    "413": _json(MessageBody, "Body over 64 KiB."),
    "415": _json(MessageBody, "Neither form-urlencoded nor JSON."),
}
BAD_BODY_NO_400 = {code: response for code, response in BAD_BODY.items() if code != "400"}
NOT_SUPPORTED = {
    "description": "A provider that is not enabled: next-auth's text answer.",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}
THROTTLED = {
    "description": "Too many sign-in attempts for this account or address: `Retry-After` "
    "says when to try again. With `json=true` a URL whose `error` is `TooManyRequests`; "
    "otherwise an HTML page.",
    "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    "content": {
        "application/json": {"schema": _ref(UrlBody)},
        "text/html": {"schema": {"type": "string"}},
    },
}
DATABASE_UNAVAILABLE = {
    **THROTTLED,
    "description": "The user store did not answer (database down or slow): `Retry-After` says "
    "when to try again. With `json=true` a URL whose `error` is `ServiceUnavailable`; "
    "otherwise an HTML page. `/readyz` is red meanwhile.",
}
URL_OR_REDIRECT = {
    "200": _json(UrlBody, "With `json=true`: where the client should go."),
    "302": REDIRECT,
}

IDENTITY_HEADER_DOCS = {
    "X-Auth-Request-User": "The user id.",
    "X-Auth-Request-Email": "The email address.",
    "X-Auth-Request-Preferred-Username": "The email address (the unique login).",
    "X-Auth-Request-Groups": "The user's groups, comma-separated: their role.",
    "X-Auth-Request-Role": "The role, e.g. ADMIN.",
    "X-Auth-Request-Name": "The display name, or the email when none is set.",
}
VERIFY_DESCRIPTION = """Validates the session cookie (or `Authorization: Bearer <token>`, as
next-auth's `getToken`) for a reverse proxy's forward-auth / `auth_request` call. Any HTTP
method is accepted (documented here as GET); the request body is never read.

Optional policy (oauth2-proxy semantics; comma-separated, repeatable; all kinds must pass,
any entry of a kind may match): `allowed_roles` (alias `allowed_groups`), `allowed_emails`,
`allowed_email_domains` (`example.com` exact, `.example.com` or `*.example.com` with
subdomains)."""
ENVOY_DESCRIPTION = """The same check for Envoy's `ext_authz` HTTP service: set
`path_prefix` to this route's prefix and Envoy appends the original path. Any method; 200
is the only "allow" Envoy knows. Policy parameters are refused here (400): the query string
is the client's."""
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


def _verify_operation(summary: str, description: str, operation_id: str) -> dict[str, Any]:
    allowed = _json(IdentityBody, "Allowed: copy the identity headers onto the upstream request.")
    allowed["headers"] = {
        name: {"description": text, "schema": {"type": "string"}}
        for name, text in IDENTITY_HEADER_DOCS.items()
    }
    return {
        "tags": ["forward-auth"],
        "summary": summary,
        "description": description,
        "operationId": operation_id,
        "security": [{COOKIE_SCHEME: []}, {BEARER_SCHEME: []}],
        "responses": {
            "200": allowed,
            "400": _json(MessageBody, "A policy parameter that cannot mean anything."),
            "401": _json(MessageBody, "No valid session (cookie or bearer token)."),
            "403": _json(MessageBody, "A valid session that fails the policy."),
            "500": _json(MessageBody, "Internal failure: the proxy must deny."),
        },
    }


def hot_paths(base_path: str) -> dict[str, Any]:
    """The routes served by hotpath.py, which FastAPI's generator cannot see."""
    verify = _verify_operation(
        "Forward-auth check (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth)",
        VERIFY_DESCRIPTION,
        "verify",
    )
    verify["parameters"] = POLICY_PARAMETERS
    envoy = _verify_operation(
        "Forward-auth check for Envoy ext_authz (original path appended)",
        ENVOY_DESCRIPTION,
        "verify_envoy",
    )
    envoy["parameters"] = [
        {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    healthz = {
        "tags": ["operations"],
        "summary": "Liveness: the process answers (no dependency is checked)",
        "operationId": "healthz",
        "responses": {"200": _json(HealthBody, "Alive.")},
    }
    return {
        base_path + "/verify": {"get": verify},
        base_path + "/verify/{path}": {"get": envoy},
        "/healthz": {"get": healthz},
    }


# (method, path under the base path) -> what to merge into the generated operation.
AUTH_OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/providers"): {
        "responses": {
            "200": {
                "description": "Enabled providers by id.",
                "content": {
                    "application/json": {
                        "schema": {"type": "object", "additionalProperties": _ref(ProviderBody)}
                    }
                },
            }
        }
    },
    ("get", "/csrf"): {"responses": {"200": _json(CsrfBody, "Sets the CSRF cookie when missing.")}},
    ("get", "/session"): {
        "security": [{COOKIE_SCHEME: []}, {}],
        "responses": {
            "200": _json(SessionBody, "The session (cookie re-issued), or {} when signed out.")
        },
    },
    ("post", "/session"): {
        "security": [{COOKIE_SCHEME: []}],
        "requestBody": _form(UpdateForm),
        "responses": {
            "200": _json(SessionBody, "The updated session, or {} when signed out."),
            **BAD_BODY,
            "400": {
                "description": "CSRF check failed (`{}`), or an unreadable body "
                '(`{"message": …}`).',
                "content": {
                    "application/json": {
                        "schema": {"anyOf": [_ref(MessageBody), {"type": "object"}]}
                    }
                },
            },
        },
    },
    ("post", "/callback/credentials"): {
        "requestBody": _form(CredentialsForm),
        "responses": {
            **URL_OR_REDIRECT,
            "401": _json(UrlBody, "With `json=true`: sign-in failed (CredentialsSignin)."),
            "429": THROTTLED,
            "503": DATABASE_UNAVAILABLE,
            **BAD_BODY,
        },
    },
    ("post", "/signin/{provider}"): {
        "requestBody": _form(CsrfForm),
        "responses": {**URL_OR_REDIRECT, **BAD_BODY},
    },
    ("post", "/signout"): {
        "requestBody": _form(CsrfForm),
        "responses": {**URL_OR_REDIRECT, **BAD_BODY},
    },
    ("get", "/callback/{provider}"): {"responses": {"302": REDIRECT, "400": NOT_SUPPORTED}},
    ("post", "/callback/{provider}"): {
        "responses": {"302": REDIRECT, "400": NOT_SUPPORTED, **BAD_BODY_NO_400}
    },
    ("get", "/signin"): {"responses": {"200": HTML}},
    ("get", "/signout"): {"responses": {"200": HTML}},
    ("get", "/error"): {
        "responses": {
            "200": HTML,
            "302": REDIRECT,
            "403": HTML,
            "500": {"description": "Configuration error page.", **HTML},
        }
    },
}


def security_schemes(settings: Settings) -> dict[str, Any]:
    return {
        COOKIE_SCHEME: {
            "type": "apiKey",
            "in": "cookie",
            "name": CookiePolicy.from_settings(settings).session_token,
            "description": "next-auth's session cookie (an encrypted JWT); chunked cookies "
            "(`.0`, `.1`, …) are reassembled.",
        },
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWE",
            "description": "The same token, percent-encoded, as next-auth's `getToken` reads "
            "it; used only when no session cookie is sent.",
        },
    }


def build_openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(security_schemes(settings))
    _, definitions = models_json_schema(
        [(model, "validation") for model in MODELS], ref_template=REF
    )
    schemas = components.setdefault("schemas", {})
    for name, definition in definitions.get("$defs", {}).items():
        schemas.setdefault(name, definition)
    base = settings.public_url.base_path
    schema.setdefault("paths", {}).update(hot_paths(base))
    for (method, path), extra in AUTH_OPERATIONS.items():
        operation = schema.get("paths", {}).get(base + path, {}).get(method)
        if operation is None:
            continue
        responses = operation.setdefault("responses", {})
        if "responses" in extra:
            responses.pop("200", None)  # FastAPI's placeholder "Successful Response"
            responses.update(extra["responses"])
        for key in ("security", "requestBody"):
            if key in extra:
                operation[key] = extra[key]
    if settings.authjs_v5:
        _authjs_session_responses(schema["paths"].get(base + "/session", {}))
    return schema


def _authjs_session_responses(operations: dict[str, Any]) -> None:
    """Auth.js v5 mode answers `null` where next-auth answers `{}` (signed out, bad CSRF)."""
    for operation in operations.values():
        responses = operation["responses"]  # new dicts: the shared definitions stay as they are
        responses["200"] = {
            "description": responses["200"]["description"].replace("{}", "null"),
            "content": {
                "application/json": {"schema": {"anyOf": [_ref(SessionBody), {"type": "null"}]}}
            },
        }
        if "400" in responses:
            responses["400"] = {"description": "CSRF check failed: `null`."}


def install_openapi(app: FastAPI, settings: Settings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
