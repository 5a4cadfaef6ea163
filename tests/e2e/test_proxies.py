"""Real nginx (auth_request) and real Caddy (forward_auth) in front of an app, with authsvc
deciding, all on loopback. The proxies run docs/examples/nginx.conf and
docs/examples/Caddyfile as they are, with only the ports changed.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.processes import (
    EXAMPLE_APP,
    EXAMPLE_AUTHSVC,
    EXAMPLE_PROXY,
    Authsvc,
    headers_named,
    render_example,
    require_binary,
    run_authsvc,
    run_upstream,
    stop,
    wait_until_up,
)
from tests.servers import free_port

PASSWORD = "correct-horse-battery"
IDENTITY = ("User", "Email", "Preferred-Username", "Groups", "Role", "Name")


@dataclass(frozen=True)
class Stack:
    proxy: str  # the proxy's base URL: the only address a client uses
    authsvc: Authsvc
    users: dict[str, str]  # email -> user id


def start_nginx(directory: Path, site: str, port: int) -> subprocess.Popen[bytes]:
    binary = require_binary("nginx")
    (directory / "site.conf").write_text(site)
    temp = "\n".join(
        f"    {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (directory / "nginx.conf").write_text(
        f"{'user root;' if os.geteuid() == 0 else ''}\n"
        "daemon off;\nworker_processes 1;\n"
        f"pid {directory / 'nginx.pid'};\n"
        f"error_log {directory / 'error.log'} warn;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n    access_log off;\n{temp}\n    include {directory / 'site.conf'};\n}}\n"
    )
    log = directory / "nginx.out"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [binary, "-p", str(directory), "-e", str(directory / "error.log"), "-c", "nginx.conf"],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    wait_until_up(f"http://127.0.0.1:{port}/api/auth/csrf", process, log, 20)
    return process


def start_caddy(directory: Path, site: str, port: int) -> subprocess.Popen[bytes]:
    binary = require_binary("caddy")
    (directory / "site.caddy").write_text(site)
    (directory / "Caddyfile").write_text(
        f"{{\n\tadmin off\n\tauto_https off\n}}\n\nimport {directory / 'site.caddy'}\n"
    )
    env = {**os.environ, "HOME": str(directory), "XDG_DATA_HOME": str(directory)}
    env["XDG_CONFIG_HOME"] = str(directory)
    log = directory / "caddy.out"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [binary, "run", "--config", str(directory / "Caddyfile"), "--adapter", "caddyfile"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    wait_until_up(f"http://127.0.0.1:{port}/api/auth/csrf", process, log, 20)
    return process


PROXIES = {
    "nginx": ("nginx.conf", start_nginx),
    "caddy": ("Caddyfile", start_caddy),
}


@pytest.fixture(scope="module", params=list(PROXIES))
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    example, start = PROXIES[request.param]
    directory = tmp_path_factory.mktemp(request.param)
    proxy_port = free_port()
    public = f"http://127.0.0.1:{proxy_port}"
    with run_upstream() as upstream, run_authsvc(directory, public_url=public) as authsvc:
        users = {}
        for email, role in (("ana@example.com", "ADMIN"), ("cody@example.com", "CUSTOMER")):
            out = authsvc.cli(
                "create-user", "--email", email, "--password", PASSWORD, "--role", role
            )
            users[email] = out.split()[2]  # "created user <id> <email> role R"
        site = render_example(
            example,
            {
                EXAMPLE_AUTHSVC: authsvc.url.removeprefix("http://"),
                EXAMPLE_APP: upstream,
                EXAMPLE_PROXY: str(proxy_port),
            },
        )
        process = start(directory, site, proxy_port)
        try:
            yield Stack(proxy=public, authsvc=authsvc, users=users)
        finally:
            stop(process)


def signed_in(stack: Stack, email: str) -> httpx.Client:
    """A browser-like client that signed in through the proxy, like next-auth/react."""
    http = httpx.Client(base_url=stack.proxy, timeout=10)
    csrf = http.get("/api/auth/csrf").json()["csrfToken"]
    form = {"email": email, "password": PASSWORD, "csrfToken": csrf, "json": "true"}
    response = http.post("/api/auth/callback/credentials", data=form)
    assert response.status_code == 200, response.text
    assert http.cookies.get("next-auth.session-token")
    return http


@pytest.fixture(scope="module")
def ana(stack: Stack) -> Iterator[httpx.Client]:
    http = signed_in(stack, "ana@example.com")
    yield http
    http.close()


@pytest.fixture(scope="module")
def cody(stack: Stack) -> Iterator[httpx.Client]:
    http = signed_in(stack, "cody@example.com")
    yield http
    http.close()


@pytest.fixture
def anonymous(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.proxy, timeout=10) as http:
        yield http


def echoed(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_signed_in_request_reaches_the_app_with_the_identity_headers(
    stack: Stack, ana: httpx.Client
) -> None:
    echo = echoed(ana.get("/orders/1?page=2"))
    assert echo["path"] == "/orders/1?page=2"
    received = {name: headers_named(echo, f"X-Auth-Request-{name}") for name in IDENTITY}
    assert received == {
        "User": [stack.users["ana@example.com"]],
        "Email": ["ana@example.com"],
        "Preferred-Username": ["ana@example.com"],
        "Groups": ["ADMIN"],
        "Role": ["ADMIN"],
        "Name": ["ana@example.com"],
    }


def test_a_request_without_a_session_gets_401_and_never_reaches_the_app(
    anonymous: httpx.Client,
) -> None:
    response = anonymous.get("/orders/1")
    assert response.status_code == 401
    assert '"headers"' not in response.text


def test_a_request_with_a_forged_session_cookie_gets_401(anonymous: httpx.Client) -> None:
    response = anonymous.get("/orders/1", headers={"cookie": "next-auth.session-token=forged"})
    assert response.status_code == 401


def test_a_user_without_an_allowed_role_gets_403(cody: httpx.Client) -> None:
    assert cody.get("/admin/reports").status_code == 403


def test_a_user_with_an_allowed_role_reaches_the_staff_pages(ana: httpx.Client) -> None:
    assert headers_named(echoed(ana.get("/admin/reports")), "X-Auth-Request-Role") == ["ADMIN"]


@pytest.mark.parametrize(
    "spoofed",
    ["X-Auth-Request-User", "x-auth-request-user", "X_Auth_Request_User"],
)
def test_a_client_sent_identity_header_never_reaches_the_app(
    stack: Stack, cody: httpx.Client, spoofed: str
) -> None:
    echo = echoed(cody.get("/orders/1", headers={spoofed: "admin-id"}))
    assert headers_named(echo, "X-Auth-Request-User") == [stack.users["cody@example.com"]]


def test_a_client_sent_header_the_proxy_does_not_set_is_also_dropped(cody: httpx.Client) -> None:
    echo = echoed(cody.get("/orders/1", headers={"X-Auth-Request-Access-Token": "stolen"}))
    assert headers_named(echo, "X-Auth-Request-Access-Token") == []


def test_a_person_without_a_session_is_sent_to_the_sign_in_page(anonymous: httpx.Client) -> None:
    response = anonymous.get("/account/settings")
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert (location.path, location.query) == ("/api/auth/signin", "callbackUrl=/account/settings")


def test_the_sign_in_page_is_served_on_the_apps_origin(anonymous: httpx.Client) -> None:
    response = anonymous.get("/api/auth/signin")
    assert response.status_code == 200
    assert 'name="csrfToken"' in response.text


def test_signing_out_through_the_proxy_ends_access(stack: Stack) -> None:
    http = signed_in(stack, "cody@example.com")
    csrf = http.get("/api/auth/csrf").json()["csrfToken"]
    http.post("/api/auth/signout", data={"csrfToken": csrf, "json": "true"})
    assert http.get("/orders/1").status_code == 401
    http.close()


def test_authsvc_logs_the_original_request_as_json_without_tokens(
    stack: Stack, cody: httpx.Client
) -> None:
    cody.get("/admin/audit?secret=1")
    lines = [json.loads(line) for line in stack.authsvc.log.read_text().splitlines() if line]
    decisions = [line for line in lines if line.get("logger") == "authsvc.verify"]
    assert {
        "outcome": "forbidden",
        "method": "GET",
        "path": "/admin/audit",
        "user": stack.users["cody@example.com"],
    }.items() <= decisions[-1].items()
    text = stack.authsvc.log.read_text()
    assert "eyJhbGciOiJkaXIi" not in text and PASSWORD not in text and "secret=1" not in text
