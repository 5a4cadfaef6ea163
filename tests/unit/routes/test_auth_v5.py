"""The /api/auth routes in Auth.js v5 mode (AUTHSVC_MODE=authjs-v5), as @auth/core answers.

`v5-transcript.json` records the real `@auth/core` 0.41.3 `Auth()` handler on the wire;
the first tests replay it, the rest pin each difference from next-auth v4 on its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from authsvc.app import AuthService
from authsvc.csrf import csrf_state
from authsvc.deps import get_sign_in_callback
from authsvc.settings import Settings
from authsvc.tokens import TokenCodec
from authsvc.tokens_v5 import AuthjsTokenCodec
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import UserRecord
from tests.conftest import (
    BASE,
    DATA,
    MAX_SET_COOKIE_BYTES,
    OTHER_SECRET,
    SECRET,
    add_user,
    app_client,
    make_settings,
)

SESSION = "authjs.session-token"
CSRF = "authjs.csrf-token"
CALLBACK = "authjs.callback-url"
PASSWORD = "correct-horse"  # the transcript's password
CODEC = AuthjsTokenCodec([SECRET], salt=SESSION)
TRANSCRIPT: dict[str, Any] = json.loads((DATA / "vectors" / "v5-transcript.json").read_text())
STEPS = {step["title"]: step for step in TRANSCRIPT["steps"]}
SESSION_STEP = "GET session with cookie"
# The CSRF cookie the transcript's requests carry (hashed with SECRET).
RECORDED_CSRF = next(
    part.split("=", 1)[1]
    for part in STEPS[SESSION_STEP]["request"]["headers"]["cookie"].split("; ")
    if part.startswith(f"{CSRF}=")
)
CLEAR = f"{SESSION}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
CHUNK = 3936  # @auth/core's SessionStore chunk size, restated here on purpose


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url=database_url, mode="authjs-v5")


@pytest.fixture
async def ana(app: AuthService) -> UserRecord:
    return await add_user(
        app, "ana@example.com", PASSWORD, name="Ana", image="https://example.com/a.png"
    )


def v5_app(
    database_url: str, hasher: PasswordHasher, **settings: Any
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """A client for another v5-mode app (https, rotated secrets, an OAuth provider)."""
    return app_client(
        make_settings(database_url=database_url, mode="authjs-v5", **settings), hasher
    )


@pytest.fixture
async def https_client(
    database_url: str, hasher: PasswordHasher
) -> AsyncIterator[httpx.AsyncClient]:
    async with v5_app(database_url, hasher, url="https://shop.example.com") as client:
        yield client


def token_for(user: UserRecord, codec: TokenCodec = CODEC, **extra: Any) -> str:
    claims = {"name": user.name, "email": user.email, "sub": user.id, "id": user.id}
    return codec.encode({**claims, "role": user.role.value, "avatar": user.image, **extra}, 3600)


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def session_token_from(response: httpx.Response) -> str:
    values = [c.split(";")[0].split("=", 1) for c in set_cookies(response)]
    return "".join(value for name, value in values if name.startswith(SESSION))


def cookies(**jar: str) -> dict[str, str]:
    """A Cookie header with exactly these cookies (`session_token` → the session name)."""
    names = {"session_token": SESSION, "csrf": CSRF, "callback": CALLBACK}
    return {"cookie": "; ".join(f"{names.get(k, k)}={v}" for k, v in jar.items())}


async def csrf_pair(client: httpx.AsyncClient) -> tuple[str, str]:
    """A fresh CSRF token and the raw cookie value that carries it."""
    client.cookies.clear()
    response = await client.get("/api/auth/csrf")
    cookie = next(c for c in set_cookies(response) if c.startswith(f"{CSRF}="))
    client.cookies.clear()
    return response.json()["csrfToken"], cookie.split(";")[0].split("=", 1)[1]


async def post_verified(
    client: httpx.AsyncClient,
    path: str,
    *,
    as_json: bool = False,
    fields: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    **jar: str,
) -> httpx.Response:
    """POST with a valid CSRF token and its cookie, plus these fields, cookies and headers."""
    csrf, cookie = await csrf_pair(client)
    body = {"csrfToken": csrf, **(fields or {})}
    request_headers = {**cookies(csrf=cookie, **jar), **(headers or {})}
    if as_json:
        return await client.post(path, json=body, headers=request_headers)
    return await client.post(path, data=body, headers=request_headers)


async def sign_in(
    client: httpx.AsyncClient, *, json_mode: bool, header: str = "1", **form: str
) -> httpx.Response:
    fields = {"email": "ana@example.com", "password": PASSWORD, **form}
    headers = {"X-Auth-Return-Redirect": header} if json_mode else {}
    return await post_verified(
        client, "/api/auth/callback/credentials", fields=fields, headers=headers
    )


# --- the recorded @auth/core exchange -------------------------------------------------


def normalised(set_cookie: list[str]) -> list[str]:
    """Set-Cookie values with the random parts (CSRF token, JWE, dates) masked."""
    masked = []
    for header in set_cookie:
        header = re.sub(rf"^({CSRF})=[0-9a-f]{{64}}%7C[0-9a-f]{{64}}", r"\1=<csrf>", header)
        header = re.sub(rf"^({SESSION}(\.\d+)?)=eyJ[\w.-]+", r"\1=<jwe>", header)
        masked.append(re.sub(r"Expires=[^;]+", "Expires=<date>", header))
    return masked


def replayed_headers(step: dict[str, Any], user: UserRecord) -> dict[str, str]:
    """The recorded request headers, the recorded session token swapped for one of ours."""
    headers = dict(step["request"]["headers"])
    if "cookie" in headers:
        headers["cookie"] = re.sub(
            rf"{SESSION}=[\w.-]+", f"{SESSION}={token_for(user)}", headers["cookie"]
        )
    return headers


@pytest.mark.parametrize("title", list(STEPS))
async def test_each_recorded_exchange_is_answered_as_auth_core_answered_it(
    client: httpx.AsyncClient, ana: UserRecord, title: str
) -> None:
    step = STEPS[title]
    request, recorded = step["request"], step["response"]
    client.cookies.clear()

    response = await client.request(
        request["method"],
        request["path"],
        headers=replayed_headers(step, ana),
        content=request["body"],
    )

    assert response.status_code == recorded["status"]
    assert response.headers.get("location") == recorded["headers"].get("location")
    assert normalised(set_cookies(response)) == normalised(recorded["set_cookie"])
    if "content-type" in recorded["headers"]:
        assert response.headers["content-type"] == recorded["headers"]["content-type"]
    if title == SESSION_STEP:  # the mapping is authsvc's session callback, not @auth/core's
        assert response.json()["user"].items() >= recorded["body"]["user"].items()
    elif title.startswith("GET csrf"):
        assert re.fullmatch(r"[0-9a-f]{64}", response.json()["csrfToken"])
    else:
        assert (response.json() if response.content else "") == recorded["body"]


# --- cookies --------------------------------------------------------------------------


async def test_csrf_sets_the_authjs_csrf_and_callback_url_cookies(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/auth/csrf")
    assert [c.split("=")[0] for c in set_cookies(response)] == [CSRF, CALLBACK]


async def test_https_url_uses_the_secure_authjs_names(https_client: httpx.AsyncClient) -> None:
    response = await https_client.get("/api/auth/csrf")
    names = [c.split("=")[0] for c in set_cookies(response)]
    assert names == ["__Host-authjs.csrf-token", "__Secure-authjs.callback-url"]


async def test_secure_session_cookie_is_salted_with_its_own_name(
    https_client: httpx.AsyncClient, ana: UserRecord
) -> None:
    secure_name = f"__Secure-{SESSION}"
    secure_token = token_for(ana, AuthjsTokenCodec([SECRET], salt=secure_name))
    response = await https_client.get(
        "/api/auth/session", headers={"cookie": f"{secure_name}={secure_token}"}
    )
    assert response.json()["user"]["id"] == ana.id


async def test_secure_session_cookie_salted_with_the_plain_name_is_refused(
    https_client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await https_client.get(
        "/api/auth/session", headers={"cookie": f"__Secure-{SESSION}={token_for(ana)}"}
    )
    assert response.content == b"null"


async def test_large_session_is_chunked_at_3936_characters(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    large = token_for(ana, blob="x" * (CHUNK * 2))
    response = await client.get("/api/auth/session", headers=cookies(session_token=large))

    chunks = [c.split(";")[0].split("=", 1) for c in set_cookies(response)]
    sizes = [len(value) for name, value in chunks if name.startswith(f"{SESSION}.")]
    assert sizes[:2] == [CHUNK, CHUNK] and len(sizes) == 3


async def test_secure_chunked_session_cookies_fit_in_4096_bytes_each(
    https_client: httpx.AsyncClient, ana: UserRecord
) -> None:
    name = f"__Secure-{SESSION}"
    large = token_for(ana, AuthjsTokenCodec([SECRET], salt=name), blob="x" * (CHUNK * 2))
    response = await https_client.get("/api/auth/session", headers={"cookie": f"{name}={large}"})

    lines = [line for line in set_cookies(response) if line.startswith(f"{name}.")]
    assert len(lines) == 3
    assert all(len(line.encode()) <= MAX_SET_COOKIE_BYTES for line in lines)


async def test_chunked_session_cookies_are_read_back(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    token = token_for(ana, blob="y" * CHUNK)
    parts = [token[i : i + CHUNK] for i in range(0, len(token), CHUNK)]
    jar = {f"{SESSION}.{i}": part for i, part in enumerate(parts)}

    response = await client.get("/api/auth/session", headers=cookies(**jar))

    assert response.json()["user"]["id"] == ana.id


async def test_empty_session_cookies_are_skipped_when_reading(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    token = token_for(ana)
    jar = {SESSION: "", f"{SESSION}.0": token[:100], f"{SESSION}.1": token[100:]}

    response = await client.get("/api/auth/session", headers=cookies(**jar))

    assert response.json()["user"]["id"] == ana.id


async def test_empty_session_cookies_are_not_cleared(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    jar = {SESSION: token_for(ana), f"{SESSION}.0": ""}
    response = await client.get("/api/auth/session", headers=cookies(**jar))
    assert [c.split("=")[0] for c in set_cookies(response)] == [CSRF, CALLBACK, SESSION]


# --- GET and POST /session ------------------------------------------------------------


async def test_session_without_a_cookie_is_json_null(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/session")
    assert (response.status_code, response.content) == (200, b"null")
    assert response.headers["content-type"] == "application/json"


async def test_session_with_a_v5_cookie_is_the_mapped_session(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await client.get("/api/auth/session", headers=cookies(session_token=token_for(ana)))
    assert response.json()["user"] == {
        "name": "Ana",
        "email": "ana@example.com",
        "image": "https://example.com/a.png",
        "id": ana.id,
        "role": "ADMIN",
    }


async def test_session_is_reissued_as_a_v5_token(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await client.get("/api/auth/session", headers=cookies(session_token=token_for(ana)))
    claims = CODEC.decode(session_token_from(response))
    assert claims is not None and claims["sub"] == ana.id


async def test_invalid_cookie_is_null_and_cleared(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/session", headers=cookies(session_token="garbage"))
    assert response.content == b"null"
    assert CLEAR in set_cookies(response)


async def test_next_auth_v4_token_under_the_v5_name_is_refused_and_cleared(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    v4_token = token_for(ana, TokenCodec([SECRET]))
    response = await client.get("/api/auth/session", headers=cookies(session_token=v4_token))
    assert response.content == b"null"
    assert CLEAR in set_cookies(response)


async def test_next_auth_v4_cookie_name_is_not_read(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    v4_cookie = {"next-auth.session-token": token_for(ana, TokenCodec([SECRET]))}
    response = await client.get("/api/auth/session", headers=cookies(**v4_cookie))
    assert response.content == b"null"


async def test_update_without_csrf_is_400_null(client: httpx.AsyncClient, ana: UserRecord) -> None:
    response = await client.post(
        "/api/auth/session",
        json={"data": {"a": 1}},
        headers=cookies(session_token=token_for(ana)),
    )
    assert (response.status_code, response.content) == (400, b"null")
    assert set_cookies(response) == []


async def test_update_with_csrf_reissues_the_session(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await post_verified(
        client,
        "/api/auth/session",
        as_json=True,
        fields={"data": {}},
        session_token=token_for(ana),
    )
    assert response.json()["user"]["id"] == ana.id
    assert CODEC.decode(session_token_from(response)) is not None


async def test_update_without_a_session_is_null(client: httpx.AsyncClient) -> None:
    response = await post_verified(client, "/api/auth/session", as_json=True)
    assert (response.status_code, response.content) == (200, b"null")


# --- credentials sign-in --------------------------------------------------------------


async def test_sign_in_with_the_header_answers_200_with_the_url_and_a_v5_session(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await sign_in(client, json_mode=True, callbackUrl="/dashboard")
    assert response.status_code == 200
    assert response.json() == {"url": f"{BASE}/dashboard"}
    claims = CODEC.decode(session_token_from(response))
    assert claims is not None and claims["sub"] == ana.id


async def test_json_mode_success_keeps_the_location_header(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await sign_in(client, json_mode=True, callbackUrl="/dashboard")
    assert response.headers["location"] == f"{BASE}/dashboard"


async def test_any_value_of_the_header_asks_for_json(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await sign_in(client, json_mode=True, header="")
    assert response.status_code == 200 and "url" in response.json()


async def test_sign_in_from_a_form_redirects_to_the_callback_url(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await sign_in(client, json_mode=False, callbackUrl="/dashboard")
    assert (response.status_code, response.headers["location"]) == (302, f"{BASE}/dashboard")


async def test_json_field_in_the_body_does_not_ask_for_json(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await sign_in(client, json_mode=False, json="true")
    assert response.status_code == 302


async def test_wrong_password_with_the_header_is_200_with_the_signin_error_url(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await sign_in(client, json_mode=True, password="wrong")
    assert response.status_code == 200
    assert response.json() == {
        "url": f"{BASE}/api/auth/signin?error=CredentialsSignin&code=credentials"
    }


async def test_wrong_password_from_a_form_redirects_to_signin_without_cookies(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await sign_in(client, json_mode=False, password="wrong", callbackUrl="/cart")
    assert response.status_code == 302
    assert response.headers["location"] == (
        f"{BASE}/api/auth/signin?error=CredentialsSignin&code=credentials"
    )
    assert set_cookies(response) == []


async def test_unknown_email_gets_the_same_answer_as_a_wrong_password(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    wrong = await sign_in(client, json_mode=True, password="wrong")
    unknown = await sign_in(client, json_mode=True, email="nobody@example.com")
    assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())


async def test_sign_in_without_csrf_is_missing_csrf_on_the_signin_page(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await sign_in(client, json_mode=True, csrfToken="forged")
    assert response.json() == {"url": f"{BASE}/api/auth/signin?error=MissingCSRF"}


async def test_refused_sign_in_goes_to_the_error_page_with_access_denied(
    app: AuthService, client: httpx.AsyncClient, ana: UserRecord
) -> None:
    async def refuse(_: object) -> bool:
        return False

    app.dependency_overrides[get_sign_in_callback] = lambda: refuse
    response = await sign_in(client, json_mode=True)
    assert (response.status_code, response.json()) == (
        200,
        {"url": f"{BASE}/api/auth/error?error=AccessDenied"},
    )


# --- sign-out -------------------------------------------------------------------------


async def test_sign_out_with_the_header_clears_the_session_and_answers_the_url(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await post_verified(
        client,
        "/api/auth/signout",
        headers={"X-Auth-Return-Redirect": "1"},
        session_token=token_for(ana),
        callback="%2Fcart",
    )
    assert response.json() == {"url": f"{BASE}/cart"}
    assert CLEAR in set_cookies(response)


async def test_sign_out_without_csrf_is_missing_csrf_on_the_signin_page(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/auth/signout", data={"csrfToken": "forged"})
    assert response.headers["location"] == f"{BASE}/api/auth/signin?error=MissingCSRF"


# --- CSRF with several secrets ---------------------------------------------------------


@pytest.fixture
async def rotating(database_url: str, hasher: PasswordHasher) -> AsyncIterator[httpx.AsyncClient]:
    """Auth.js v5 rotation: AUTH_SECRET_1 (new) encrypts, AUTH_SECRET (old) still decrypts."""
    async with v5_app(database_url, hasher, auth_secret_1=OTHER_SECRET) as client:
        yield client


async def test_csrf_cookie_is_hashed_with_the_comma_joined_secrets(
    rotating: httpx.AsyncClient,
) -> None:
    response = await rotating.get("/api/auth/csrf")
    cookie = unquote(set_cookies(response)[0].split(";")[0].split("=", 1)[1])
    assert csrf_state(cookie, [f"{OTHER_SECRET},{SECRET}"]).trusted


async def test_csrf_cookie_of_a_single_secret_is_replaced_after_a_rotation(
    rotating: httpx.AsyncClient,
) -> None:
    response = await rotating.get("/api/auth/csrf", headers=cookies(csrf=RECORDED_CSRF))
    assert set_cookies(response)[0].startswith(f"{CSRF}=")
    assert response.json()["csrfToken"] != unquote(RECORDED_CSRF).split("|")[0]


async def test_session_of_the_old_secret_still_works_after_a_rotation(
    rotating: httpx.AsyncClient,
) -> None:
    old = CODEC.encode({"sub": "u1", "role": "ADMIN"}, 600)
    response = await rotating.get("/api/auth/session", headers=cookies(session_token=old))
    assert response.json()["user"]["role"] == "ADMIN"


async def test_session_is_reissued_under_the_newest_secret(rotating: httpx.AsyncClient) -> None:
    old = CODEC.encode({"sub": "u1", "role": "ADMIN"}, 600)
    response = await rotating.get("/api/auth/session", headers=cookies(session_token=old))
    new_codec = AuthjsTokenCodec([OTHER_SECRET], salt=SESSION)
    assert new_codec.decode(session_token_from(response)) is not None


# --- OAuth errors ---------------------------------------------------------------------


@pytest.fixture
async def with_github(
    database_url: str, hasher: PasswordHasher
) -> AsyncIterator[httpx.AsyncClient]:
    github = {"client_id": "github-client", "client_secret": "github-secret"}
    async with v5_app(database_url, hasher, github=github) as client:
        yield client


async def test_oauth_sign_in_sets_the_authjs_state_cookie(
    with_github: httpx.AsyncClient,
) -> None:
    response = await post_verified(with_github, "/api/auth/signin/github")
    assert response.status_code == 302
    assert any(c.startswith("authjs.state=") for c in set_cookies(response))


async def test_oauth_sign_in_without_csrf_is_missing_csrf(
    with_github: httpx.AsyncClient,
) -> None:
    response = await with_github.post("/api/auth/signin/github", data={"csrfToken": "x"})
    assert response.headers["location"] == f"{BASE}/api/auth/signin?error=MissingCSRF"


async def test_provider_error_is_oauth_callback_error_on_the_signin_page(
    with_github: httpx.AsyncClient,
) -> None:
    response = await with_github.get("/api/auth/callback/github?error=access_denied")
    assert response.headers["location"] == f"{BASE}/api/auth/signin?error=OAuthCallbackError"


async def test_failed_oauth_check_is_configuration_on_the_error_page(
    with_github: httpx.AsyncClient,
) -> None:
    response = await with_github.get("/api/auth/callback/github?code=c&state=s")
    assert response.headers["location"] == f"{BASE}/api/auth/error?error=Configuration"


# --- forward auth ---------------------------------------------------------------------


async def test_verify_allows_a_v5_session_with_its_identity_headers(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    response = await client.get("/api/auth/verify", headers=cookies(session_token=token_for(ana)))
    assert response.status_code == 200
    assert (response.headers["x-auth-request-user"], response.headers["x-auth-request-role"]) == (
        ana.id,
        "ADMIN",
    )


async def test_verify_reads_a_v5_bearer_token(client: httpx.AsyncClient, ana: UserRecord) -> None:
    response = await client.get(
        "/api/auth/verify", headers={"authorization": f"Bearer {token_for(ana)}"}
    )
    assert response.status_code == 200


async def test_verify_skips_empty_session_cookies(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    jar = {SESSION: "", f"{SESSION}.0": token_for(ana)}
    response = await client.get("/api/auth/verify", headers=cookies(**jar))
    assert response.status_code == 200


async def test_verify_refuses_a_next_auth_v4_token(
    client: httpx.AsyncClient, ana: UserRecord
) -> None:
    v4_token = token_for(ana, TokenCodec([SECRET]))
    response = await client.get("/api/auth/verify", headers=cookies(session_token=v4_token))
    assert response.status_code == 401


# --- OpenAPI --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
async def test_openapi_documents_null_for_the_session(
    client: httpx.AsyncClient, method: str
) -> None:
    document = (await client.get("/openapi.json")).json()
    ok = document["paths"]["/api/auth/session"][method]["responses"]["200"]
    assert {"type": "null"} in ok["content"]["application/json"]["schema"]["anyOf"]


async def test_a_v5_openapi_document_leaves_the_v4_one_as_it_was(
    client: httpx.AsyncClient, database_url: str, hasher: PasswordHasher
) -> None:
    await client.get("/openapi.json")
    async with app_client(make_settings(database_url=database_url), hasher) as v4:
        document = (await v4.get("/openapi.json")).json()
    ok = document["paths"]["/api/auth/session"]["get"]["responses"]["200"]
    assert "anyOf" not in ok["content"]["application/json"]["schema"]
