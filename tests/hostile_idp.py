"""A configurable, hostile OAuth 2 / OpenID Connect provider for tests.

One Starlette app plays three providers on loopback, over real HTTP (authsvc's bounded
client needs a real socket to be bounded):

- an OpenID Connect provider (discovery whose issuer is its own base URL, `/jwks` with
  two RSA keys for rotation, `/authorize`, `/token` checking client authentication and
  PKCE, `/userinfo`), modelled on the OIDF RP test plan;
- GitHub (`/login/oauth/authorize`, `/login/oauth/access_token`, which answers **200**
  with `{"error": "bad_verification_code"}` for a bad code like the real one, `/user`,
  `/user/emails`), replaying GitHub's real response shapes;
- Facebook (`/dialog/oauth`, `/oauth/access_token`, `/me?fields=id,name,email,picture`),
  replaying the Graph API's shapes (`picture.data.url`).

Each test sets the scenario: an `IdTokenMutation` for the next ID tokens, and a `Fault`
per endpoint name (`idp.faults["token"] = Fault.HTML`). Every request is recorded, so a
test can assert how many reached an endpoint (`idp.count("token")`), and every secret
the provider hands out (codes, tokens, client secrets) is kept in `idp.secrets_issued`
so a test can prove none of them leaks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.servers import free_port, serve_in_thread

HUGE_BYTES = 300 * 1024  # over authsvc's 256 KiB cap
GITHUB_TOKEN_ERROR_URI = (
    "https://docs.github.com/apps/managing-oauth-apps/"
    "troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"
)


class Fault(enum.StrEnum):
    """How an endpoint misbehaves instead of answering."""

    STATUS_500 = "500"
    HTML = "html"  # a 200 login page instead of JSON
    INVALID_JSON = "invalid-json"
    JSON_LIST = "json-list"
    SLOW = "slow"  # nothing at all until `slow_seconds` have passed
    TRICKLE = "trickle"  # headers at once, then one byte of (valid) JSON whitespace at a time
    HUGE = "huge"  # 300 KiB of valid JSON with a Content-Length
    HUGE_CHUNKED = "huge-chunked"  # the same, chunked, with no Content-Length
    HUGE_DECLARED = "huge-declared"  # declares 64 MiB, sends 1 KiB, then stalls
    REDIRECT = "redirect"  # 302 to /redirected, which would answer nicely


FAST_FAULTS = (
    Fault.STATUS_500,
    Fault.HTML,
    Fault.INVALID_JSON,
    Fault.JSON_LIST,
    Fault.HUGE,
    Fault.HUGE_CHUNKED,
    Fault.REDIRECT,
)


class IdTokenMutation(enum.StrEnum):
    """What is odd about the next ID tokens (the OIDF RP tests, and then some)."""

    WRONG_ISS = "wrong-iss"
    WRONG_AUD = "wrong-aud"
    AUD_LIST_WITHOUT_AZP = "aud-list-without-azp"
    AUD_LIST_WITH_OTHER_AZP = "aud-list-with-other-azp"
    MISSING_SUB = "missing-sub"
    NUMERIC_SUB = "numeric-sub"
    MISSING_IAT = "missing-iat"
    MISSING_EXP = "missing-exp"
    EXPIRED = "expired"
    ISSUED_IN_THE_FUTURE = "issued-in-the-future"
    WRONG_NONCE = "wrong-nonce"
    MISSING_NONCE = "missing-nonce"
    ALG_NONE = "alg-none"
    HS256_WITH_PUBLIC_KEY = "hs256-signed-with-the-public-key"
    BAD_SIGNATURE = "bad-rsa-signature"
    KID_ABSENT_SEVERAL_KEYS = "kid-absent-with-several-keys"
    # Not a negative: with one published key, a token without `kid` is fine (OIDF).
    KID_ABSENT_ONE_KEY = "kid-absent-with-one-key"
    UNKNOWN_KID = "unknown-kid"
    NOT_A_JWT = "not-a-jwt"
    NO_ID_TOKEN = "no-id-token"


@dataclass
class IdpUser:
    """The person who signs in at the OpenID Connect endpoints."""

    sub: str = "248289761001"
    email: str = "Ada@Example.com"
    email_verified: bool = True
    name: str = "Ada Lovelace"
    picture: str = "https://images.example.com/ada.png"


@dataclass
class Grant:
    code: str
    kind: str  # "oidc", "github" or "facebook"
    client_id: str
    redirect_uri: str
    state: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    used: bool = False


@dataclass(frozen=True)
class Seen:
    """One request the provider received."""

    endpoint: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: str

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body, keep_blank_values=True))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64json(value: object) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def s256(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def github_user_shape(**overrides: Any) -> dict[str, Any]:
    """`GET https://api.github.com/user` as GitHub answers it (integer id, `name` may be null)."""
    user: dict[str, Any] = {
        "login": "octo-ada",
        "id": 583231,
        "node_id": "MDQ6VXNlcjU4MzIzMQ==",
        "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
        "gravatar_id": "",
        "url": "https://api.github.com/users/octo-ada",
        "html_url": "https://github.com/octo-ada",
        "type": "User",
        "site_admin": False,
        "name": "Ada GitHub",
        "company": None,
        "blog": "",
        "location": None,
        # The public profile address: not necessarily verified, never used by authsvc.
        "email": "public-profile@example.com",
        "hireable": None,
        "bio": None,
        "twitter_username": None,
        "public_repos": 8,
        "public_gists": 1,
        "followers": 20,
        "following": 0,
        "created_at": "2011-01-25T18:44:36Z",
        "updated_at": "2026-10-01T12:00:00Z",
    }
    user.update(overrides)
    return user


def github_emails_shape() -> list[dict[str, Any]]:
    """`GET https://api.github.com/user/emails`: primary/verified/visibility per address."""
    return [
        {
            "email": "old-address@example.com",
            "primary": False,
            "verified": True,
            "visibility": None,
        },
        {
            "email": "Octo.Ada@Example.com",
            "primary": True,
            "verified": True,
            "visibility": "public",
        },
        {
            "email": "583231+octo-ada@users.noreply.github.com",
            "primary": False,
            "verified": True,
            "visibility": None,
        },
    ]


def facebook_me_shape(**overrides: Any) -> dict[str, Any]:
    """`GET https://graph.facebook.com/me?fields=id,name,email,picture` (string id)."""
    me: dict[str, Any] = {
        "id": "10158327069442316",
        "name": "Ada Facebook",
        "email": "ada.fb@example.com",
        "picture": {
            "data": {
                "height": 50,
                "is_silhouette": False,
                "url": "https://platform-lookaside.fbsbx.com/platform/profilepic/"
                "?asid=10158327069442316&height=50&width=50&ext=1798425996&hash=AbZ",
                "width": 50,
            }
        },
    }
    me.update(overrides)
    return me


class HostileIdP:
    """The provider's state: keys, grants, scenario knobs and what it has seen."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.issuer = base_url
        self.keys = {
            kid: RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"}, private=True)
            for kid in ("key-1", "key-2", "key-3")
        }
        # An attacker's key: signs tokens that claim to be key-1.
        self.attacker_key = RSAKey.generate_key(2048, parameters={"kid": "key-1"}, private=True)
        self.clients = {
            "oidc-client": f"oidc-secret-{secrets.token_urlsafe(12)}",
            "google-client": f"google-secret-{secrets.token_urlsafe(12)}",
            "github-client": f"github-secret-{secrets.token_urlsafe(12)}",
            "facebook-client": f"facebook-secret-{secrets.token_urlsafe(12)}",
        }
        self.app = self._build_app()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.reset()

    # -- scenario -------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a well-behaved provider; wakes any request still stalling."""
        self._release.set()
        self._release = threading.Event()
        self.requests: list[Seen] = []
        self.grants: dict[str, Grant] = {}
        self.access_tokens: dict[str, tuple[str, str]] = {}  # token -> (kind, client_id)
        self.secrets_issued: set[str] = set(self.clients.values())
        self.faults: dict[str, Fault] = {}
        self.slow_seconds = 10.0
        self.id_token_mutation: IdTokenMutation | None = None
        self.published_kids = ["key-1"]
        self.signing_kid = "key-1"
        self.user = IdpUser()
        self.github_user = github_user_shape()
        self.github_emails: list[dict[str, Any]] = github_emails_shape()
        self.facebook_me = facebook_me_shape()
        # RFC 9207: the OIDC authorization response names its issuer; a test may lie.
        self.authorization_iss: str | None = self.issuer
        self.authorization_error: str | None = None
        self.discovery_overrides: dict[str, Any] = {}
        # Last word on the token endpoint's JSON text (e.g. to write `1e400`).
        self.token_json_hook: Callable[[dict[str, Any]], str] | None = None

    def release(self) -> None:
        self._release.set()

    def rotate_keys(self) -> None:
        """The provider now signs with key-2 and publishes only key-2."""
        self.published_kids = ["key-2"]
        self.signing_kid = "key-2"

    def count(self, *endpoints: str) -> int:
        return sum(1 for seen in list(self.requests) if seen.endpoint in endpoints)

    def seen(self, endpoint: str) -> list[Seen]:
        return [seen for seen in list(self.requests) if seen.endpoint == endpoint]

    @property
    def token_requests(self) -> int:
        """Requests to any of the three token endpoints."""
        return self.count("token", "github_token", "facebook_token")

    def _issue(self, value: str) -> str:
        with self._lock:
            self.secrets_issued.add(value)
        return value

    # -- the app ----------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        def route(path: str, name: str, handler: Callable[[Request], Awaitable[Response]]) -> Route:
            async def endpoint(request: Request) -> Response:
                await self._record(name, request)
                fault = self.faults.get(name)
                if fault is not None:
                    return await self._fault(fault)
                return await handler(request)

            return Route(path, endpoint, methods=["GET", "POST"], name=name)

        return Starlette(
            routes=[
                route("/.well-known/openid-configuration", "discovery", self._discovery),
                route("/jwks", "jwks", self._jwks),
                route("/authorize", "authorize", self._authorize_oidc),
                route("/token", "token", self._token_oidc),
                route("/userinfo", "userinfo", self._userinfo),
                route("/login/oauth/authorize", "github_authorize", self._authorize_github),
                route("/login/oauth/access_token", "github_token", self._token_github),
                route("/user", "github_user", self._github_user),
                route("/user/emails", "github_emails", self._github_emails),
                route("/dialog/oauth", "facebook_authorize", self._authorize_facebook),
                route("/oauth/access_token", "facebook_token", self._token_facebook),
                route("/me", "facebook_me", self._facebook_me),
                route("/probe", "probe", self._probe),
                route("/redirected", "redirected", self._redirected),
            ]
        )

    async def _record(self, name: str, request: Request) -> None:
        body = (await request.body()).decode("utf-8", "replace")
        self.requests.append(
            Seen(
                endpoint=name,
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
        )

    async def _stall(self, seconds: float) -> None:
        """Wait `seconds`, or less if the test is over (reset() or release())."""
        await asyncio.to_thread(self._release.wait, seconds)

    async def _fault(self, fault: Fault) -> Response:
        if fault is Fault.STATUS_500:
            return JSONResponse({"error": "server_error"}, status_code=500)
        if fault is Fault.HTML:
            return HTMLResponse("<!doctype html><html><body><h1>Sign in</h1></body></html>")
        if fault is Fault.INVALID_JSON:
            return Response('{"access_token": "trunc', media_type="application/json")
        if fault is Fault.JSON_LIST:
            return JSONResponse([{"access_token": "in-a-list", "token_type": "Bearer"}])
        if fault is Fault.SLOW:
            await self._stall(self.slow_seconds)
            return JSONResponse({"error": "too_late"})
        if fault is Fault.TRICKLE:
            return StreamingResponse(self._trickle(), media_type="application/json")
        if fault is Fault.HUGE:
            return Response(_huge_json(), media_type="application/json")
        if fault is Fault.HUGE_CHUNKED:
            return StreamingResponse(_chunks(_huge_json()), media_type="application/json")
        if fault is Fault.HUGE_DECLARED:
            return _DeclaredHugeResponse(self._stall, self.slow_seconds)
        return RedirectResponse(f"{self.base}/redirected", status_code=302)

    async def _trickle(self) -> AsyncIterator[bytes]:
        release = self._release
        deadline = time.monotonic() + self.slow_seconds
        while time.monotonic() < deadline and not release.is_set():
            yield b" "
            await asyncio.sleep(0.1)
        yield b'{"error": "too_late"}'

    async def _probe(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def _redirected(self, request: Request) -> Response:
        return JSONResponse({"access_token": "from-a-redirect", "id": 1, "ok": True})

    # -- OpenID Connect -----------------------------------------------------------------

    async def _discovery(self, request: Request) -> Response:
        document: dict[str, Any] = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.base}/authorize",
            "token_endpoint": f"{self.base}/token",
            "userinfo_endpoint": f"{self.base}/userinfo",
            "jwks_uri": f"{self.base}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "email", "profile"],
            "authorization_response_iss_parameter_supported": True,
        }
        document.update(self.discovery_overrides)
        return JSONResponse(document)

    async def _jwks(self, request: Request) -> Response:
        kids = list(self.published_kids)
        if self.id_token_mutation is IdTokenMutation.KID_ABSENT_SEVERAL_KEYS:
            kids += [kid for kid in ("key-1", "key-2") if kid not in kids]
        elif self.id_token_mutation is IdTokenMutation.KID_ABSENT_ONE_KEY:
            kids = [self.signing_kid]
        keys = [self.keys[kid].as_dict(private=False) for kid in kids]
        return JSONResponse({"keys": keys})

    def _new_grant(self, request: Request, kind: str) -> Grant:
        query = request.query_params
        grant = Grant(
            code=self._issue(f"{kind}-code-{secrets.token_urlsafe(18)}"),
            kind=kind,
            client_id=query.get("client_id", ""),
            redirect_uri=query.get("redirect_uri", ""),
            state=query.get("state"),
            code_challenge=query.get("code_challenge"),
            code_challenge_method=query.get("code_challenge_method"),
            nonce=query.get("nonce"),
        )
        self.grants[grant.code] = grant
        return grant

    def _back_to_client(self, request: Request, kind: str, iss: str | None) -> Response:
        query = request.query_params
        if query.get("client_id") not in self.clients or not query.get("redirect_uri"):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        params: dict[str, str] = {}
        if self.authorization_error:
            params["error"] = self.authorization_error
        else:
            params["code"] = self._new_grant(request, kind).code
        if query.get("state") is not None:
            params["state"] = query["state"]
        if iss is not None:
            params["iss"] = iss
        redirect_uri = query["redirect_uri"]
        joiner = "&" if urlsplit(redirect_uri).query else "?"
        return RedirectResponse(f"{redirect_uri}{joiner}{urlencode(params)}", status_code=302)

    async def _authorize_oidc(self, request: Request) -> Response:
        return self._back_to_client(request, "oidc", self.authorization_iss)

    def _client_auth(self, request: Request, form: dict[str, str]) -> str | None:
        """The authenticated client id (client_secret_basic or client_secret_post)."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:]).decode()
            except ValueError:
                return None
            client_id, _, secret = decoded.partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        expected = self.clients.get(client_id)
        if expected is None or not hmac.compare_digest(expected, secret):
            return None
        return client_id

    def _redeem(self, form: dict[str, str], client_id: str, kind: str) -> Grant | None:
        """The grant for this code, once; None for an unknown, used or mismatched one."""
        with self._lock:
            grant = self.grants.get(form.get("code", ""))
            if grant is None or grant.used or grant.kind != kind:
                return None
            grant.used = True
        if grant.client_id != client_id or grant.redirect_uri != form.get("redirect_uri"):
            return None
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier")
            if grant.code_challenge_method != "S256" or not verifier:
                return None
            if not hmac.compare_digest(s256(verifier), grant.code_challenge):
                return None
        return grant

    def _access_token(self, kind: str, client_id: str, prefix: str) -> str:
        token = self._issue(f"{prefix}{secrets.token_urlsafe(24)}")
        self.access_tokens[token] = (kind, client_id)
        return token

    async def _token_oidc(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        client_id = self._client_auth(request, form)
        if client_id is None:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        grant = self._redeem(form, client_id, "oidc")
        if grant is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        tokens: dict[str, Any] = {
            "access_token": self._access_token("oidc", client_id, "oidc-at-"),
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "openid email profile",
            "refresh_token": self._issue(f"oidc-rt-{secrets.token_urlsafe(24)}"),
        }
        if self.id_token_mutation is not IdTokenMutation.NO_ID_TOKEN:
            tokens["id_token"] = self._issue(self._id_token(grant))
        text = self.token_json_hook(tokens) if self.token_json_hook else json.dumps(tokens)
        return Response(
            text,
            media_type="application/json",
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _id_token(self, grant: Grant) -> str:
        now = int(time.time())
        user = self.user
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user.sub,
            "aud": grant.client_id,
            "exp": now + 600,
            "iat": now,
            "auth_time": now,
            "nonce": grant.nonce,
            "email": user.email,
            "email_verified": user.email_verified,
            "name": user.name,
            "picture": user.picture,
        }
        if grant.nonce is None:
            del claims["nonce"]
        header: dict[str, Any] = {"alg": "RS256", "kid": self.signing_kid}
        key = self.keys[self.signing_kid]
        mutation = self.id_token_mutation
        M = IdTokenMutation
        if mutation is M.WRONG_ISS:
            claims["iss"] = "https://accounts.evil.example"
        elif mutation is M.WRONG_AUD:
            claims["aud"] = "someone-elses-client"
        elif mutation is M.AUD_LIST_WITHOUT_AZP:
            claims["aud"] = [grant.client_id, "someone-elses-client"]
        elif mutation is M.AUD_LIST_WITH_OTHER_AZP:
            claims["aud"] = [grant.client_id, "someone-elses-client"]
            claims["azp"] = "someone-elses-client"
        elif mutation is M.MISSING_SUB:
            del claims["sub"]
        elif mutation is M.NUMERIC_SUB:
            claims["sub"] = 248289761001
        elif mutation is M.MISSING_IAT:
            del claims["iat"]
        elif mutation is M.MISSING_EXP:
            del claims["exp"]
        elif mutation is M.EXPIRED:
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        elif mutation is M.ISSUED_IN_THE_FUTURE:
            claims["iat"], claims["exp"] = now + 3600, now + 7200
        elif mutation is M.WRONG_NONCE:
            claims["nonce"] = "not-the-nonce-of-this-sign-in"
        elif mutation is M.MISSING_NONCE:
            claims.pop("nonce", None)
        elif mutation is M.ALG_NONE:
            return f"{_b64json({'alg': 'none', 'typ': 'JWT'})}.{_b64json(claims)}."
        elif mutation is M.HS256_WITH_PUBLIC_KEY:
            # The classic key-confusion attack: HMAC keyed with the published RSA key.
            head = {"alg": "HS256", "typ": "JWT", "kid": self.signing_kid}
            signing_input = f"{_b64json(head)}.{_b64json(claims)}"
            public_pem = key.as_bytes(private=False)
            mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
            return f"{signing_input}.{_b64url(mac)}"
        elif mutation is M.BAD_SIGNATURE:
            key = self.attacker_key
        elif mutation in (M.KID_ABSENT_SEVERAL_KEYS, M.KID_ABSENT_ONE_KEY):
            del header["kid"]
        elif mutation is M.UNKNOWN_KID:
            header["kid"] = "key-3"
            key = self.keys["key-3"]
        elif mutation is M.NOT_A_JWT:
            return "this-is-not-a-jwt"
        return jwt.encode(header, claims, key)

    def _bearer(self, request: Request, kind: str) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            token = request.query_params.get("access_token", "")
        owner = self.access_tokens.get(token)
        return owner is not None and owner[0] == kind

    async def _userinfo(self, request: Request) -> Response:
        if not self._bearer(request, "oidc"):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        user = self.user
        return JSONResponse(
            {
                "sub": user.sub,
                "email": user.email,
                "email_verified": user.email_verified,
                "name": user.name,
                "picture": user.picture,
            }
        )

    # -- GitHub -----------------------------------------------------------------------

    async def _authorize_github(self, request: Request) -> Response:
        return self._back_to_client(request, "github", None)

    async def _token_github(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        client_id = self._client_auth(request, form)
        if client_id is None:
            return JSONResponse(
                {
                    "error": "incorrect_client_credentials",
                    "error_description": "The client_id and/or client_secret passed are incorrect.",
                }
            )
        if self._redeem(form, client_id, "github") is None:
            # GitHub answers 200 for a bad code, with an error object.
            return JSONResponse(
                {
                    "error": "bad_verification_code",
                    "error_description": "The code passed is incorrect or expired.",
                    "error_uri": GITHUB_TOKEN_ERROR_URI,
                }
            )
        return JSONResponse(
            {
                "access_token": self._access_token("github", client_id, "gho_"),
                "token_type": "bearer",
                "scope": "read:user,user:email",
            }
        )

    async def _github_user(self, request: Request) -> Response:
        if not self._bearer(request, "github"):
            return _github_bad_credentials()
        return JSONResponse(self.github_user)

    async def _github_emails(self, request: Request) -> Response:
        if not self._bearer(request, "github"):
            return _github_bad_credentials()
        return JSONResponse(self.github_emails)

    # -- Facebook ---------------------------------------------------------------------

    async def _authorize_facebook(self, request: Request) -> Response:
        return self._back_to_client(request, "facebook", None)

    async def _token_facebook(self, request: Request) -> Response:
        raw = (await request.body()).decode()
        form = {**dict(request.query_params), **dict(parse_qsl(raw, keep_blank_values=True))}
        client_id = self._client_auth(request, form)
        if client_id is None or self._redeem(form, client_id, "facebook") is None:
            return JSONResponse(
                {
                    "error": {
                        "message": "Invalid verification code format.",
                        "type": "OAuthException",
                        "code": 100,
                        "fbtrace_id": "AbCdEfGhIjK",
                    }
                },
                status_code=400,
            )
        return JSONResponse(
            {
                "access_token": self._access_token("facebook", client_id, "EAAB"),
                "token_type": "bearer",
                "expires_in": 5183944,
            }
        )

    async def _facebook_me(self, request: Request) -> Response:
        if not self._bearer(request, "facebook"):
            return JSONResponse(
                {"error": {"message": "Invalid OAuth access token.", "code": 190}},
                status_code=400,
            )
        fields = request.query_params.get("fields", "id,name").split(",")
        me = self.facebook_me
        return JSONResponse({name: me[name] for name in fields if name in me})


def _github_bad_credentials() -> Response:
    return JSONResponse(
        {
            "message": "Bad credentials",
            "documentation_url": "https://docs.github.com/rest",
            "status": "401",
        },
        status_code=401,
    )


def _huge_json() -> bytes:
    return b'{"access_token": "x", "padding": "' + b"a" * HUGE_BYTES + b'"}'


async def _chunks(data: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await asyncio.sleep(0)


class _DeclaredHugeResponse(Response):
    """Declares a 64 MiB body, sends 1 KiB of it, then stalls."""

    def __init__(self, stall: Callable[[float], Awaitable[None]], seconds: float) -> None:
        super().__init__()
        self._stall_for = stall
        self._seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(64 * 1024 * 1024).encode()),
                ],
            }
        )
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b" " * 1024, "more_body": True})
        await self._stall_for(self._seconds)


@contextlib.contextmanager
def running_idp() -> Iterator[HostileIdP]:
    """A hostile provider served by uvicorn on 127.0.0.1 for the duration of the block."""
    port = free_port()
    idp = HostileIdP(f"http://127.0.0.1:{port}")
    with serve_in_thread(idp.app, port):
        try:
            yield idp
        finally:
            idp.release()
