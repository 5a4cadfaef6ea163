"""`authsvc.dependencies` used by another FastAPI service that shares the secret.

No `from __future__ import annotations` here: the service's routes are closures whose
`Depends(auth....)` annotations FastAPI must evaluate where they are defined.
"""

import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from authsvc.app import AuthService
from authsvc.callbacks import JwtParams
from authsvc.dependencies import Session, SessionAuth
from authsvc.settings import ConfigError
from authsvc.tokens import TokenCodec
from authsvc.tokens_v5 import AuthjsTokenCodec
from authsvc.users.models import Role
from tests.conftest import OTHER_SECRET, SECRET, make_settings

SESSION = "next-auth.session-token"
V5_SESSION = "authjs.session-token"
CODEC = TokenCodec([SECRET])
SHOP = "http://shop.internal"


def token(**claims: Any) -> str:
    return CODEC.encode({"sub": "u1", "email": "ana@example.com", "name": "Ana", **claims}, 600)


def orders_service(auth: SessionAuth) -> FastAPI:
    """Another team's service: no database, no call to authsvc."""
    app = FastAPI()

    @app.get("/me")
    async def me(session: Annotated[Session, Depends(auth.require_session)]) -> dict[str, Any]:
        return {"id": session.user_id, "role": session.role, "user": session.user}

    @app.get("/maybe")
    async def maybe(
        session: Annotated[Session | None, Depends(auth.get_session)],
    ) -> dict[str, Any]:
        return {"signed_in": session is not None}

    @app.get("/staff", dependencies=[Depends(auth.require_role("ADMIN", "STAFF"))])
    async def staff() -> dict[str, str]:
        return {"ok": "yes"}

    return app


@pytest.fixture
async def shop() -> AsyncIterator[httpx.AsyncClient]:
    app = orders_service(SessionAuth(make_settings()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SHOP) as http:
        yield http


def cookie(value: str) -> dict[str, str]:
    return {"cookie": f"{SESSION}={value}"}


async def test_get_session_is_none_when_signed_out(shop: httpx.AsyncClient) -> None:
    assert (await shop.get("/maybe")).json() == {"signed_in": False}


async def test_require_session_is_401_when_signed_out(shop: httpx.AsyncClient) -> None:
    response = await shop.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="authsvc"'


async def test_require_session_gives_the_session_as_authsvc_shapes_it(
    shop: httpx.AsyncClient,
) -> None:
    response = await shop.get("/me", headers=cookie(token(id="u1", role="STAFF")))
    assert response.json() == {
        "id": "u1",
        "role": "STAFF",
        "user": {"name": "Ana", "email": "ana@example.com", "id": "u1", "role": "STAFF"},
    }


async def test_a_bearer_token_works_without_a_cookie(shop: httpx.AsyncClient) -> None:
    response = await shop.get("/me", headers={"authorization": f"Bearer {token(role='ADMIN')}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        TokenCodec([OTHER_SECRET]).encode({"sub": "u1", "role": "ADMIN"}, 600),
        CODEC.encode({"sub": "u1", "role": "ADMIN"}, 60, now=time.time() - 3600),
    ],
    ids=["garbage", "other secret", "expired"],
)
async def test_an_invalid_cookie_is_signed_out(shop: httpx.AsyncClient, value: str) -> None:
    assert (await shop.get("/me", headers=cookie(value))).status_code == 401


async def test_require_role_lets_the_listed_roles_through(shop: httpx.AsyncClient) -> None:
    assert (await shop.get("/staff", headers=cookie(token(role="STAFF")))).status_code == 200


async def test_require_role_is_403_for_another_role(shop: httpx.AsyncClient) -> None:
    assert (await shop.get("/staff", headers=cookie(token(role="CUSTOMER")))).status_code == 403


async def test_require_role_is_401_when_signed_out(shop: httpx.AsyncClient) -> None:
    assert (await shop.get("/staff")).status_code == 401


async def test_a_token_without_a_role_has_none_without_a_database(
    shop: httpx.AsyncClient,
) -> None:
    assert (await shop.get("/staff", headers=cookie(token()))).status_code == 403


def test_require_role_refuses_an_unknown_role_at_start_up() -> None:
    with pytest.raises(ValueError, match="root"):
        SessionAuth(make_settings()).require_role("root")


async def test_a_jwt_callback_can_complete_the_token() -> None:
    async def from_directory(params: JwtParams) -> dict[str, Any]:
        return {**params.token, "role": params.token.get("role") or "WHOLESALE"}

    app = orders_service(SessionAuth(make_settings(), jwt_callback=from_directory))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SHOP) as http:
        response = await http.get("/me", headers=cookie(token()))
    assert response.json()["role"] == "WHOLESALE"


async def test_the_cookie_name_follows_nextauth_url_like_authsvc() -> None:
    secure_app = orders_service(SessionAuth(make_settings(url="https://shop.example.com")))
    transport = httpx.ASGITransport(app=secure_app)
    async with httpx.AsyncClient(transport=transport, base_url=SHOP) as http:
        plain = await http.get("/me", headers=cookie(token()))
        secure = await http.get("/me", headers={"cookie": f"__Secure-{SESSION}={token()}"})
    assert (plain.status_code, secure.status_code) == (401, 200)


