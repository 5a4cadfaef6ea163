"""The OpenAPI document: every route described, security schemes, resolvable models."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from authsvc.app import create_app
from tests.conftest import BASE, make_settings

PLACEHOLDER = "Successful Response"


@pytest.fixture
async def document() -> dict[str, Any]:
    app = create_app(make_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        yield client


async def test_the_swagger_ui_is_served(http: httpx.AsyncClient) -> None:
    response = await http.get("/docs")
    assert response.status_code == 200
    assert 'data-openapi-url="openapi.json"' in response.text


async def test_the_docs_page_names_no_other_origin(http: httpx.AsyncClient) -> None:
    page = (await http.get("/docs")).text
    assert re.findall(r'(?:src|href)="([^"]+)"', page) == [
        "docs/assets/favicon.png",
        "docs/assets/swagger-ui.css",
        "docs/assets/swagger-ui-bundle.js",
        "docs/assets/start.js",
    ]
    assert "//" not in page


async def test_the_docs_page_allows_scripts_from_its_own_origin_only(
    http: httpx.AsyncClient,
) -> None:
    policy = (await http.get("/docs")).headers["content-security-policy"]
    directives = dict(directive.strip().split(" ", 1) for directive in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in policy


@pytest.mark.parametrize(
    ("asset", "media_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("start.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("favicon.png", "image/png"),
    ],
)
async def test_the_swagger_ui_assets_are_served_by_authsvc(
    http: httpx.AsyncClient, asset: str, media_type: str
) -> None:
    response = await http.get(f"/docs/assets/{asset}")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.content


@pytest.mark.parametrize("name", ["../core.py", "..%2Fcore.py", "consts.py", "redoc.standalone.js"])
async def test_no_other_file_is_served_as_a_docs_asset(http: httpx.AsyncClient, name: str) -> None:
    assert (await http.get(f"/docs/assets/{name}")).status_code == 404


async def test_redoc_is_not_offered(http: httpx.AsyncClient) -> None:
    assert (await http.get("/redoc")).status_code == 404


def test_the_operations_endpoints_are_documented(document: dict[str, Any]) -> None:
    for path in ("/api/auth/verify", "/api/auth/verify/{path}", "/healthz", "/readyz", "/metrics"):
        assert path in document["paths"], path


def described(response: dict[str, Any]) -> bool:
    """More than FastAPI's placeholder: a real description or a real schema."""
    schemas = [media.get("schema") for media in response.get("content", {}).values()]
    return response.get("description") != PLACEHOLDER or any(schemas)


def test_every_operation_documents_its_responses(document: dict[str, Any]) -> None:
    undocumented = [
        f"{method.upper()} {path}"
        for path, method, operation in operations(document)
        if not any(described(response) for response in operation["responses"].values())
    ]
    assert undocumented == []


def test_every_schema_reference_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    missing = {ref for ref in refs(document) if ref.rsplit("/", 1)[1] not in schemas}
    assert missing == set()


