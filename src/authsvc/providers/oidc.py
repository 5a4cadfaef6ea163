"""OpenID Connect providers: the generic one (`oidc`, from an issuer URL) and Google.

Endpoints come from discovery; the profile is the ID token's claims, accepted only after
the signature verifies against the issuer's JWKS under an algorithm allow-list and
`iss`, `aud` (and `azp`), `exp`, `iat` and `nonce` check out (R21, R22).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from authsvc.outbound import ProviderError, get_json
from authsvc.providers.oauth_client import Endpoints, OAuthClientBase, Profile, first_string
from authsvc.settings import ConfigError, check_endpoint

# Asymmetric algorithms only: no `none`, and no HS* (a public key is never an HMAC secret).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
CLOCK_TOLERANCE = 10
DISCOVERY_TTL = 3600.0
GOOGLE_ISSUER = "https://accounts.google.com"


@dataclass(slots=True, kw_only=True)
class OidcProvider(OAuthClientBase):
    issuer: str
    # Google also writes its issuer without the scheme.
    issuer_aliases: tuple[str, ...] = ()
    _discovered: tuple[float, Endpoints] | None = field(default=None, init=False, repr=False)
    _keys: KeySet | None = field(default=None, init=False, repr=False)

    async def endpoints(self, http: httpx.AsyncClient) -> Endpoints:
        if self._discovered and time.monotonic() - self._discovered[0] < DISCOVERY_TTL:
            return self._discovered[1]
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await get_json(http, url)
        if not isinstance(document, dict) or document.get("issuer") != self.issuer:
            raise ProviderError("discovery document does not name the configured issuer")
        fields = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = document.get(name)
            if not isinstance(value, str):
                raise ProviderError(f"discovery document has no {name}")
            try:
                check_endpoint(name, value)
            except ConfigError as exc:
                raise ProviderError(str(exc)) from None
            fields[name] = value
        endpoints = Endpoints(
            authorization=fields["authorization_endpoint"],
            token=fields["token_endpoint"],
            issuer=self.issuer,
            jwks_uri=fields["jwks_uri"],
        )
        self._discovered = (time.monotonic(), endpoints)
        return endpoints

    async def profile(
        self,
        http: httpx.AsyncClient,
        endpoints: Endpoints,
        tokens: Mapping[str, Any],
        *,
        nonce: str | None,
    ) -> Profile:
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise ProviderError("token response has no id_token")
        claims = await self._verified_claims(http, endpoints, id_token, nonce)
        verified = claims.get("email_verified")
        return Profile(
            id=claims["sub"],
            email=first_string(claims.get("email")),
            email_verified=verified is True or verified == "true",
            name=first_string(claims.get("name")),
            image=first_string(claims.get("picture")),
            raw=claims,
        )

    async def _verified_claims(
        self, http: httpx.AsyncClient, endpoints: Endpoints, id_token: str, nonce: str | None
    ) -> dict[str, Any]:
        keys = await self._key_set(http, endpoints, refresh=False)
        try:
            token = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError, TypeError):
            # The issuer may have rotated its keys: fetch them once more, then give up.
            keys = await self._key_set(http, endpoints, refresh=True)
            try:
                token = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
            except (JoseError, ValueError, TypeError) as exc:
                raise ProviderError(f"id_token rejected: {type(exc).__name__}") from None
        claims = dict(token.claims)
        self._check_claims(claims, nonce)
        return claims

    def _check_claims(self, claims: dict[str, Any], nonce: str | None) -> None:
        issuers = [self.issuer, *self.issuer_aliases]
        registry = jwt.JWTClaimsRegistry(
            leeway=CLOCK_TOLERANCE,
            iss={"essential": True, "values": issuers},
            sub={"essential": True},
            aud={"essential": True, "value": self.client_id},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise ProviderError(f"id_token claims rejected: {type(exc).__name__}") from None
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise ProviderError("id_token sub is not a string")
        for name in ("exp", "iat"):
            if isinstance(claims[name], bool) or not isinstance(claims[name], int | float):
                raise ProviderError(f"id_token {name} is not a number")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise ProviderError("id_token has several audiences and another azp")
        if nonce is not None and claims.get("nonce") != nonce:
            raise ProviderError("id_token nonce does not match")

    async def _key_set(
        self, http: httpx.AsyncClient, endpoints: Endpoints, *, refresh: bool
    ) -> KeySet:
        if self._keys is not None and not refresh:
            return self._keys
        if endpoints.jwks_uri is None:
            raise ProviderError("no jwks_uri")
        document = await get_json(http, endpoints.jwks_uri)
        try:
            self._keys = KeySet.import_key_set(document)
        except (JoseError, ValueError, TypeError, KeyError):
            raise ProviderError("JWKS document is not a key set") from None
        return self._keys


def google(client_id: str, client_secret: str, issuer: str = GOOGLE_ISSUER) -> OidcProvider:
    return OidcProvider(
        id="google",
        name="Google",
        client_id=client_id,
        client_secret=client_secret,
        scope="openid email profile",
        checks=frozenset({"state", "pkce", "nonce"}),
        issuer=issuer,
        issuer_aliases=("accounts.google.com",) if issuer == GOOGLE_ISSUER else (),
    )


def generic(client_id: str, client_secret: str, issuer: str, name: str, scope: str) -> OidcProvider:
    return OidcProvider(
        id="oidc",
        name=name,
        client_id=client_id,
        client_secret=client_secret,
        scope=scope,
        checks=frozenset({"state", "pkce", "nonce"}),
        issuer=issuer,
    )
