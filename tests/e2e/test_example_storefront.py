"""The example storefront package (examples/storefront) run as a user would run it:
`authsvc serve --app storefront_auth.app:create_storefront_app`, a real process, with the
real OpenID Connect test provider and the real next-auth 4.24.15 reading its cookies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from storefront_auth import callbacks

from authsvc.app import create_app
from authsvc.callbacks import Account, SignInParams
from authsvc.users.models import Role
from authsvc.users.repository import UserRecord
from tests.conftest import make_settings
from tests.node_oracle import NextAuth, set_cookies
from tests.processes import ROOT, Authsvc, run_authsvc
from tests.servers import free_port, node_idp

pytestmark = pytest.mark.node

PACKAGE = ROOT / "examples" / "storefront"
APP = "storefront_auth.app:create_storefront_app"
PASSWORD = "correct-horse-battery"
SESSION = "next-auth.session-token"
USERS = [
    {"email": "fay@example.com", "name": "Fay", "role": "FUNDRAISER", "fundraiserId": "fr_77"},
    # A fundraiserId left on a user who is no longer a fundraiser must not reach the token.
    {"email": "ana@example.com", "name": "Ana", "role": "ADMIN", "fundraiserId": "fr_old"},
    {"email": "sam@example.com", "name": "Sam", "role": "STAFF"},
]


@dataclass(frozen=True)
class Storefront:
    server: Authsvc
    issuer: str


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    directory: Path = tmp_path_factory.mktemp("storefront")
    port = free_port()
    with (
        node_idp() as issuer,
        run_authsvc(
            directory,
            public_url=f"http://127.0.0.1:{port}",
            port=port,
            args=["--app", APP],
            PYTHONPATH=str(PACKAGE),
            OIDC_ISSUER=issuer,
            OIDC_CLIENT_ID="storefront",
            OIDC_CLIENT_SECRET="oidc-client-secret",
            # Staff accounts exist before their first single sign-on.
            AUTHSVC_LINK_ACCOUNTS_BY_EMAIL="true",
        ) as server,
    ):
        users = directory / "users.jsonl"
        password = PasswordHasher().hash(PASSWORD)
        users.write_text("".join(json.dumps({**u, "password": password}) + "\n" for u in USERS))
        server.cli("import-users", "--file", str(users))
        yield Storefront(server, issuer)


def browser(storefront: Storefront) -> httpx.Client:
    return httpx.Client(base_url=storefront.server.url, follow_redirects=True, timeout=10)


def password_sign_in(client: httpx.Client, email: str) -> httpx.Response:
    csrf = client.get("/api/auth/csrf").json()["csrfToken"]
    return client.post(
        "/api/auth/callback/credentials",
        data={"csrfToken": csrf, "email": email, "password": PASSWORD, "json": "true"},
    )


def single_sign_on(client: httpx.Client, email: str) -> httpx.Response:
    """Through the OIDC provider and back to /session, following every redirect."""
    csrf = client.get("/api/auth/csrf").json()["csrfToken"]
    return client.post(
        "/api/auth/signin/oidc",
        params={"login_hint": email},
        data={"csrfToken": csrf, "callbackUrl": "/api/auth/session"},
    )


def test_a_fundraiser_gets_the_fundraiser_id_and_the_storefronts_claim_in_the_session(
    storefront: Storefront,
) -> None:
    with browser(storefront) as client:
        assert password_sign_in(client, "fay@example.com").status_code == 200
        user = client.get("/api/auth/session").json()["user"]
    assert (user["role"], user["fundraiserId"]) == ("FUNDRAISER", "fr_77")
    assert user["permissions"] == ["fundraiser:read"]


def test_an_admin_never_carries_a_fundraiser_id(storefront: Storefront) -> None:
    with browser(storefront) as client:
        password_sign_in(client, "ana@example.com")
        user = client.get("/api/auth/session").json()["user"]
    assert (user["role"], "fundraiserId" in user) == ("ADMIN", False)
    assert user["permissions"] == ["orders:read", "orders:write", "users:manage"]


def test_verify_answers_the_identity_headers_of_the_storefronts_session(
    storefront: Storefront,
) -> None:
    with browser(storefront) as client:
        password_sign_in(client, "fay@example.com")
        verify = client.get("/api/auth/verify")
    assert verify.status_code == 200
    assert verify.headers["x-auth-request-email"] == "fay@example.com"
    assert verify.headers["x-auth-request-role"] == "FUNDRAISER"


def test_next_auth_get_token_reads_the_cookie_with_the_storefronts_claim(
    storefront: Storefront, next_auth: NextAuth
) -> None:
    with browser(storefront) as client:
        response = password_sign_in(client, "fay@example.com")
    token = next_auth.get_token({SESSION: set_cookies(response)[SESSION]})
    assert token is not None
    assert token["permissions"] == ["fundraiser:read"]
    assert (token["role"], token["fundraiserId"]) == ("FUNDRAISER", "fr_77")


def test_staff_cannot_sign_in_with_a_password(storefront: Storefront) -> None:
    with browser(storefront) as client:
        response = password_sign_in(client, "sam@example.com")
        assert SESSION not in client.cookies
    assert "error=AccessDenied" in response.json()["url"]


def test_staff_sign_in_through_the_company_sso_with_the_avatar_from_the_profile(
    storefront: Storefront,
) -> None:
    with browser(storefront) as client:
        user = single_sign_on(client, "sam@example.com").json()["user"]
        verify = client.get("/api/auth/verify")
    assert (user["role"], verify.headers["x-auth-request-role"]) == ("STAFF", "STAFF")
    assert user["image"] == "https://images.example.com/sam%40example.com.png"
    assert user["permissions"] == ["orders:read", "orders:write"]


def test_a_back_office_sign_in_writes_the_storefronts_audit_line(storefront: Storefront) -> None:
    with browser(storefront) as client:
        user = single_sign_on(client, "sam@example.com").json()["user"]
    lines = [json.loads(line) for line in storefront.server.log.read_text().splitlines()]
    audit = [line for line in lines if line["logger"] == "storefront.audit"]
    assert {"event": "back-office-sign-in", "user": user["id"], "provider": "oidc"}.items() <= (
        audit[-1].items()
    )


def test_a_new_customer_signs_in_through_the_provider_with_its_picture(
    storefront: Storefront,
) -> None:
    with browser(storefront) as client:
        user = single_sign_on(client, "cara@example.com").json()["user"]
    assert (user["role"], user["permissions"]) == ("CUSTOMER", [])
    assert user["image"] == "https://images.example.com/cara%40example.com.png"


async def test_staff_whose_provider_says_the_email_is_unverified_are_refused() -> None:
    app = create_app(make_settings())
    staff = UserRecord(id="ckstaff", email="sam@example.com", role=Role.STAFF)
    params = SignInParams(
        account=Account(provider="oidc", type="oidc", provider_account_id="sub-sam"),
        services=app.services,
        user=staff,
        profile={"email": "sam@example.com", "email_verified": False},
    )
    assert await callbacks.sign_in(params) is False
    await app.services.aclose()


# --- what `authsvc serve` adds, whatever the app -----------------------------------------


def test_the_served_example_answers_431_to_a_100_kib_header(storefront: Storefront) -> None:
    response = httpx.get(
        f"{storefront.server.url}/api/auth/session", headers={"X-Big": "x" * 100 * 1024}
    )
    assert response.status_code == 431


def test_the_served_example_logs_json_lines_without_the_oauth_code(
    storefront: Storefront,
) -> None:
    with browser(storefront) as client:
        response = single_sign_on(client, "dan@example.com")
    callback = next(r for r in response.history if "/callback/oidc" in str(r.request.url))
    code = callback.request.url.params["code"]
    log = storefront.server.log.read_text()
    assert code not in log
    assert all(json.loads(line)["level"] for line in log.splitlines())
    assert re.search(r'"path": "/api/auth/callback/oidc"', log)
