"""Settings, read once from the environment (and a `.env` file) into one object.

Names a next-auth app already has in its `.env` keep their next-auth spelling
(`NEXTAUTH_SECRET`, `NEXTAUTH_URL`); everything specific to authsvc is `AUTHSVC_*`.
Nothing else in the package reads the environment.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from dotenv.parser import parse_stream
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from authsvc.redirects import origin_of
from authsvc.users.prisma_map import PRISMA_SCHEMA, PrismaMapError, PrismaNames, parse_prisma_map

# Values only: the objects made from them (token codec, cookie policy, throttle, tables) are
# built where the app is wired (services.py) by the modules that own them, so this module
# imports no authsvc module but value parsers. The database URL parser and `limits` are
# imported by the checks that use them: authsvc.dependencies reads these settings in other
# services without that stack.
if TYPE_CHECKING:
    from limits import RateLimitItem

MIN_SECRET_BYTES = 32
ENV_FILE = ".env"
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
DEFAULT_MAX_AGE = 30 * 24 * 60 * 60
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./authsvc.db"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
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


class ProviderSettings(BaseModel):
    """One OAuth provider's variables, `<PREFIX>_CLIENT_ID` and the rest, as one value.

    The provider is enabled by its client id. Endpoints and issuers can be overridden (tests,
    self-hosted IdPs, proxies); `ENDPOINTS` names the fields that are URLs.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    PREFIX: ClassVar[str]
    ENDPOINTS: ClassVar[tuple[str, ...]]

    client_id: str | None = None
    client_secret: SecretStr | None = None

    @property
    def secret(self) -> str:
        return self.client_secret.get_secret_value() if self.client_secret else ""

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of one field (`GITHUB_TOKEN_URL`)."""
        return f"{cls.PREFIX}_{field.upper()}"

    def check(self) -> None:
        if bool(self.client_id) != bool(self.secret):
            raise ConfigError(
                f"{self.PREFIX}_CLIENT_ID and {self.PREFIX}_CLIENT_SECRET must be set together"
            )

    def check_endpoints(self) -> None:
        if not self.client_id:
            return
        for field in self.ENDPOINTS:
            check_endpoint(self.variable(field), getattr(self, field) or "")


class GoogleSettings(ProviderSettings):
    PREFIX = "GOOGLE"
    ENDPOINTS = ("issuer",)
    issuer: str = "https://accounts.google.com"


class GitHubSettings(ProviderSettings):
    PREFIX = "GITHUB"
    ENDPOINTS = ("authorization_url", "token_url", "api_url")
    authorization_url: str = "https://github.com/login/oauth/authorize"
    token_url: str = "https://github.com/login/oauth/access_token"  # noqa: S105 - a URL
    api_url: str = "https://api.github.com"


class FacebookSettings(ProviderSettings):
    PREFIX = "FACEBOOK"
    ENDPOINTS = ("authorization_url", "token_url", "graph_url")
    authorization_url: str = "https://www.facebook.com/v11.0/dialog/oauth"
    token_url: str = "https://graph.facebook.com/oauth/access_token"  # noqa: S105 - a URL
    graph_url: str = "https://graph.facebook.com"


class OidcSettings(ProviderSettings):
    """Any OpenID Connect provider, from its issuer's discovery document."""

    PREFIX = "OIDC"
    ENDPOINTS = ("issuer",)
    issuer: str | None = None
    name: str = "OpenID Connect"
    scope: str = "openid email profile"

    def check(self) -> None:
        super().check()
        if self.client_id and not self.issuer:
            raise ConfigError("OIDC_CLIENT_ID is set but OIDC_ISSUER is not: set the issuer URL")