def test_cookie_and_bearer_security_schemes_are_declared(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["sessionCookie"] | {"description": ""} == {
        "type": "apiKey",
        "in": "cookie",
        "name": "next-auth.session-token",
        "description": "",
    }
    assert (schemes["bearerToken"]["type"], schemes["bearerToken"]["scheme"]) == ("http", "bearer")


def test_the_cookie_scheme_names_the_secure_cookie_on_https() -> None:
    from authsvc.openapi import security_schemes

    settings = make_settings(url="https://shop.example.com")
    name = security_schemes(settings)["sessionCookie"]["name"]
    assert name == "__Secure-next-auth.session-token"


def test_verify_documents_its_statuses_headers_and_security(document: dict[str, Any]) -> None:
    operation = document["paths"]["/api/auth/verify"]["get"]
    assert set(operation["responses"]) >= {"200", "400", "401", "403", "500"}
    assert "X-Auth-Request-Role" in operation["responses"]["200"]["headers"]
    assert operation["security"] == [{"sessionCookie": []}, {"bearerToken": []}]


def test_the_session_route_documents_its_body_with_an_example(document: dict[str, Any]) -> None:
    response = document["paths"]["/api/auth/session"]["get"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SessionBody"
    }
    examples = document["components"]["schemas"]["SessionBody"]["examples"]
    assert examples[0]["user"]["role"] == "ADMIN"


def test_the_credentials_sign_in_documents_its_form(document: dict[str, Any]) -> None:
    operation = document["paths"]["/api/auth/callback/credentials"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/x-www-form-urlencoded", "application/json"}
    assert set(operation["responses"]) >= {"200", "302", "401"}


# What a generated client is built from: each operation's id and documented statuses. Every
# route declares its own description (decorator, or the path items a hot route is registered
# with); this pins the whole set, so a route that loses its description, or a status that
# drops out of it, fails here.
OPERATIONS = {
    ("get", "/readyz"): ("readyz_readyz_get", {"200", "503"}),
    ("get", "/metrics"): ("metrics_metrics_get", {"200"}),
    ("get", "/healthz"): ("healthz", {"200"}),
    ("get", "/api/auth/providers"): ("providers_api_auth_providers_get", {"200"}),
    ("get", "/api/auth/csrf"): ("csrf_api_auth_csrf_get", {"200"}),
    ("get", "/api/auth/session"): ("get_session_api_auth_session_get", {"200"}),
    ("post", "/api/auth/session"): (
        "update_session_api_auth_session_post",
        {"200", "400", "413", "415"},
    ),
    ("post", "/api/auth/callback/credentials"): (
        "credentials_callback_api_auth_callback_credentials_post",
        {"200", "302", "400", "401", "413", "415", "429", "503"},
    ),
    ("get", "/api/auth/signout"): ("signout_page_api_auth_signout_get", {"200"}),
    ("post", "/api/auth/signout"): (
        "signout_api_auth_signout_post",
        {"200", "302", "400", "413", "415"},
    ),
    ("get", "/api/auth/signin"): ("signin_page_api_auth_signin_get", {"200"}),
    ("get", "/api/auth/error"): ("error_api_auth_error_get", {"200", "302", "403", "500"}),
    ("post", "/api/auth/signin/{provider}"): (
        "signin_post_api_auth_signin__provider__post",
        {"200", "302", "400", "413", "415", "422"},
    ),
    ("get", "/api/auth/callback/{provider}"): ("oauth_callback_get", {"302", "400", "422"}),
    ("post", "/api/auth/callback/{provider}"): (
        "oauth_callback_post",
        {"302", "400", "413", "415", "422"},
    ),
    ("get", "/api/auth/verify"): ("verify", {"200", "400", "401", "403", "500"}),
    ("get", "/api/auth/verify/{path}"): ("verify_envoy", {"200", "400", "401", "403", "500"}),
}
EVERY_PROVIDER = {
    "google": {"client_id": "g", "client_secret": "g-secret"},
    "github": {"client_id": "h", "client_secret": "h-secret"},
    "facebook": {"client_id": "f", "client_secret": "f-secret"},
    "oidc": {"issuer": "https://idp.example.com", "client_id": "o", "client_secret": "o-secret"},
}
MODES = {
    "default": {},
    "every provider": EVERY_PROVIDER,
    "authjs-v5": {"mode": "authjs-v5"},
    "no credentials": {"credentials_enabled": False},
    "everything": {
        **EVERY_PROVIDER,
        "mode": "authjs-v5",
        "url": "https://shop.example.com/auth",
        "cors_origins": ["https://app.example.com"],
        "revocation": True,
        "verify_refresh": True,
    },
}


def test_the_operations_and_their_statuses_are_pinned(document: dict[str, Any]) -> None:
    found = {
        (method, path): (operation["operationId"], set(operation["responses"]))
        for path, method, operation in operations(document)
    }
    assert found == OPERATIONS


def api_routes(app: FastAPI) -> Iterator[Any]:
    """Every FastAPI route, with its full path: newer FastAPI releases keep an included router's
    routes behind one entry of `app.routes` (walked by `iter_route_contexts`)."""
    iter_route_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if iter_route_contexts is None:
        yield from (route for route in app.routes if isinstance(route, APIRoute))
        return
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


@pytest.mark.parametrize("overrides", MODES.values(), ids=list(MODES))
def test_every_route_is_documented_in_every_mode(overrides: dict[str, Any]) -> None:
    app = create_app(make_settings(**overrides))
    document = app.openapi()
    documented = {(method, path) for path, method, _ in operations(document)}
    routes = [route for route in api_routes(app) if route.include_in_schema]
    # A summary and a description of its own (FastAPI would make a summary up from the
    # function's name).
    assert [route.path_format for route in routes if not route.summary] == []
    assert [route.path_format for route in routes if not route.description] == []
    served = {(method.lower(), route.path_format) for route in routes for method in route.methods}
    assert served <= documented
    # The hot routes: each path described (by its FastAPI route or its own path items),
    # and nothing described that is not served.
    hot = set(app.hot_exact) | {prefix + "{path}" for prefix, _ in app.hot_prefixes}
    assert hot <= {path for _, path in documented}
    assert {path for method, path in documented - served} <= hot
    undescribed = [
        (method, path)
        for path, method, operation in operations(document)
        if not operation.get("summary") or not operation.get("description")
    ]
    assert undescribed == []
    base = app.services.settings.public_url.base_path
    assert {(method, path.replace(base, "/api/auth", 1)) for method, path in documented} == set(
        OPERATIONS
    )


@pytest.mark.parametrize("overrides", MODES.values(), ids=list(MODES))
def test_no_route_leaves_a_mode_variant_in_the_document(overrides: dict[str, Any]) -> None:
    from authsvc.openapi import AUTHJS_V5_RESPONSES

    document = json.dumps(create_app(make_settings(**overrides)).openapi())
    assert AUTHJS_V5_RESPONSES not in document
