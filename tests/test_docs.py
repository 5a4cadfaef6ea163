"""The documentation stays true: example configs, the configuration table, the links."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from authsvc.forward_auth import IDENTITY_HEADERS
from authsvc.settings import Settings
from tests.processes import EXAMPLES, ROOT

VERIFY = "/api/auth/verify"
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
