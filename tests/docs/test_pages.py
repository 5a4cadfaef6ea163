"""The documentation stays true: example configs, the configuration table, the links."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from authsvc.cli import run
from authsvc.cookies import CookiePolicy
from authsvc.forward_auth import IDENTITY_HEADERS
from authsvc.settings import Settings, load_settings
from authsvc.tokens import TokenCodec
from authsvc.users.models import Role
from tests.conftest import BASE, SECRET
from tests.processes import EXAMPLES, ROOT

VERIFY = "/api/auth/verify"
PASSWORD = "correct-horse-battery"
IDENTITY = {name.lower() for name in IDENTITY_HEADERS}


def example(name: str) -> str:
    return (EXAMPLES / name).read_text()


def load(name: str) -> Any:
    return yaml.safe_load(example(name))


def find(node: Any, key: str) -> list[Any]:
    """Every value stored under `key`, at any depth."""
    found: list[Any] = []
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key:
                found.append(value)
            found += find(value, key)
    elif isinstance(node, list):
        for value in node:
            found += find(value, key)
    return found


def test_every_example_is_linked_from_the_integrations_page() -> None:
    page = (ROOT / "docs" / "integrations.md").read_text()
    for path in EXAMPLES.iterdir():
        assert f"(examples/{path.name})" in page, path.name


def test_the_readme_links_the_integrations_and_deployment_pages() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "(docs/integrations.md)" in readme and "(docs/deployment.md)" in readme


def test_every_authsvc_setting_is_in_the_readme_configuration_table() -> None:
    readme = (ROOT / "README.md").read_text()
    names = [
        field.validation_alias
        for field in Settings.model_fields.values()
        if isinstance(field.validation_alias, str) and field.validation_alias.startswith("AUTHSVC_")
    ]
    missing = [name for name in names if f"| `{name}` |" not in readme]
    assert missing == []


@pytest.mark.parametrize("name", ["nginx.conf", "Caddyfile"])
def test_the_run_examples_copy_every_identity_header(name: str) -> None:
    mentioned = {h.lower() for h in re.findall(r"X-Auth-Request-[A-Za-z-]+", example(name))}
    assert mentioned >= IDENTITY


def test_traefik_copies_every_identity_header_from_verify() -> None:
    forward_auths = find(load("traefik.yml"), "forwardAuth")
    assert forward_auths
    for middleware in forward_auths:
        assert middleware["address"].split("?")[0].endswith(VERIFY)
        assert {h.lower() for h in middleware["authResponseHeaders"]} == IDENTITY
        assert re.match(middleware["authResponseHeadersRegex"], "X_Auth_Request_User")
        assert middleware["trustForwardHeader"] is False


def test_envoy_asks_verify_with_the_cookie_and_fails_closed_within_200_ms() -> None:
    [ext_authz] = [
        f["typed_config"]
        for f in find(load("envoy.yaml"), "http_filters")[0]
        if f["name"] == "envoy.filters.http.ext_authz"
    ]
    service = ext_authz["http_service"]
    assert service["path_prefix"] == VERIFY
    assert float(service["server_uri"]["timeout"].rstrip("s")) <= 0.2
    assert ext_authz["failure_mode_allow"] is False
    assert {"exact": "cookie"} in ext_authz["allowed_headers"]["patterns"]
    upstream = service["authorization_response"]["allowed_upstream_headers"]["patterns"]
    assert {pattern["exact"] for pattern in upstream} == IDENTITY


# --- the Python examples run ---------------------------------------------------------------


def python_block_after(document: str, heading: str) -> str:
    """The first ```python block after `heading` in `document` (a path under the root)."""
    text = (ROOT / document).read_text()
    rest = text[text.index(heading) :]
    match = re.search(r"```python\n(.*?)```", rest, re.DOTALL)
    assert match is not None, f"no python block after {heading!r} in {document}"
    return match.group(1)


def run_example(code: str, name: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": name}
    exec(compile(code, name, "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace


@pytest.mark.usefixtures("example_environment")
async def test_the_readme_callback_example_keeps_every_users_role() -> None:
    app = run_example(python_block_after("README.md", "### Your own callbacks"), "shop_auth")["app"]
    users, hasher = app.services.users, app.services.hasher
    await users.create(
        email="ana@example.com", password_hash=await hasher.hash(PASSWORD), role=Role.ADMIN
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        csrf = (await client.get("/api/auth/csrf")).json()["csrfToken"]
        form = {"email": "ana@example.com", "password": PASSWORD, "csrfToken": csrf}
        assert (await client.post("/api/auth/callback/credentials", data=form)).status_code == 302
        verify = await client.get(VERIFY)
        session = (await client.get("/api/auth/session")).json()
        claims = TokenCodec([SECRET]).decode(client.cookies["next-auth.session-token"])
    assert (verify.status_code, verify.headers["x-auth-request-role"]) == (200, "ADMIN")
    assert session["user"]["role"] == "ADMIN"
    assert claims is not None and claims["tier"] == "gold"
    await app.services.aclose()


# --- docs/deployment.md's commands, as far as they run without Docker ----------------------


def sh_block_after(document: str, heading: str) -> str:
    text = (ROOT / document).read_text()
    rest = text[text.index(heading) :]
    match = re.search(r"```sh\n(.*?)```", rest, re.DOTALL)
    assert match is not None, f"no sh block after {heading!r} in {document}"
    return match.group(1)


def test_the_documented_docker_run_starts_the_image_with_settings_that_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    command = sh_block_after("docs/deployment.md", "## The container")
    # The command runs literally in bash, with `docker` standing in to hand back its arguments.
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "docker() { printf '%s\\0' \"$@\"; }\n" + command],
        capture_output=True,
        check=True,
        text=True,
    )
    args = result.stdout.split("\0")[:-1]
    assert args[:3] == ["run", "-p", "8000:8000"] and args[-1] == "authsvc"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "docker build -t authsvc ." in dockerfile and "EXPOSE 8000" in dockerfile
    variables = [value for flag, value in itertools.pairwise(args) if flag == "-e"]
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("NEXTAUTH_", "AUTHSVC_", "AUTH_")) or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    for variable in variables:
        monkeypatch.setenv(*variable.split("=", 1))

    settings = load_settings()

    assert settings.public_url.origin == "https://shop.example.com"
    assert settings.trusted_proxies == ["10.0.0.0/8"]


def test_the_documented_subdomain_settings_load_as_a_dotenv_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    block = sh_block_after("docs/deployment.md", "## Frontends on another subdomain")
    (tmp_path / ".env").write_text(f"NEXTAUTH_SECRET={SECRET}\n{block}")
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("NEXTAUTH_", "AUTHSVC_", "AUTH_")):
            monkeypatch.delenv(name)

    settings = load_settings()

    assert CookiePolicy.from_settings(settings).domain == "example.com"
    assert settings.cors_origins == ["https://shop.example.com"]


def test_the_readme_lists_every_command_and_only_those(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = (ROOT / "README.md").read_text()
    listing = text[text.index("## Command line") :]
    listing = listing[: listing.index("```\n", listing.index("```text") + 7)]
    documented = set(re.findall(r"^authsvc ([a-z-]+)", listing, re.MULTILINE))
    with pytest.raises(SystemExit):
        run(["--help"])
    commands = set(re.findall(r"^    ([a-z-]+)(?:  |\n)", capsys.readouterr().out, re.MULTILINE))
    assert documented == commands
