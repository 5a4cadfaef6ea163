"""The OpenAPI document (`/openapi.json`, `/docs`): what it holds besides the routes.

Each route describes itself where it is declared: a FastAPI route on its decorator
(`summary`, `description`, `responses`, `openapi_extra`), a hot route (`app.py`) with
the path items it is registered with. The next-auth routes answer with hand-built
responses (their bytes must match next-auth's), so FastAPI cannot infer their bodies;
they name their bodies with the models and shared responses below. This module adds the
document-wide parts: the security schemes, the models as components, and the Auth.js v5
variants an operation declares (`AUTHJS_V5_RESPONSES`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
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
Responses = dict[int | str, dict[str, Any]]  # a route decorator's `responses=`


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


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def json_doc(model: type[BaseModel], description: str) -> dict[str, Any]:
    """A response whose JSON body is `model` (for a route decorator's `responses=`)."""
    return {"description": description, "content": {"application/json": {"schema": ref(model)}}}


def form_doc(model: type[BaseModel]) -> dict[str, Any]:
    """A form or JSON request body (the next-auth routes read either), for `openapi_extra`."""
    schema = ref(model)
    return {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": schema},
            "application/json": {"schema": schema},
        },
    }


# Responses several routes share. A route that answers with hand-built responses declares
# `response_class=Response` or the class of its usual answer, so that FastAPI's placeholder
# for the default status does not add a content type the route never sends.
REDIRECT = {
    "description": "Redirect (next-auth's Pages Router): `Location` is the target.",
    "headers": {"Location": {"schema": {"type": "string"}}},
}
HTML = {"description": "An HTML page.", "content": {"text/html": {"schema": {"type": "string"}}}}
BAD_BODY: Responses = {
    "400": json_doc(MessageBody, "Unreadable body (invalid JSON or UTF-8, too many fields)."),
    "413": json_doc(MessageBody, "Body over 64 KiB."),
    "415": json_doc(MessageBody, "Neither form-urlencoded nor JSON."),
}
URL_OR_REDIRECT: Responses = {
    "200": json_doc(UrlBody, "With `json=true`: where the client should go."),
    "302": REDIRECT,
}
COOKIE_SECURITY: list[dict[str, list[str]]] = [{COOKIE_SCHEME: []}]
COOKIE_OR_BEARER_SECURITY: list[dict[str, list[str]]] = [{COOKIE_SCHEME: []}, {BEARER_SCHEME: []}]
# An operation whose answers differ in Auth.js v5 mode declares them under this key of its
# `openapi_extra`; the document shows them instead when that mode is on.
AUTHJS_V5_RESPONSES = "x-authjs-v5-responses"


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


def build_openapi(
    app: FastAPI, settings: Settings, hot_routes: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """The document: FastAPI's routes, then `hot_routes` (path items by path: the routes
    `app.AuthService` answers itself, which FastAPI cannot see)."""
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
    paths = schema.setdefault("paths", {})
    paths.update(copy.deepcopy(dict(hot_routes)))
    for item in paths.values():
        for operation in item.values():
            authjs_v5 = operation.pop(AUTHJS_V5_RESPONSES, None)
            if authjs_v5 is not None and settings.authjs_v5:
                operation["responses"].update(authjs_v5)
    return schema


def install_openapi(
    app: FastAPI, settings: Settings, hot_routes: Mapping[str, dict[str, Any]]
) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, settings, hot_routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
