"""Interoperability with the real next-auth 4.24.15, run through Node (tests/node/oracle.js).

Tokens go both ways: minted by next-auth and read by authsvc, and minted by authsvc and
read by next-auth's `decode` and `getToken`, as cookies (whole and chunked) and over HTTP.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI

from authsvc.tokens import TokenCodec
from authsvc.users.models import Role
from tests.conftest import SECRET, StatementCounter

pytestmark = pytest.mark.node

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "tests" / "node"
ORACLE_TIMEOUT = 30.0
CHUNK = 3933  # next-auth v4's SessionStore chunk size, restated here on purpose

SESSION_COOKIE = "next-auth.session-token"
SECURE_SESSION_COOKIE = "__Secure-next-auth.session-token"
STATE_COOKIE = "next-auth.state"
USER_ID = "ckv1user0000000000000001"
AVATAR = "https://example.com/a.png"
# The storefront's token payload, as its jwt callback builds it.
STOREFRONT: dict[str, Any] = {
    "sub": USER_ID,
    "id": USER_ID,
    "email": "ana@example.com",
    "name": "Ana",
    "role": "ADMIN",
    "fundraiserId": None,
    "avatar": AVATAR,
}
LARGE = {
    **STOREFRONT,
    "permissions": [f"permission:resource-{i:03d}:read-write" for i in range(160)],
}
MAPPED_USER = {
    "name": "Ana",
    "email": "ana@example.com",
    "id": USER_ID,
    "role": "ADMIN",
    "image": AVATAR,
}
CLEAR_SESSION = f"{SESSION_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"


class NextAuth:
    """A client for the long-lived oracle process: one JSON line out, one back."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._next_id = 0
        threading.Thread(target=self._pump, args=(process.stdout,), daemon=True).start()

    def _pump(self, stdout: IO[str] | None) -> None:
        assert stdout is not None
        for line in stdout:
            self._lines.put(line)
        self._lines.put(None)  # EOF: the process is gone

    def call(self, op: str, **params: Any) -> Any:
        assert self._process.stdin is not None
        self._next_id += 1
        request = {"op": op, "id": self._next_id, **params}
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        try:
            line = self._lines.get(timeout=ORACLE_TIMEOUT)
        except queue.Empty:
            pytest.fail(f"next-auth oracle did not answer {op} within {ORACLE_TIMEOUT}s")
        if line is None:
            pytest.fail(f"next-auth oracle exited (code {self._process.poll()}) during {op}")
        response: dict[str, Any] = json.loads(line)
        assert response.get("id") == self._next_id, response
        if not response["ok"]:
            pytest.fail(f"next-auth oracle {op} failed: {response['error']}")
        return response["result"]

    def encode(self, token: Mapping[str, Any], *, max_age: int = 3600, salt: str = "") -> str:
        result: str = self.call("encode", token=token, secret=SECRET, maxAge=max_age, salt=salt)
        return result

    def decode(self, token: str, *, salt: str = "") -> dict[str, Any] | None:
        """The payload next-auth's decode returns; its thrown error fails the test."""
        result: dict[str, Any] | None = self.call("decode", token=token, secret=SECRET, salt=salt)
        assert result is None or "error" not in result, result
        return result

    def get_token(
        self,
        cookies: Mapping[str, str],
        headers: Mapping[str, str] | None = None,
        *,
        secure_cookie: bool = False,
    ) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.call(
            "getToken",
            cookies=cookies,
            headers=headers or {},
            secret=SECRET,
            secureCookie=secure_cookie,
        )
        return result


@pytest.fixture(scope="session")
def next_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NextAuth]:
    """The real next-auth, as a Node process that lives for the whole run."""
    if not (NODE_DIR / "node_modules" / "next-auth").is_dir():
        pytest.fail("tests/node/node_modules has no next-auth: run `make install`")
    if shutil.which("node") is None:
        pytest.fail("Node.js is required for the next-auth interop tests: install Node 20")
    # getToken reads these for its defaults; the tests always pass them explicitly.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"NEXTAUTH_URL", "NEXTAUTH_SECRET", "AUTH_SECRET", "VERCEL"}
    }
    stderr_path = tmp_path_factory.mktemp("oracle") / "stderr.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            ["node", "tests/node/oracle.js"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
    try:
        yield NextAuth(process)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Helpers -----------------------------------------------------------------------------


