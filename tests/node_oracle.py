"""The real JavaScript libraries as test oracles: one long-lived Node process per library
(tests/node/oracle.js for next-auth v4, tests/node/authjs-oracle.mjs for @auth/core),
one JSON request line out and one response line back; plus the payloads and cookie helpers
both interop suites use.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote

import httpx
import pytest

from tests.conftest import SECRET
from tests.processes import stop

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "tests" / "node"
ORACLE_TIMEOUT = 30.0
# The libraries read these for their defaults; the tests always pass them explicitly.
LIBRARY_ENVIRONMENT = {"NEXTAUTH_URL", "NEXTAUTH_SECRET", "AUTH_SECRET", "AUTH_URL", "VERCEL"}

USER_ID = "ckv1user0000000000000001"
AVATAR = "https://example.com/a.png"
# The storefront's token payload, as its jwt callback builds it; LARGE needs three chunks;
# MAPPED_USER is the session.user authsvc's callbacks make of it.
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


class Oracle:
    """A client for a long-lived oracle process: one JSON line out, one back."""

    def __init__(self, process: subprocess.Popen[str], library: str) -> None:
        self._process = process
        self._library = library
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
            pytest.fail(f"{self._library} oracle did not answer {op} within {ORACLE_TIMEOUT}s")
        if line is None:
            pytest.fail(f"{self._library} oracle exited (code {self._process.poll()}) during {op}")
        response: dict[str, Any] = json.loads(line)
        assert response.get("id") == self._next_id, response
        if not response["ok"]:
            pytest.fail(f"{self._library} oracle {op} failed: {response['error']}")
        return response["result"]


class NextAuth(Oracle):
    """next-auth v4's `next-auth/jwt`, through tests/node/oracle.js."""

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


@contextmanager
def oracle_process(script: str, package: str, stderr_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """`node tests/node/<script>` for the whole run; `package` must be installed there."""
    if not (NODE_DIR / "node_modules" / package).is_dir():
        pytest.fail(f"tests/node/node_modules has no {package}: run `make install`")
    if shutil.which("node") is None:
        pytest.fail(f"Node.js is required for the {package} interop tests: install Node 20")
    env = {key: value for key, value in os.environ.items() if key not in LIBRARY_ENVIRONMENT}
    with (stderr_dir / "stderr.log").open("w") as stderr:
        process = subprocess.Popen(
            ["node", f"tests/node/{script}"],
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
        yield process
    finally:
        assert process.stdin is not None
        process.stdin.close()
        stop(process)


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


def chunked(token: str, name: str, size: int) -> dict[str, str]:
    """`.0 … .n` session cookies of `size` characters, as the libraries' SessionStore splits."""
    return {f"{name}.{i // size}": token[i : i + size] for i in range(0, len(token), size)}


async def get_session(client: httpx.AsyncClient, cookies: Mapping[str, str]) -> httpx.Response:
    """GET /session with exactly these cookies (nothing from the client's own jar)."""
    client.cookies.clear()
    return await client.get("/api/auth/session", headers={"Cookie": cookie_header(cookies)})


def without_times(claims: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k not in {"iat", "exp", "jti"}}


async def credentials_sign_in(
    client: httpx.AsyncClient,
    csrf_cookie: str,
    fields: Mapping[str, str],
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """A browser's password sign-in: GET /csrf, then POST the form with that cookie alone."""
    client.cookies.clear()
    csrf = await client.get("/api/auth/csrf")
    cookie = set_cookies(csrf, raw=True)[csrf_cookie]
    client.cookies.clear()
    return await client.post(
        "/api/auth/callback/credentials",
        data={"csrfToken": csrf.json()["csrfToken"], **fields},
        headers={"Cookie": cookie_header({csrf_cookie: cookie}), **(headers or {})},
    )