async def test_a_session_signed_in_at_authsvc_is_read_by_the_other_service(
    app: AuthService, client: httpx.AsyncClient
) -> None:
    await app.services.users.create(
        email="ana@example.com",
        name="Ana",
        password_hash=await app.services.hasher.hash("correct-horse-battery"),
        role=Role.ADMIN,
    )
    csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
    form = {"email": "ana@example.com", "password": "correct-horse-battery", "csrfToken": csrf}
    await client.post("/api/auth/callback/credentials", data=form)
    shop = orders_service(SessionAuth(app.services.settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shop), base_url=SHOP) as http:
        response = await http.get("/staff", headers=cookie(client.cookies[SESSION]))
    assert response.status_code == 200


# --- Auth.js v5 mode ------------------------------------------------------------------


@pytest.fixture
async def v5_shop() -> AsyncIterator[httpx.AsyncClient]:
    app = orders_service(SessionAuth(make_settings(mode="authjs-v5")))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SHOP) as http:
        yield http


def v5_token(**claims: Any) -> str:
    codec = AuthjsTokenCodec([SECRET], salt=V5_SESSION)
    return codec.encode({"sub": "u1", "email": "ana@example.com", **claims}, 600)


async def test_v5_mode_reads_the_authjs_session_cookie(v5_shop: httpx.AsyncClient) -> None:
    response = await v5_shop.get(
        "/me", headers={"cookie": f"{V5_SESSION}={v5_token(role='STAFF')}"}
    )
    assert response.json()["role"] == "STAFF"


async def test_v5_mode_skips_empty_session_cookies(v5_shop: httpx.AsyncClient) -> None:
    jar = f"{V5_SESSION}=; {V5_SESSION}.0={v5_token(role='STAFF')}"
    assert (await v5_shop.get("/me", headers={"cookie": jar})).status_code == 200


async def test_v5_mode_refuses_a_next_auth_v4_token(v5_shop: httpx.AsyncClient) -> None:
    response = await v5_shop.get("/me", headers={"cookie": f"{V5_SESSION}={token(role='STAFF')}"})
    assert response.status_code == 401


async def test_v4_mode_refuses_an_authjs_v5_token(shop: httpx.AsyncClient) -> None:
    assert (await shop.get("/me", headers=cookie(v5_token(role="STAFF")))).status_code == 401


# --- in another service's process ---------------------------------------------------------
# A service that imports authsvc.dependencies gets FastAPI and the token and cookie code,
# none of authsvc's database, OAuth, metrics, throttling or command-line stack, and reads
# only the settings a session needs (its own DATABASE_URL is its business).

SERVER_ONLY = (
    "sqlalchemy",
    "alembic",
    "asyncpg",
    "aiosqlite",
    "httpx_oauth",
    "prometheus_client",
    "limits",
    "redis",
    "argon2",
    "authsvc.db",
    "authsvc.app",
    "authsvc.cli",
    "authsvc.sign_in.credentials_flow",
    "authsvc.sign_in.oauth_flow",
    "authsvc.metrics",
    "authsvc.throttle",
    "authsvc.users.repository",
)
# Loads the modules, then says which ones and how long it took, as JSON.
IMPORT_PROBE = """
import json, sys, time
started = time.perf_counter()
import {module}
print(json.dumps({{"seconds": time.perf_counter() - started, "modules": sorted(sys.modules)}}))
"""
# What authsvc.dependencies may add to FastAPI's own modules: the JWE codecs (python-jose,
# cryptography), pydantic-settings and authsvc's session code. It was ~410 (the server).
MAX_MODULES_BEYOND_FASTAPI = 200


def import_in_a_fresh_interpreter(module: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_importing_the_dependencies_loads_no_server_module() -> None:
    loaded = set(import_in_a_fresh_interpreter("authsvc.dependencies")["modules"])
    assert sorted(loaded & set(SERVER_ONLY)) == []


def test_importing_the_dependencies_adds_few_modules_to_fastapi_s(
    record_property: Callable[[str, object], None],
) -> None:
    fastapi_alone = import_in_a_fresh_interpreter("fastapi")
    dependencies = import_in_a_fresh_interpreter("authsvc.dependencies")
    beyond = len(dependencies["modules"]) - len(fastapi_alone["modules"])
    # Measured, not asserted (timings belong in bench/): shown with `pytest -rA`-style reports.
    record_property("modules", len(dependencies["modules"]))
    record_property("seconds", round(dependencies["seconds"], 3))
    assert beyond <= MAX_MODULES_BEYOND_FASTAPI


@pytest.fixture
def service_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Another team's service: its own working directory and a MySQL DATABASE_URL."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("NEXTAUTH_URL", SHOP)
    monkeypatch.setenv("DATABASE_URL", "mysql://orders:pw@db.internal:3306/orders")


@pytest.mark.usefixtures("service_environment")
async def test_from_env_reads_sessions_in_a_service_with_its_own_database_url() -> None:
    app = orders_service(SessionAuth.from_env())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SHOP) as http:
        response = await http.get("/me", headers=cookie(token(id="u1", role="STAFF")))
    assert response.json()["role"] == "STAFF"


@pytest.mark.usefixtures("service_environment")
def test_from_env_still_refuses_a_missing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEXTAUTH_SECRET")
    with pytest.raises(ConfigError, match="NEXTAUTH_SECRET is not set"):
        SessionAuth.from_env()
