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
URL_OR_REDIRECT = {
    "200": _json(UrlBody, "With `json=true`: where the client should go."),
    "302": REDIRECT,
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
            "400": {"description": "CSRF check failed: `{}`."},
            **BAD_BODY,
        },
    },
    ("post", "/callback/credentials"): {
        "requestBody": _form(CredentialsForm),
        "responses": {
            **URL_OR_REDIRECT,
            "401": _json(UrlBody, "With `json=true`: sign-in failed (CredentialsSignin)."),
            **BAD_BODY,
        },
    },
    ("post", "/signin/{provider}"): {"requestBody": _form(CsrfForm), "responses": URL_OR_REDIRECT},
    ("post", "/signout"): {
        "requestBody": _form(CsrfForm),
        "responses": {**URL_OR_REDIRECT, **BAD_BODY},
    },
    ("get", "/callback/{provider}"): {"responses": {"302": REDIRECT}},
    ("post", "/callback/{provider}"): {"responses": {"302": REDIRECT}},
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
            "name": settings.cookie_policy.session_token,
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
    return schema


def install_openapi(app: FastAPI, settings: Settings) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
