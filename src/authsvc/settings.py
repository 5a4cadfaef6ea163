"""Settings, read once from the environment (and a `.env` file) into one object.

Names a next-auth app already has in its `.env` keep their next-auth spelling
(`NEXTAUTH_SECRET`, `NEXTAUTH_URL`); everything specific to authsvc is `AUTHSVC_*`.
Nothing else in the package reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_SECRET_BYTES = 32
DEFAULT_MAX_AGE = 30 * 24 * 60 * 60
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./authsvc.db"
HOW_TO_MAKE_A_SECRET = "make one with `openssl rand -base64 32` or `authsvc gen-secret`"  # noqa: S105 - advice, not a secret


class ConfigError(Exception):
    """Misconfiguration that must stop the process; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class PublicUrl:
    """NEXTAUTH_URL, normalised the way next-auth does it."""

    origin: str  # "http://localhost:3000"
    base_path: str  # "/api/auth"

    @property
    def base(self) -> str:
        return self.origin + self.base_path

    @property
    def is_https(self) -> bool:
        return self.origin.startswith("https://")


def parse_public_url(raw: str) -> PublicUrl:
    """Mirror next-auth's `parseUrl`: https:// when no scheme, `/` means `/api/auth`."""
    value = raw.strip()
    if "://" not in value:
        value = "https://" + value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"NEXTAUTH_URL must be an http(s) URL such as https://shop.example.com, got {raw!r}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError("NEXTAUTH_URL must not carry credentials, a query or a fragment")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    port = "" if parts.port in (None, default_port) else f":{parts.port}"
    path = parts.path.rstrip("/")
    return PublicUrl(origin=f"{parts.scheme}://{host}{port}", base_path=path or "/api/auth")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("NEXTAUTH_SECRET", "AUTH_SECRET")
    )
    # Old secrets still accepted for decryption during a rotation, comma-separated.
    previous_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, validation_alias="NEXTAUTH_SECRET_PREVIOUS"
    )
    url: str = Field(default="http://localhost:3000", validation_alias="NEXTAUTH_URL")
    database_url: str = Field(default=DEFAULT_DATABASE_URL, validation_alias="DATABASE_URL")
    session_max_age: int = Field(
        default=DEFAULT_MAX_AGE, gt=0, validation_alias="AUTHSVC_SESSION_MAX_AGE"
    )
    # None: decided by the scheme of NEXTAUTH_URL, as next-auth does.
    use_secure_cookies: bool | None = Field(
        default=None, validation_alias="AUTHSVC_USE_SECURE_COOKIES"
    )
    credentials_enabled: bool = Field(default=True, validation_alias="AUTHSVC_CREDENTIALS")
    log_level: str = Field(default="info", validation_alias="AUTHSVC_LOG_LEVEL")
    # Bound on waiting for the database in the session path (missing-role lookup), seconds.
    database_timeout: float = Field(default=2.0, gt=0, validation_alias="AUTHSVC_DB_TIMEOUT")

    @field_validator("previous_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @cached_property
    def public_url(self) -> PublicUrl:
        return parse_public_url(self.url)

    @property
    def secure_cookies(self) -> bool:
        if self.use_secure_cookies is not None:
            return self.use_secure_cookies
        return self.public_url.is_https

    @property
    def secret_value(self) -> str:
        if self.secret is None:  # check() makes this unreachable for a started service
            raise ConfigError("NEXTAUTH_SECRET is not set")
        return self.secret.get_secret_value()

    @property
    def all_secrets(self) -> list[str]:
        """The current secret first, then the ones kept for rotation."""
        return [self.secret_value, *(s.get_secret_value() for s in self.previous_secrets)]

    def check(self) -> Settings:
        """Fail fast, with a message naming the variable and the fix."""
        secret = self.secret.get_secret_value() if self.secret else ""
        if not secret.strip():
            raise ConfigError(f"NEXTAUTH_SECRET is not set: {HOW_TO_MAKE_A_SECRET}")
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"NEXTAUTH_SECRET is too short ({len(secret.encode())} bytes, "
                f"need at least {MIN_SECRET_BYTES}): {HOW_TO_MAKE_A_SECRET}"
            )
        for old in self.previous_secrets:
            if len(old.get_secret_value().encode()) < MIN_SECRET_BYTES:
                raise ConfigError(
                    f"every NEXTAUTH_SECRET_PREVIOUS entry needs at least {MIN_SECRET_BYTES} bytes"
                )
        self.public_url  # noqa: B018 - parsing raises ConfigError on a bad URL
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ConfigError(
                "DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://, "
                f"got scheme {self.database_url.split(':', 1)[0]!r}"
            )
        return self


def load_settings(**overrides: object) -> Settings:
    """Read and check the settings; any problem becomes one ConfigError line."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
    return settings.check()
