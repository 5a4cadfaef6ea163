"""What every OAuth provider is: a small Protocol, and the shared plumbing.

Authorization URLs and the code exchange (client authentication, form encoding) come
from httpx-oauth's `BaseOAuth2`, running on authsvc's bounded HTTP client; each provider
module adds only its endpoints and how it turns a token response into a profile.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import quote_plus

import httpx
from httpx_oauth.exceptions import HTTPXOAuthError
from httpx_oauth.oauth2 import BaseOAuth2, OAuth2ClientAuthMethod, OAuth2RequestError

from authsvc.outbound import ProviderError

Check = Literal["state", "pkce", "nonce"]
# Parameters the flow owns; a client may not set them through the sign-in query.
RESERVED_PARAMS = frozenset(
    {
        "client_id",
        "client_secret",
        "redirect_uri",
        "response_type",
        "response_mode",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "request",
        "request_uri",
    }
)


@dataclass(frozen=True, slots=True)
class Profile:
    """A provider's user, mapped like next-auth's `profile()`: id, name, email, image."""

    id: str
    email: str | None
    email_verified: bool
    name: str | None = None
    image: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Endpoints:
    authorization: str
    token: str
    # OpenID Connect only.
    issuer: str | None = None
    jwks_uri: str | None = None


class OAuthProvider(Protocol):
    """An OAuth 2 / OpenID Connect sign-in provider."""

    id: str
    name: str
    client_id: str
    checks: frozenset[Check]

    async def endpoints(self, http: httpx.AsyncClient) -> Endpoints: ...

    async def authorization_url(
        self,
        http: httpx.AsyncClient,
        endpoints: Endpoints,
        *,
        redirect_uri: str,
        state: str,
        code_challenge: str | None,
        params: Mapping[str, str],
    ) -> str:
        """Where to send the browser; `params` are merged over the provider defaults."""
        ...

    async def exchange_code(
        self,
        http: httpx.AsyncClient,
        endpoints: Endpoints,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str | None,
    ) -> dict[str, Any]:
        """The token response for an authorization code."""
        ...

    async def profile(
        self,
        http: httpx.AsyncClient,
        endpoints: Endpoints,
        tokens: Mapping[str, Any],
        *,
        nonce: str | None,
    ) -> Profile:
        """The user, from the token response; raises ProviderError when not trustworthy."""
        ...


class _SharedClient(BaseOAuth2[dict[str, Any]]):
    """httpx-oauth's client, using one long-lived bounded httpx client."""

    def __init__(self, http: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http = http

    def get_httpx_client(self) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
        @contextlib.asynccontextmanager
        async def borrowed() -> AsyncIterator[httpx.AsyncClient]:
            yield self._http

        return borrowed()

    def build_request(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        *,
        auth_method: OAuth2ClientAuthMethod | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> tuple[httpx.Request, httpx.Auth | None]:
        request, auth = super().build_request(
            client, method, url, auth_method=auth_method, data=data
        )
        if auth_method == "client_secret_basic":
            # RFC 6749 §2.3.1: both halves are form-urlencoded before the Basic encoding.
            auth = httpx.BasicAuth(quote_plus(self.client_id), quote_plus(self.client_secret))
        return request, auth

    def get_json(
        self, response: httpx.Response, *, exc_class: type[OAuth2RequestError]
    ) -> dict[str, Any]:
        data: object = super().get_json(response, exc_class=exc_class)
        if not isinstance(data, dict):
            raise exc_class("response is not a JSON object", response)
        return data


@dataclass(slots=True)
class OAuthClientBase:
    """Shared behaviour: authorization parameters and the code exchange."""

    id: str
    name: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str
    checks: frozenset[Check]
    token_auth_method: OAuth2ClientAuthMethod = "client_secret_basic"  # noqa: S105

    def _client(self, http: httpx.AsyncClient, endpoints: Endpoints) -> _SharedClient:
        return _SharedClient(
            http,
            self.client_id,
            self.client_secret,
            endpoints.authorization,
            endpoints.token,
            name=self.id,
            token_endpoint_auth_method=self.token_auth_method,
        )

    async def authorization_url(
        self,
        http: httpx.AsyncClient,
        endpoints: Endpoints,
        *,
        redirect_uri: str,
        state: str,
        code_challenge: str | None,
        params: Mapping[str, str],
    ) -> str:
        extras = dict(params)
        scope = extras.pop("scope", self.scope)
        return await self._client(http, endpoints).get_authorization_url(
            redirect_uri,
            state=state,
            scope=scope.split(),
            code_challenge=code_challenge,
            code_challenge_method="S256" if code_challenge else None,
            extras_params=extras,
        )

    async def exchange_code(
        self,
        http: httpx.AsyncClient,
        endpoints: Endpoints,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str | None,
    ) -> dict[str, Any]:
        try:
            tokens = await self._client(http, endpoints).get_access_token(
                code, redirect_uri, code_verifier
            )
        except HTTPXOAuthError as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            raise ProviderError(f"token request failed ({status or type(exc).__name__})") from None
        except (TypeError, ValueError, OverflowError):  # e.g. "expires_in": 1e400
            raise ProviderError("token response has invalid fields") from None
        # GitHub answers 200 with {"error": …} for a bad code.
        if not isinstance(tokens.get("access_token"), str) or "error" in tokens:
            raise ProviderError("token response has no access_token")
        return dict(tokens)


def first_string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(slots=True, kw_only=True)
class PlainOAuthProvider(OAuthClientBase):
    """An OAuth 2 provider with fixed endpoints and no discovery (GitHub, Facebook)."""

    authorization_endpoint: str
    token_endpoint: str

    async def endpoints(self, http: httpx.AsyncClient) -> Endpoints:
        return Endpoints(authorization=self.authorization_endpoint, token=self.token_endpoint)
