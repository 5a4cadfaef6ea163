"""`authsvc serve --app MODULE:ATTR` and AUTHSVC_APP: your app, served with everything
`serve` adds; a wrong name is one line and a non-zero exit before any port is bound.

Each test runs the real `authsvc` command. The port it is given is held by a listening
socket of the test's own: an attempt to bind it would end in "address already in use",
so an answer about the app proves the check came first.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from authsvc.tokens import TokenCodec
from tests.conftest import SECRET
from tests.processes import AUTHSVC, ROOT, authsvc_environment, run_authsvc

ANA = ["--email", "ana@example.com", "--password", "correct-horse"]
FORM = {"email": "ana@example.com", "password": "correct-horse"}

APPS = """
from fastapi import FastAPI

from authsvc.app import create_app
from authsvc.callbacks import Callbacks, JwtParams, default_jwt
from authsvc.tokens import Claims


async def jwt(params: JwtParams) -> Claims:
    return {**await default_jwt(params), "shop": "eu"}


def make_app():
    return create_app(callbacks=Callbacks(jwt=jwt))


def make_fastapi():
    return FastAPI()


def make_broken():
    raise RuntimeError("the shop's factory is broken")


def needs_arguments(region):
    return create_app()


not_an_app = FastAPI()
number = 42
"""


# An app built at import, with its own (wrong) settings.
EAGER = """
from authsvc.app import create_app
from authsvc.settings import Settings

app = create_app(Settings(secret="short"))
"""


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    (tmp_path / "shop_auth.py").write_text(APPS)
    (tmp_path / "shop_broken.py").write_text("import shop_missing_dependency\n")
    return tmp_path


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def serve(directory: Path, port: int, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AUTHSVC), "serve", "--port", str(port), *args],
        cwd=directory,
        env=authsvc_environment(
            url="http://localhost:3000",
            database_url=f"sqlite+aiosqlite:///{directory / 'authsvc.db'}",
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("shop_nowhere:app", "app module 'shop_nowhere' not found"),
        ("shop_auth:missing", "module 'shop_auth' has no attribute 'missing'"),
        ("shop_auth", "must be MODULE:ATTR"),
        ("shop_auth:not_an_app", "is a FastAPI, not an app made by authsvc.app.create_app"),
        ("shop_auth:number", "is a int, not an app made by authsvc.app.create_app"),
        ("shop_auth:make_fastapi", "returned a FastAPI, not an authsvc app"),
        ("shop_auth:needs_arguments", "not an app made by authsvc.app.create_app"),
        ("shop_auth:make_broken", "failed: RuntimeError: the shop's factory is broken"),
        ("shop_broken:app", "No module named 'shop_missing_dependency'"),
    ],
)
def test_a_wrong_app_is_one_line_and_exit_1_before_the_port_is_bound(
    directory: Path, taken_port: int, spec: str, message: str
) -> None:
    result = serve(directory, taken_port, "--app", spec)
    assert (result.returncode, result.stdout) == (1, "")
    [line] = result.stderr.splitlines()
    assert line.startswith("authsvc: error: ") and message in line
    assert spec.split(":")[0] in line


def test_authsvc_app_names_the_app_as_app_does(directory: Path, taken_port: int) -> None:
    result = serve(directory, taken_port, AUTHSVC_APP="shop_auth:missing")
    assert result.returncode == 1
    assert "module 'shop_auth' has no attribute 'missing'" in result.stderr


def test_the_app_option_wins_over_authsvc_app(directory: Path, taken_port: int) -> None:
    result = serve(directory, taken_port, "--app", "shop_auth:number", AUTHSVC_APP="nowhere:app")
    assert "shop_auth:number" in result.stderr and "nowhere" not in result.stderr


def test_a_configuration_error_in_the_app_module_is_the_usual_one_line(
    directory: Path, taken_port: int
) -> None:
    (directory / "shop_eager.py").write_text(EAGER)
    result = serve(directory, taken_port, "--app", "shop_eager:app")
    [line] = result.stderr.splitlines()
    assert result.returncode == 1 and "NEXTAUTH_SECRET is too short" in line


@pytest.mark.parametrize("spec", ["shop_auth:make_app", "shop_app:app"])
def test_a_factory_or_an_app_object_is_served_with_its_callbacks(
    directory: Path, spec: str
) -> None:
    (directory / "shop_app.py").write_text("from shop_auth import make_app\napp = make_app()\n")
    with run_authsvc(directory, public_url="http://localhost:3000", args=["--app", spec]) as server:
        server.cli("create-user", *ANA)
        with httpx.Client(base_url=server.url) as client:
            csrf = client.get("/api/auth/csrf").json()["csrfToken"]
            client.post("/api/auth/callback/credentials", data={"csrfToken": csrf, **FORM})
            verify = client.get("/api/auth/verify")
            big = client.get("/api/auth/session", headers={"X-Big": "x" * 100 * 1024})
    assert (verify.status_code, verify.headers["x-auth-request-role"]) == (200, "CUSTOMER")
    assert big.status_code == 431


def test_authsvc_app_serves_the_app_with_two_workers(directory: Path) -> None:
    with run_authsvc(
        directory, public_url="http://localhost:3000", workers=2, AUTHSVC_APP="shop_auth:make_app"
    ) as server:
        assert httpx.get(f"{server.url}/api/auth/session").json() == {}


def readme_block_after(heading: str, language: str) -> str:
    text = (ROOT / "README.md").read_text()
    rest = text[text.index(heading) :]
    match = re.search(rf"```{language}\n(.*?)```", rest, re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_readme_command_serves_the_readme_callback_example(tmp_path: Path) -> None:
    (tmp_path / "shop_auth.py").write_text(readme_block_after("### Your own callbacks", "python"))
    command = readme_block_after("Run it with everything", "sh").split("#")[0].split()
    assert command[:2] == ["authsvc", "serve"]
    with run_authsvc(tmp_path, public_url="http://localhost:3000", args=command[2:]) as server:
        server.cli("create-user", "--role", "ADMIN", *ANA)
        with httpx.Client(base_url=server.url) as client:
            csrf = client.get("/api/auth/csrf").json()["csrfToken"]
            client.post("/api/auth/callback/credentials", data={"csrfToken": csrf, **FORM})
            verify = client.get("/api/auth/verify")
            claims = TokenCodec([SECRET]).decode(client.cookies["next-auth.session-token"])
    assert (verify.status_code, verify.headers["x-auth-request-role"]) == (200, "ADMIN")
    assert claims is not None and claims["tier"] == "gold"