def chunks(token: str) -> dict[str, str]:
    """`.0 … .n` session cookies, the way next-auth's SessionStore splits a token."""
    return {
        f"{SESSION_COOKIE}.{i // CHUNK}": token[i : i + CHUNK] for i in range(0, len(token), CHUNK)
    }


def cookie_header(cookies: Mapping[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def set_cookies(response: httpx.Response, *, raw: bool = False) -> dict[str, str]:
    """Cookies a response sets: as a browser sends them back (`raw`), or as Next's cookie
    parser hands them to getToken (percent-decoded)."""
    cookies: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        name, _, value = header.split(";", 1)[0].partition("=")
        cookies[name] = value if raw else unquote(value)
    return cookies


def session_cookies(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in set_cookies(response).items() if k.startswith(SESSION_COOKIE)}


async def get_session(client: httpx.AsyncClient, cookies: Mapping[str, str]) -> httpx.Response:
    """GET /session with exactly these cookies (nothing from the client's own jar)."""
    client.cookies.clear()
    return await client.get("/api/auth/session", headers={"Cookie": cookie_header(cookies)})


def without_times(claims: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k not in {"iat", "exp", "jti"}}


# next-auth → authsvc ----------------------------------------------------------------


def test_token_minted_by_next_auth_decodes_here(next_auth: NextAuth) -> None:
    token = next_auth.encode(STOREFRONT, max_age=3600)

    claims = TokenCodec([SECRET]).decode(token)

    assert claims is not None
    assert without_times(claims) == STOREFRONT
    assert claims["exp"] - claims["iat"] == 3600
    assert uuid.UUID(claims["jti"]).version == 4


async def test_chunked_cookie_minted_by_next_auth_gives_the_mapped_session(
    next_auth: NextAuth, client: httpx.AsyncClient
) -> None:
    token = next_auth.encode(LARGE)
    cookies = chunks(token)
    assert list(cookies) == [f"{SESSION_COOKIE}.{i}" for i in range(3)]

    response = await get_session(client, cookies)

    assert response.status_code == 200
    assert response.json()["user"] == MAPPED_USER


async def test_cookie_minted_by_next_auth_gives_the_mapped_session_without_sql(
    next_auth: NextAuth, client: httpx.AsyncClient, sql_statements: StatementCounter
) -> None:
    token = next_auth.encode(STOREFRONT)

    response = await get_session(client, {SESSION_COOKIE: token})

    assert response.status_code == 200
    user = response.json()["user"]
    assert (user["id"], user["role"], user["image"]) == (USER_ID, "ADMIN", AVATAR)
    assert sql_statements.statements == []


def test_state_check_cookie_from_next_auth_decodes_with_its_salt(next_auth: NextAuth) -> None:
    state = {"value": "random-state-value", "provider": "google"}
    token = next_auth.encode(state, max_age=900, salt=STATE_COOKIE)

    claims = TokenCodec([SECRET], salt=STATE_COOKIE).decode(token)

    assert claims is not None
    assert without_times(claims) == state


async def test_state_check_cookie_from_next_auth_is_not_a_session(
    next_auth: NextAuth, client: httpx.AsyncClient
) -> None:
    token = next_auth.encode({"value": "v", "provider": "google"}, max_age=900, salt=STATE_COOKIE)

    response = await get_session(client, {SESSION_COOKIE: token})

    assert response.status_code == 200
    assert response.json() == {}
    assert CLEAR_SESSION in response.headers.get_list("set-cookie")


async def test_check_cookie_payload_under_the_session_key_is_not_a_session(
    next_auth: NextAuth, client: httpx.AsyncClient
) -> None:
    # Same key as sessions (no salt), so it decrypts: only its shape gives it away (R6).
    token = next_auth.encode({"value": "v", "provider": "google"}, max_age=900)

    response = await get_session(client, {SESSION_COOKIE: token})

    assert response.json() == {}
    assert CLEAR_SESSION in response.headers.get_list("set-cookie")


# authsvc → next-auth ----------------------------------------------------------------


def test_token_encoded_here_decodes_in_next_auth(next_auth: NextAuth) -> None:
    codec = TokenCodec([SECRET])
    token = codec.encode(STOREFRONT, 3600)

    claims = next_auth.decode(token)

    assert claims == codec.decode(token)
    assert claims is not None
    assert without_times(claims) == STOREFRONT


def test_token_encoded_here_is_read_by_get_token_from_the_session_cookie(
    next_auth: NextAuth,
) -> None:
    token = TokenCodec([SECRET]).encode(STOREFRONT, 3600)

    claims = next_auth.get_token({SESSION_COOKIE: token})

    assert claims is not None
    assert without_times(claims) == STOREFRONT


def test_token_encoded_here_is_read_by_get_token_from_the_secure_session_cookie(
    next_auth: NextAuth,
) -> None:
    token = TokenCodec([SECRET]).encode(STOREFRONT, 3600)

    claims = next_auth.get_token({SECURE_SESSION_COOKIE: token}, secure_cookie=True)

    assert claims is not None
    assert without_times(claims) == STOREFRONT


def test_token_encoded_here_is_read_by_get_token_from_a_bearer_header(
    next_auth: NextAuth,
) -> None:
    token = TokenCodec([SECRET]).encode(STOREFRONT, 3600)

    claims = next_auth.get_token({}, {"authorization": f"Bearer {token}"})

    assert claims is not None
    assert without_times(claims) == STOREFRONT


async def test_chunked_cookies_set_here_reassemble_in_get_token(
    next_auth: NextAuth, client: httpx.AsyncClient
) -> None:
    # A large session comes back from /session re-encoded, so again in three chunks.
    response = await get_session(client, chunks(next_auth.encode(LARGE)))
    cookies = session_cookies(response)
    assert list(cookies) == [f"{SESSION_COOKIE}.{i}" for i in range(3)]

    claims = next_auth.get_token(cookies)

    assert claims is not None
    assert without_times(claims) == LARGE


async def test_session_refresh_issues_a_token_next_auth_reads_with_fresh_iat_exp_jti(
    next_auth: NextAuth, client: httpx.AsyncClient, app: FastAPI
) -> None:
    issued = int(time.time()) - 3600
    old = TokenCodec([SECRET]).decode(TokenCodec([SECRET]).encode(STOREFRONT, 7200, now=issued))
    assert old is not None
    before = int(time.time())

    response = await get_session(
        client, {SESSION_COOKIE: TokenCodec([SECRET]).encode(old, 7200, now=issued)}
    )
    claims = next_auth.decode(session_cookies(response)[SESSION_COOKIE])

    assert claims is not None
    assert without_times(claims) == STOREFRONT
    assert claims["iat"] >= before > old["iat"]
    assert claims["exp"] == claims["iat"] + app.state.settings.session_max_age
    assert claims["jti"] != old["jti"]
    assert uuid.UUID(claims["jti"]).version == 4


async def test_credentials_sign_in_sets_a_cookie_next_auth_decodes(
    next_auth: NextAuth, client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = await app.state.users.create(
        email="ana@example.com",
        password_hash=await app.state.hasher.hash("correct horse battery staple"),
        role=Role.ADMIN,
        name="Ana",
    )
    client.cookies.clear()
    csrf = await client.get("/api/auth/csrf")
    csrf_cookie = set_cookies(csrf, raw=True)["next-auth.csrf-token"]
    client.cookies.clear()

    response = await client.post(
        "/api/auth/callback/credentials",
        data={
            "csrfToken": csrf.json()["csrfToken"],
            "email": "ana@example.com",
            "password": "correct horse battery staple",
            "json": "true",
        },
        headers={"Cookie": cookie_header({"next-auth.csrf-token": csrf_cookie})},
    )
    assert response.status_code == 200, response.text
    claims = next_auth.decode(session_cookies(response)[SESSION_COOKIE])

    assert claims is not None
    assert claims["sub"] == claims["id"] == user.id
    assert claims["role"] == "ADMIN"
    assert claims["email"] == "ana@example.com"


# Cookie parsing ---------------------------------------------------------------------