class ProviderVariables(PydanticBaseSettingsSource):
    """Each provider group from its flat variables (`GOOGLE_CLIENT_ID` is `google.client_id`),
    the environment winning over `.env` as for every other variable.

    Every group gets a value here, even an empty one: the value under the group's own name
    (`GOOGLE`), which the environment sources pass on undecoded (`NoDecode`), is never read.
    """

    def __init__(self, settings_cls: type[BaseSettings], *readers: EnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self.readers = readers

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        group = field.annotation
        if not (isinstance(group, type) and issubclass(group, ProviderSettings)):
            return None, field_name, False
        values: dict[str, str] = {}
        for name in group.model_fields:
            variable = group.variable(name)
            for reader in self.readers:
                value = reader.env_vars.get(variable if reader.case_sensitive else variable.lower())
                if value is not None:
                    values[name] = value
                    break
        return values, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, name)
            if value is not None:
                values[name] = value
        return values


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("NEXTAUTH_SECRET", "AUTH_SECRET")
    )
    # Old secrets still accepted for decryption during a rotation, comma-separated.
    previous_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, validation_alias="NEXTAUTH_SECRET_PREVIOUS"
    )
    # Whose cookies, tokens and wire format to speak: next-auth v4, or Auth.js v5 (@auth/core).
    mode: Literal["next-auth-v4", "authjs-v5"] = Field(
        default="next-auth-v4", validation_alias="AUTHSVC_MODE"
    )
    # Auth.js v5's rotation secrets, read in authjs-v5 mode only (the highest-numbered encrypts).
    auth_secret_1: SecretStr | None = Field(default=None, validation_alias="AUTH_SECRET_1")
    auth_secret_2: SecretStr | None = Field(default=None, validation_alias="AUTH_SECRET_2")
    auth_secret_3: SecretStr | None = Field(default=None, validation_alias="AUTH_SECRET_3")
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
    # The app `authsvc serve` runs (MODULE:ATTR, see loader.py); None: authsvc's own.
    app: str | None = Field(default=None, validation_alias="AUTHSVC_APP")
    # uvicorn's level names, any case (`INFO` as well as `info`).
    log_level: LogLevel = Field(default="info", validation_alias="AUTHSVC_LOG_LEVEL")
    # `text` for people, `json` (one object a line) for log collectors.
    log_format: Literal["text", "json"] = Field(
        default="text", validation_alias="AUTHSVC_LOG_FORMAT"
    )
    # Peers (comma-separated CIDRs or addresses) whose X-Forwarded-* headers are believed.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="AUTHSVC_TRUSTED_PROXIES"
    )
    # Frontend origins that may call authsvc from the browser with credentials (CORS).
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="AUTHSVC_CORS_ORIGINS"
    )
    # `Domain=` for the session cookies, to share them across subdomains (never on CSRF).
    cookie_domain: str | None = Field(default=None, validation_alias="AUTHSVC_COOKIE_DOMAIN")
    # Whether /verify re-issues the session cookie with a fresh expiry, like /session.
    verify_refresh: bool = Field(default=False, validation_alias="AUTHSVC_VERIFY_REFRESH")
    # Decoded session tokens kept per process (a few KB each); 0 turns the cache off.
    token_cache_size: int = Field(default=10_000, ge=0, validation_alias="AUTHSVC_TOKEN_CACHE_SIZE")
    # Your own pages instead of the built-in ones (next-auth's `pages` option): a path on
    # NEXTAUTH_URL's origin or an absolute URL.
    pages_signin: str | None = Field(default=None, validation_alias="AUTHSVC_PAGES_SIGNIN")
    pages_signout: str | None = Field(default=None, validation_alias="AUTHSVC_PAGES_SIGNOUT")
    pages_error: str | None = Field(default=None, validation_alias="AUTHSVC_PAGES_ERROR")
    # Opt-in role freshness: re-read a token's role from the database once it is older than
    # this many seconds (0: never; the role in the token is used, as next-auth does).
    role_max_age: int = Field(default=0, ge=0, validation_alias="AUTHSVC_ROLE_MAX_AGE")
    # Opt-in revocation ("sign out everywhere", deleted users): see revocation.py.
    revocation: bool = Field(default=False, validation_alias="AUTHSVC_REVOCATION")
    revocation_cache_ttl: float = Field(
        default=30.0, ge=0, validation_alias="AUTHSVC_REVOCATION_CACHE_TTL"
    )

    # Bound on waiting for the database in the session path (missing-role lookup), seconds.
    database_timeout: float = Field(default=2.0, gt=0, validation_alias="AUTHSVC_DB_TIMEOUT")
    # Database connections per process (PostgreSQL): replicas x workers x this must fit
    # the server's max_connections.
    database_pool_size: int = Field(
        default=10, ge=1, le=500, validation_alias="AUTHSVC_DB_POOL_SIZE"
    )
    # Bound on each user lookup the jwt callback makes on a session request (a token without
    # a role, update(), role freshness): well under a proxy's 200 ms deadline, seconds.
    session_lookup_timeout: float = Field(
        default=0.1, gt=0, le=10, validation_alias="AUTHSVC_SESSION_LOOKUP_TIMEOUT"
    )
    # Brute-force throttling of email + password sign-in (throttle.py): `memory` or a Redis
    # URL (secret: it may hold a password), and moving-window limits in `limits` notation.
    rate_limit_storage: SecretStr = Field(
        default=SecretStr("memory"), validation_alias="AUTHSVC_RATE_LIMIT_STORAGE"
    )
    rate_limit_account: str = Field(
        default="100/hour", validation_alias="AUTHSVC_RATE_LIMIT_ACCOUNT"
    )
    rate_limit_address: str = Field(
        default="300/hour", validation_alias="AUTHSVC_RATE_LIMIT_ADDRESS"
    )
    # Largest request line + headers `authsvc serve` reads; larger gets 431, bytes.
    max_header_bytes: int = Field(
        default=32 * 1024, ge=8 * 1024, le=1024 * 1024, validation_alias="AUTHSVC_MAX_HEADER_BYTES"
    )
    # Read deadlines of `authsvc serve` (serving.py), seconds: a request head must arrive
    # whole within `head_timeout` of its first byte (or of the connection), its body within
    # `body_timeout` of the head; else 408 (or a close once an answer was sent).
    head_timeout: float = Field(default=10.0, gt=0, le=600, validation_alias="AUTHSVC_HEAD_TIMEOUT")
    body_timeout: float = Field(default=30.0, gt=0, le=600, validation_alias="AUTHSVC_BODY_TIMEOUT")
    # An idle keep-alive connection is closed after this many seconds; keep it longer than
    # a proxy's own upstream keep-alive, so the proxy is the side that closes.
    keepalive_timeout: int = Field(
        default=5, ge=1, le=3600, validation_alias="AUTHSVC_KEEPALIVE_TIMEOUT"
    )
    # Where the processes of one `serve --workers N` share their metrics (metrics.py);
    # `serve` makes a fresh one when it starts more than one worker and this is unset.
    metrics_dir: Path | None = Field(default=None, validation_alias="AUTHSVC_METRICS_DIR")
    # Connections (and requests in flight) one worker takes on; past it, 503 at once.
    max_connections: int = Field(
        default=1000, ge=1, le=65535, validation_alias="AUTHSVC_MAX_CONNECTIONS"
    )

    # OAuth providers, one group each (see ProviderSettings), read from the flat variables
    # a next-auth app has (`GOOGLE_CLIENT_ID`, …) by ProviderVariables.
    google: Annotated[GoogleSettings, NoDecode] = Field(default_factory=GoogleSettings)
    github: Annotated[GitHubSettings, NoDecode] = Field(default_factory=GitHubSettings)
    facebook: Annotated[FacebookSettings, NoDecode] = Field(default_factory=FacebookSettings)
    oidc: Annotated[OidcSettings, NoDecode] = Field(default_factory=OidcSettings)
    # Sign a provider identity into an existing user with the same, provider-verified email.
    link_accounts_by_email: bool = Field(
        default=False, validation_alias="AUTHSVC_LINK_ACCOUNTS_BY_EMAIL"
    )
    # Bound on the whole exchange with a provider in one request (discovery, token,
    # userinfo, JWKS together), and so on each of its calls.
    oauth_timeout: float = Field(default=5.0, gt=0, le=30, validation_alias="AUTHSVC_OAUTH_TIMEOUT")

    # Where the users live: authsvc's own tables, or the storefront's Prisma-made `users`
    # and `accounts` as they are (users/tables.py; docs/migrating-from-next-auth.md).
    user_schema: Literal["authsvc", "prisma"] = Field(
        default="authsvc", validation_alias="AUTHSVC_USER_SCHEMA"
    )
    # Prisma mode: the schema's `@@map`/`@map` names where they differ from the storefront's
    # (`User=User,Account=Account,User.fundraiserId=fundraiser_id`).
    prisma_map: str = Field(default="", validation_alias="AUTHSVC_PRISMA_MAP")
    # Prisma mode: authsvc's own PostgreSQL schema (its state and Alembic version table).
    db_schema: str = Field(default="authsvc", validation_alias="AUTHSVC_DB_SCHEMA")
    # Rewrite a bcrypt hash as Argon2id after a successful sign-in. Unset: on, except in
    # Prisma mode, where the storefront may still `bcrypt.compare` the same column.
    password_rehash: bool | None = Field(default=None, validation_alias="AUTHSVC_PASSWORD_REHASH")

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("previous_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @cached_property
    def public_url(self) -> PublicUrl:
        return parse_public_url(self.url)

    @cached_property
    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(_parse_network(entry) for entry in self.trusted_proxies)

    @cached_property
    def session_cookie_domain(self) -> str | None:
        """AUTHSVC_COOKIE_DOMAIN, checked against NEXTAUTH_URL and normalised."""
        if not self.cookie_domain:
            return None
        return _check_cookie_domain(self.cookie_domain, self.public_url)

    @property
    def authjs_v5(self) -> bool:
        return self.mode == "authjs-v5"

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
        """The current secret first, then the ones kept for rotation.

        Auth.js v5 builds its list as @auth/core does from the environment:
        AUTH_SECRET_3, AUTH_SECRET_2, AUTH_SECRET_1 (those set), then AUTH_SECRET.
        """
        if self.authjs_v5:
            numbered = (self.auth_secret_3, self.auth_secret_2, self.auth_secret_1)
            newer = [s.get_secret_value() for s in numbered if s and s.get_secret_value()]
            return [*newer, self.secret_value]
        return [self.secret_value, *(s.get_secret_value() for s in self.previous_secrets)]

    @property
    def csrf_secrets(self) -> list[str]:
        """What CSRF cookies are hashed with, each tried in turn.

        Auth.js v5 hashes with its secret list as JavaScript stringifies it
        (`secrets.join(",")`), so a change of secrets there renews every CSRF cookie.
        """
        return [",".join(self.all_secrets)] if self.authjs_v5 else self.all_secrets

    def check(self, *, require_secret: bool = True) -> Settings:
        """Fail fast, with a message naming the variable and the fix. Commands that never
        touch a cookie or a token (create-user, migrate, …) pass `require_secret=False`."""
        if require_secret:
            self.check_session()
        else:
            self.public_url  # noqa: B018 - parsing raises ConfigError on a bad URL
            self.session_cookie_domain  # noqa: B018 - checks AUTHSVC_COOKIE_DOMAIN
        self._check_providers()
        for variable, page in (
            ("AUTHSVC_PAGES_SIGNIN", self.pages_signin),
            ("AUTHSVC_PAGES_SIGNOUT", self.pages_signout),
            ("AUTHSVC_PAGES_ERROR", self.pages_error),
        ):
            if page and not (page.startswith("/") and not page.startswith("//")):
                check_endpoint(variable, page)
        self._check_operations()
        self._check_user_schema()
        return self

    def check_session(self) -> Settings:
        """What reading a session needs: the secrets, NEXTAUTH_URL and the cookie domain
        (a service using authsvc.dependencies has none of the rest, and may have its own
        DATABASE_URL)."""
        self._check_secrets()
        self.public_url  # noqa: B018 - parsing raises ConfigError on a bad URL
        self.session_cookie_domain  # noqa: B018 - checks AUTHSVC_COOKIE_DOMAIN
        return self

    def _check_secrets(self) -> None:
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
        self._check_authjs_secrets()

    @property
    def prisma_mode(self) -> bool:
        return self.user_schema == "prisma"

    @property
    def rehash_bcrypt(self) -> bool:
        return not self.prisma_mode if self.password_rehash is None else self.password_rehash

    @property
    def prisma_names(self) -> PrismaNames:
        try:
            return parse_prisma_map(self.prisma_map)
        except PrismaMapError as exc:
            raise ConfigError(str(exc)) from None

    def _check_user_schema(self) -> None:
        from authsvc.database_url import MAX_SCHEMA_BYTES, DatabaseUrlError, parse_database_url

        try:
            target = parse_database_url(self.database_url)
        except DatabaseUrlError as exc:
            raise ConfigError(str(exc)) from None
        self.prisma_names  # noqa: B018 - parsing raises ConfigError
        if not self.prisma_mode:
            return
        if target.is_sqlite:
            raise ConfigError(
                "AUTHSVC_USER_SCHEMA=prisma runs on the storefront's PostgreSQL database: set "
                "DATABASE_URL to the one in its .env (postgresql://…)"
            )
        storefront = target.schema or PRISMA_SCHEMA
        if not self.db_schema or len(self.db_schema.encode()) > MAX_SCHEMA_BYTES:
            raise ConfigError(
                f"AUTHSVC_DB_SCHEMA must name a PostgreSQL schema (1 to {MAX_SCHEMA_BYTES} bytes)"
            )
        if self.db_schema == storefront:
            raise ConfigError(
                f"AUTHSVC_DB_SCHEMA must not be the storefront's schema ({storefront}): prisma "
                "migrate would see authsvc's tables as drift; keep the default, authsvc"
            )

    def _check_authjs_secrets(self) -> None:
        if not self.authjs_v5:
            return
        if self.previous_secrets:
            raise ConfigError(
                "NEXTAUTH_SECRET_PREVIOUS is not read with AUTHSVC_MODE=authjs-v5: rotate as "
                "Auth.js does, the new secret in AUTH_SECRET_1 and the old one in AUTH_SECRET"
            )
        numbered = {
            "AUTH_SECRET_1": self.auth_secret_1,
            "AUTH_SECRET_2": self.auth_secret_2,
            "AUTH_SECRET_3": self.auth_secret_3,
        }
        for variable, value in numbered.items():
            if value and 0 < len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
                raise ConfigError(
                    f"{variable} is too short (need at least {MIN_SECRET_BYTES} bytes): "
                    f"{HOW_TO_MAKE_A_SECRET}"
                )

    def _check_operations(self) -> None:
        self.trusted_proxy_networks  # noqa: B018 - parsing raises ConfigError
        storage = self.rate_limit_storage.get_secret_value()
        if storage != "memory" and not storage.startswith(REDIS_SCHEMES):
            raise ConfigError(
                "AUTHSVC_RATE_LIMIT_STORAGE is `memory` or a Redis URL such as "
                f"redis://127.0.0.1:6379/0, got {storage.split('://', 1)[0]!r}"
            )
        parse_limit("AUTHSVC_RATE_LIMIT_ACCOUNT", self.rate_limit_account)
        parse_limit("AUTHSVC_RATE_LIMIT_ADDRESS", self.rate_limit_address)
        for origin in self.cors_origins:
            if "*" in origin or origin_of(origin) != origin:
                raise ConfigError(
                    "AUTHSVC_CORS_ORIGINS takes exact origins such as https://shop.example.com "
                    f"(scheme, host, optional port; no path or wildcard), got {origin!r}"
                )

    @property
    def provider_settings(self) -> tuple[ProviderSettings, ...]:
        """Every provider's group, in next-auth's usual listing order."""
        return (self.google, self.github, self.facebook, self.oidc)

    def _check_providers(self) -> None:
        for provider in self.provider_settings:
            provider.check()
        for provider in self.provider_settings:
            provider.check_endpoints()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        readers = [s for s in (env_settings, dotenv_settings) if isinstance(s, EnvSettingsSource)]
        provider_variables = ProviderVariables(settings_cls, *readers)
        return (
            init_settings,
            provider_variables,
            env_settings,
            dotenv_settings,
            file_secret_settings,
        )


def parse_limit(variable: str, text: str) -> RateLimitItem:
    """`100/hour`, `100 per hour`, `5/minute`... (the `limits` notation), at least 1."""
    from limits import parse

    try:
        item = parse(text)
    except ValueError:
        raise ConfigError(
            f"{variable} takes a limit such as 100/hour or 10/minute, got {text!r}"
        ) from None
    if item.amount < 1:
        raise ConfigError(f"{variable} must allow at least one attempt, got {text!r}")
    return item


def _is_loopback(host: str | None) -> bool:
    return host in ("localhost", "127.0.0.1", "::1") or (host or "").endswith(".localhost")


def check_endpoint(variable: str, url: str) -> None:
    """Provider endpoints must be https, except on loopback (tests, local IdPs)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return
    raise ConfigError(f"{variable} must be an https:// URL, got {url!r}")


def _parse_network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(entry)
    except ValueError:
        raise ConfigError(
            "AUTHSVC_TRUSTED_PROXIES takes addresses or CIDRs such as 10.0.0.0/8 "
            f"(no host bits set), got {entry!r}"
        ) from None


_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}")


def _check_cookie_domain(raw: str, public_url: PublicUrl) -> str:
    """A parent domain of (or the same host as) NEXTAUTH_URL, which browsers accept."""
    domain = raw.strip().lower().removeprefix(".")
    host = urlsplit(public_url.origin).hostname or ""
    if not _DOMAIN.fullmatch(domain) or not (host == domain or host.endswith("." + domain)):
        raise ConfigError(
            "AUTHSVC_COOKIE_DOMAIN must be the host of NEXTAUTH_URL or a parent domain with a "
            f"dot, such as example.com for https://shop.example.com, got {raw!r}"
        )
    return domain


def check_env_file(path: Path) -> None:
    """Refuse a `.env` that python-dotenv (what pydantic-settings reads it with) would
    partly skip with a warning: a setting silently missing is worse than stopping. The
    message names the line, never its content (it may hold a secret)."""
    try:
        with path.open(encoding="utf-8") as stream:
            bad = [binding.original.line for binding in parse_stream(stream) if binding.error]
    except FileNotFoundError:
        return
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if bad:
        lines = ", ".join(str(number) for number in bad)
        raise ConfigError(
            f"{path} line{'s' * (len(bad) > 1)} {lines}: not NAME=value (quote a value with "
            "spaces; # starts a comment)"
        )


def read_settings(**overrides: object) -> Settings:
    """Read the settings (environment first, then `.env`), unchecked; a bad `.env` line or
    a value of the wrong type becomes one ConfigError line."""
    env_file = overrides.get("_env_file", ENV_FILE)
    if isinstance(env_file, str | Path):
        check_env_file(Path(env_file))
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None


def load_settings(*, require_secret: bool = True, **overrides: object) -> Settings:
    """Read and check the settings (environment first, then `.env`); any problem becomes
    one ConfigError line."""
    return read_settings(**overrides).check(require_secret=require_secret)
