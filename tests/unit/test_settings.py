"""Settings: next-auth's variable names, URL rules, and refusing to start when misconfigured."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from authsvc.app import create_app
from authsvc.cookies import CookiePolicy
from authsvc.session import session_codec
from authsvc.settings import ConfigError, Settings, load_settings, parse_public_url, read_settings
from authsvc.tokens_v5 import AuthjsTokenCodec
from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]
# Every OAuth provider variable, and where it lands.
PROVIDER_VARIABLES = {
    "GOOGLE_CLIENT_ID": ("google", "client_id"),
    "GOOGLE_CLIENT_SECRET": ("google", "client_secret"),
    "GOOGLE_ISSUER": ("google", "issuer"),
    "GITHUB_CLIENT_ID": ("github", "client_id"),
    "GITHUB_CLIENT_SECRET": ("github", "client_secret"),
    "GITHUB_AUTHORIZATION_URL": ("github", "authorization_url"),
    "GITHUB_TOKEN_URL": ("github", "token_url"),
    "GITHUB_API_URL": ("github", "api_url"),
    "FACEBOOK_CLIENT_ID": ("facebook", "client_id"),
    "FACEBOOK_CLIENT_SECRET": ("facebook", "client_secret"),
    "FACEBOOK_AUTHORIZATION_URL": ("facebook", "authorization_url"),
    "FACEBOOK_TOKEN_URL": ("facebook", "token_url"),
    "FACEBOOK_GRAPH_URL": ("facebook", "graph_url"),
    "OIDC_ISSUER": ("oidc", "issuer"),
    "OIDC_CLIENT_ID": ("oidc", "client_id"),
    "OIDC_CLIENT_SECRET": ("oidc", "client_secret"),
    "OIDC_NAME": ("oidc", "name"),
    "OIDC_SCOPE": ("oidc", "scope"),
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in (
        "NEXTAUTH_SECRET",
        "AUTH_SECRET",
        "NEXTAUTH_URL",
        "DATABASE_URL",
        "NEXTAUTH_SECRET_PREVIOUS",
        "AUTHSVC_SESSION_MAX_AGE",
        "AUTHSVC_MODE",
        "AUTH_SECRET_1",
        "AUTH_SECRET_2",
        "AUTH_SECRET_3",
        *PROVIDER_VARIABLES,
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]


@pytest.mark.parametrize("secret", [None, "", "   ", "secret", "x" * 16, "y" * 31])
def test_missing_or_short_secret_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, secret: str | None
) -> None:
    if secret is not None:
        monkeypatch.setenv("NEXTAUTH_SECRET", secret)
    with pytest.raises(ConfigError, match=r"NEXTAUTH_SECRET.*openssl rand -base64 32"):
        load_settings()


def test_app_refuses_to_build_without_a_secret() -> None:
    with pytest.raises(ConfigError):
        create_app()


def test_secret_is_read_from_the_environment_or_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_SECRET", SECRET)
    assert load_settings().secret_value == SECRET
    monkeypatch.delenv("AUTH_SECRET")
    with open(".env", "w") as env_file:
        env_file.write(f"NEXTAUTH_SECRET={SECRET}\nNEXTAUTH_URL=https://shop.example.com\n")
    settings = load_settings()
    assert (settings.secret_value, settings.secure_cookies) == (SECRET, True)


def test_previous_secrets_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("NEXTAUTH_SECRET_PREVIOUS", "a" * 32 + ", " + "b" * 40)
    assert load_settings().all_secrets == [SECRET, "a" * 32, "b" * 40]


def test_short_previous_secret_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("NEXTAUTH_SECRET_PREVIOUS", "short")
    with pytest.raises(ConfigError, match="NEXTAUTH_SECRET_PREVIOUS"):
        load_settings()


@pytest.mark.parametrize(
    ("raw", "origin", "base_path"),
    [
        ("http://localhost:3000", "http://localhost:3000", "/api/auth"),
        ("https://shop.example.com/", "https://shop.example.com", "/api/auth"),
        ("shop.example.com", "https://shop.example.com", "/api/auth"),
        ("https://Shop.Example.com:443/custom/auth/", "https://shop.example.com", "/custom/auth"),
        ("http://127.0.0.1:8000/api/auth", "http://127.0.0.1:8000", "/api/auth"),
    ],
)
def test_nextauth_url_is_normalised_like_next_auth(raw: str, origin: str, base_path: str) -> None:
    url = parse_public_url(raw)
    assert (url.origin, url.base_path) == (origin, base_path)


@pytest.mark.parametrize(
    "raw", ["ftp://x.example", "https://", "https://u:p@x.example", "http://x?y=1"]
)
def test_unusable_nextauth_url_refuses_to_start(raw: str) -> None:
    with pytest.raises(ConfigError, match="NEXTAUTH_URL"):
        parse_public_url(raw)


def test_unsupported_database_url_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings()


def test_invalid_number_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("AUTHSVC_SESSION_MAX_AGE", "soon")
    with pytest.raises(ConfigError, match="AUTHSVC_SESSION_MAX_AGE"):
        load_settings()


def test_defaults_match_next_auth() -> None:
    settings = Settings(_env_file=None, secret=SECRET)
    assert settings.session_max_age == 2_592_000
    assert settings.public_url.base == "http://localhost:3000/api/auth"
    assert settings.database_url.startswith("sqlite+aiosqlite")
    assert not settings.secure_cookies


# --- operations: proxies, CORS, cookie domain, logs, verify refresh ---------------------------


def operations(**values: object) -> Settings:
    return Settings(_env_file=None, secret=SECRET, **values).check()  # type: ignore[arg-type]


def test_operations_defaults_trust_no_proxy_and_allow_no_origin() -> None:
    settings = operations()
    assert settings.trusted_proxy_networks == ()
    assert settings.cors_origins == []
    assert CookiePolicy.from_settings(settings).domain is None
    assert (settings.verify_refresh, settings.log_format) == (False, "text")


def test_trusted_proxies_are_comma_separated_addresses_and_cidrs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("AUTHSVC_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")
    networks = load_settings().trusted_proxy_networks
    assert [str(n) for n in networks] == ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]


@pytest.mark.parametrize("value", ["10.0.0.1/8", "everything", "10.0.0.0/33"])
def test_an_unusable_trusted_proxy_refuses_to_start(value: str) -> None:
    with pytest.raises(ConfigError, match="AUTHSVC_TRUSTED_PROXIES"):
        operations(trusted_proxies=value)


def test_cors_origins_are_exact_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("AUTHSVC_CORS_ORIGINS", "https://shop.example.com,http://localhost:3000")
    assert load_settings().cors_origins == ["https://shop.example.com", "http://localhost:3000"]


@pytest.mark.parametrize(
    "origin",
    ["*", "null", "https://shop.example.com/", "https://*.example.com", "shop.example.com"],
)
def test_a_cors_wildcard_or_non_origin_refuses_to_start(origin: str) -> None:
    with pytest.raises(ConfigError, match="AUTHSVC_CORS_ORIGINS"):
        operations(cors_origins=origin)


@pytest.mark.parametrize(
    ("domain", "expected"),
    [("example.com", "example.com"), (".Example.com", "example.com"), ("api.example.com", None)],
)
def test_cookie_domain_is_normalised(domain: str, expected: str | None) -> None:
    settings = operations(url="https://api.example.com", cookie_domain=domain)
    assert CookiePolicy.from_settings(settings).domain == (expected or "api.example.com")


@pytest.mark.parametrize("domain", ["other.com", "com", "ample.com", "1.2.3.4", "exa mple.com"])
def test_a_cookie_domain_that_browsers_would_refuse_stops_start_up(domain: str) -> None:
    with pytest.raises(ConfigError, match="AUTHSVC_COOKIE_DOMAIN"):
        operations(url="https://shop.example.com", cookie_domain=domain)


def test_an_unknown_log_format_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("AUTHSVC_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="AUTHSVC_LOG_FORMAT"):
        load_settings()


def test_a_configuration_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("AUTHSVC_TRUSTED_PROXIES", "nope")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "\n" not in str(caught.value)


# --- Auth.js v5 mode ------------------------------------------------------------------

NEW_SECRET = "n" * 32
NEWER_SECRET = "m" * 40


def v5_settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """`load_settings()` with AUTH_SECRET, AUTHSVC_MODE=authjs-v5 and these variables."""
    for name, value in {"AUTH_SECRET": SECRET, "AUTHSVC_MODE": "authjs-v5", **env}.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_mode_defaults_to_next_auth_v4(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    settings = load_settings()
    assert (settings.mode, CookiePolicy.from_settings(settings).session_token) == (
        "next-auth-v4",
        "next-auth.session-token",
    )


def test_authjs_v5_mode_switches_the_cookie_names(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = CookiePolicy.from_settings(v5_settings(monkeypatch))
    assert policy.session_token == "authjs.session-token"


def test_an_unknown_mode_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"AUTHSVC_MODE.*authjs-v5"):
        v5_settings(monkeypatch, AUTHSVC_MODE="authjs-v6")


def test_v5_secrets_are_listed_highest_numbered_first(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = v5_settings(monkeypatch, AUTH_SECRET_1=NEW_SECRET, AUTH_SECRET_3=NEWER_SECRET)
    assert settings.all_secrets == [NEWER_SECRET, NEW_SECRET, SECRET]


def test_numbered_secrets_are_not_read_in_v4_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("AUTH_SECRET_1", NEW_SECRET)
    assert load_settings().all_secrets == [SECRET]


def test_a_short_numbered_secret_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="AUTH_SECRET_2"):
        v5_settings(monkeypatch, AUTH_SECRET_2="short")


def test_previous_secrets_refuse_to_start_in_v5_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="AUTH_SECRET_1"):
        v5_settings(monkeypatch, NEXTAUTH_SECRET_PREVIOUS=NEW_SECRET)


def test_v5_csrf_hashes_with_the_comma_joined_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = v5_settings(monkeypatch, AUTH_SECRET_1=NEW_SECRET)
    assert settings.csrf_secrets == [f"{NEW_SECRET},{SECRET}"]


def test_v5_session_codec_is_salted_with_the_session_cookie_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = session_codec(v5_settings(monkeypatch, NEXTAUTH_URL="https://shop.example.com"))
    assert isinstance(codec, AuthjsTokenCodec)
    assert codec.salt == "__Secure-authjs.session-token"


@pytest.mark.parametrize(
    "variable",
    [
        "AUTHSVC_HEAD_TIMEOUT",
        "AUTHSVC_BODY_TIMEOUT",
        "AUTHSVC_KEEPALIVE_TIMEOUT",
        "AUTHSVC_MAX_CONNECTIONS",
        "AUTHSVC_DB_POOL_SIZE",
    ],
)
@pytest.mark.parametrize("value", ["0", "-1", "soon", "100000"])
def test_an_unusable_server_limit_refuses_to_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings()


# --- OAuth providers: one group each, read from next-auth's flat variables ---------------


def provider_value(settings: Settings, variable: str) -> object:
    group, field = PROVIDER_VARIABLES[variable]
    value = getattr(getattr(settings, group), field)
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def test_every_provider_variable_the_readme_names_is_read_into_its_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`((?:GOOGLE|GITHUB|FACEBOOK|OIDC)_[A-Z_]+)`", readme))
    assert named == set(PROVIDER_VARIABLES)
    for variable in PROVIDER_VARIABLES:
        monkeypatch.setenv(variable, f"https://{variable.lower()}.example.com")
    settings = Settings(_env_file=None, secret=SECRET)
    for variable in PROVIDER_VARIABLES:
        assert provider_value(settings, variable) == f"https://{variable.lower()}.example.com"


def test_provider_variables_come_from_dotenv_any_case_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with open(".env", "w") as env_file:
        env_file.write("GITHUB_CLIENT_ID=from-dotenv\ngithub_client_secret=s\nOIDC_NAME=SSO\n")
    monkeypatch.setenv("OIDC_NAME", "Company SSO")
    settings = read_settings()
    assert (settings.github.client_id, settings.github.secret) == ("from-dotenv", "s")
    assert (settings.oidc.name, settings.oidc.scope) == ("Company SSO", "openid email profile")
    assert settings.google.client_id is None and settings.google.secret == ""


def test_given_provider_values_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_CLIENT_ID", "from-env")
    monkeypatch.setenv("GITHUB_API_URL", "https://github.example.com/api")
    settings = Settings(_env_file=None, secret=SECRET, github={"client_id": "given"})
    assert (settings.github.client_id, settings.github.api_url) == (
        "given",
        "https://github.example.com/api",
    )


def test_a_variable_named_like_a_provider_group_is_not_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB", "not json")
    monkeypatch.setenv("GOOGLE", '{"client_id": "x"}')
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    settings = load_settings()
    assert settings.github.client_id is None and settings.google.client_id is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GOOGLE_CLIENT_ID": "id"}, "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set"),
        ({"FACEBOOK_CLIENT_SECRET": "s"}, "FACEBOOK_CLIENT_ID and FACEBOOK_CLIENT_SECRET must"),
        ({"OIDC_CLIENT_ID": "id", "OIDC_CLIENT_SECRET": "s"}, "OIDC_ISSUER is not"),
        (
            {"GITHUB_CLIENT_ID": "id", "GITHUB_CLIENT_SECRET": "s", "GITHUB_TOKEN_URL": "http://x"},
            "GITHUB_TOKEN_URL must be an https:// URL, got 'http://x'",
        ),
        (
            {"OIDC_CLIENT_ID": "id", "OIDC_CLIENT_SECRET": "s", "OIDC_ISSUER": "http://idp"},
            "OIDC_ISSUER must be an https:// URL",
        ),
    ],
)
def test_an_unusable_provider_refuses_to_start_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings()


def test_an_endpoint_of_a_disabled_provider_is_not_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXTAUTH_SECRET", SECRET)
    monkeypatch.setenv("FACEBOOK_GRAPH_URL", "http://graph.example.com")
    assert load_settings().facebook.graph_url == "http://graph.example.com"
