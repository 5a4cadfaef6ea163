"""Smoke test of an installed authsvc on one interpreter: `python -m tests.smoke`.

`.ci/run` runs the whole suite on the newest supported Python and this on the others, each
in its own virtualenv with only the runtime dependencies (`make smoke`). It needs nothing
but the installed package (and httpx, one of its dependencies): the CLI, then a real
`authsvc serve` on loopback where a user signs in with email and password and the session
reads back through `/api/auth/session` and `/api/auth/verify`. Any failure exits non-zero.
"""

from __future__ import annotations

import importlib
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
EMAIL = "smoke@example.com"
PASSWORD = "correct-horse-battery"
SECRET = "smoke-test-secret-not-for-production-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cli(*args: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [str(BIN / "authsvc"), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"smoke: `authsvc {' '.join(args[:1])}` failed: {done.stderr.strip()}")
    return done.stdout


def wait_until_up(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"smoke: authsvc serve exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("smoke: authsvc serve did not answer /healthz within 30 s")


def sign_in_and_read_the_session(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        csrf = http.get("/api/auth/csrf").json()["csrfToken"]
        signed_in = http.post(
            "/api/auth/callback/credentials",
            data={"email": EMAIL, "password": PASSWORD, "csrfToken": csrf, "json": "true"},
        )
        assert signed_in.status_code == 200, signed_in.text
        session = http.get("/api/auth/session").json()
        assert session["user"]["email"] == EMAIL, session
        assert session["user"]["role"] == "ADMIN", session
        verified = http.get("/api/auth/verify")
        assert verified.status_code == 200, verified.status_code
        assert verified.headers["x-auth-request-email"] == EMAIL
        http.cookies.clear()
        assert http.get("/api/auth/verify").status_code == 401


def main() -> None:
    # The service and the library import on this interpreter.
    importlib.import_module("authsvc.app")
    importlib.import_module("authsvc.dependencies")

    with tempfile.TemporaryDirectory(prefix="authsvc-smoke-") as scratch:
        directory = Path(scratch)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("NEXTAUTH_", "AUTHSVC_", "AUTH_")) and name != "DATABASE_URL"
        }
        env.update(
            NEXTAUTH_SECRET=SECRET,
            NEXTAUTH_URL=url,
            DATABASE_URL=f"sqlite+aiosqlite:///{directory / 'authsvc.db'}",
        )
        assert cli("--version", env=env, cwd=directory).startswith("authsvc ")
        assert len(cli("gen-secret", env=env, cwd=directory).strip()) >= 32
        cli("migrate", env=env, cwd=directory)
        cli(
            "create-user", "--email", EMAIL, "--password", PASSWORD, "--role", "ADMIN",
            env=env, cwd=directory,
        )  # fmt: skip
        server = subprocess.Popen(
            [str(BIN / "authsvc"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_up(url, server)
            sign_in_and_read_the_session(url)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"smoke: Python {platform.python_version()}: CLI, serve, sign-in, session, verify ok")


if __name__ == "__main__":
    main()
