"""Settings: next-auth's variable names, URL rules, and refusing to start when misconfigured."""

from __future__ import annotations

import pytest

from authsvc.app import create_app
from authsvc.settings import ConfigError, Settings, load_settings, parse_public_url
from tests.conftest import SECRET


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in (
        "NEXTAUTH_SECRET",
        "AUTH_SECRET",
        "NEXTAUTH_URL",
        "DATABASE_URL",
        "NEXTAUTH_SECRET_PREVIOUS",
        "AUTHSVC_SESSION_MAX_AGE",
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
