"""The OAuth sign-in flow, start to finish, with no HTTP framework in sight.

`begin_sign_in` makes the authorization URL and the check cookies; `complete_sign_in`
verifies what comes back to the callback, talks to the provider, and finds or creates
the user. Every way it can fail is a value (`OAuthFailure`) carrying next-auth's error
code, so the route only has to turn it into a redirect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from authsvc.callbacks import Account, SignInCallback, SignInParams
from authsvc.cookies import CookiePolicy
from authsvc.db import DATABASE_ERRORS
from authsvc.oauth_checks import code_challenge, issue_checks, read_checks
from authsvc.outbound import ProviderError
from authsvc.providers.oauth import RESERVED_PARAMS, OAuthProvider, Profile
from authsvc.providers.oidc import OidcProvider
from authsvc.users.emails import normalize_email
from authsvc.users.repository import (
    AccountLinkedError,
    CheckStore,
    UserExistsError,
    UserRecord,
    UserRepository,
)

log = logging.getLogger("authsvc.oauth")

MAX_FORWARDED_PARAMS = 20
# Column sizes of the users and accounts tables.
MAX_PROVIDER_ID_LENGTH = 255
MAX_NAME_LENGTH = 200
MAX_IMAGE_LENGTH = 2048
MAX_PARAM_LENGTH = 512


@dataclass(frozen=True, slots=True)
class OAuthSignIn:
    user: UserRecord
    account: Account
    profile: Profile
    is_new_user: bool


@dataclass(frozen=True, slots=True)
class OAuthFailure:
    """next-auth's error code (None: back to the sign-in page with no code) and a log line."""

    code: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class FlowContext:
    http: httpx.AsyncClient
    policy: CookiePolicy
    secrets: Sequence[str]
    redirect_uri: str
    deadline: float
    now: float


def forwarded_params(query: Mapping[str, str]) -> dict[str, str]:
    """Authorization parameters a client may add (`prompt`, `login_hint`, …), bounded."""
    params: dict[str, str] = {}
    for key, value in query.items():
        if key in RESERVED_PARAMS or len(key) > 64 or len(value) > MAX_PARAM_LENGTH:
            continue
        params[key] = value
        if len(params) == MAX_FORWARDED_PARAMS:
            break
    return params


async def begin_sign_in(
    provider: OAuthProvider, query: Mapping[str, str], ctx: FlowContext
) -> tuple[str, list[str]]:
    """The authorization URL and the check cookies; raises ProviderError (OAuthSignin)."""
    issued = issue_checks(
        provider.id, provider.checks, policy=ctx.policy, secrets_=ctx.secrets, now=ctx.now
    )
    params = forwarded_params(query)
    if issued.nonce is not None:
        params["nonce"] = issued.nonce
    try:
        async with asyncio.timeout(ctx.deadline):
            endpoints = await provider.endpoints(ctx.http)
            url = await provider.authorization_url(
                ctx.http,
                endpoints,
                redirect_uri=ctx.redirect_uri,
                state=issued.state,
                code_challenge=code_challenge(issued.code_verifier)
                if issued.code_verifier
                else None,
                params=params,
            )
    except TimeoutError:
        raise ProviderError("provider did not answer in time") from None
    return url, issued.cookies


async def complete_sign_in(
    provider: OAuthProvider,
    params: Mapping[str, Any],
    cookies: Mapping[str, str],
    ctx: FlowContext,
    *,
    users: UserRepository,
    checks: CheckStore,
    sign_in_callback: SignInCallback,
    link_by_email: bool,
) -> OAuthSignIn | OAuthFailure:
    if "error" in params:
        return OAuthFailure("Callback", "provider returned an error to the callback")
    returned = read_checks(
        provider.id,
        provider.checks,
        params.get("state"),
        cookies=cookies,
        policy=ctx.policy,
        secrets_=ctx.secrets,
        now=ctx.now,
    )
    if returned is None:
        return OAuthFailure("OAuthCallback", "state, PKCE or nonce check missing or invalid")
    code = params.get("code")
    if not isinstance(code, str) or not code or len(code) > 2048:
        return OAuthFailure("OAuthCallback", "callback has no code")
    try:
        first_use = await checks.redeem(returned.state_jti, returned.state_expires)
    except DATABASE_ERRORS as exc:
        return OAuthFailure("Callback", f"check store unavailable: {type(exc).__name__}")
    if not first_use:
        return OAuthFailure("OAuthCallback", "state was used already")
    try:
        async with asyncio.timeout(ctx.deadline):
            endpoints = await provider.endpoints(ctx.http)
            issuer = params.get("iss")
            if issuer is not None and endpoints.issuer and issuer != endpoints.issuer:
                # RFC 9207: the response names another issuer (mix-up attack).
                return OAuthFailure("OAuthCallback", "callback iss is not the provider's issuer")
            tokens = await provider.exchange_code(
                ctx.http,
                endpoints,
                code=code,
                redirect_uri=ctx.redirect_uri,
                code_verifier=returned.code_verifier,
            )
            profile = await provider.profile(ctx.http, endpoints, tokens, nonce=returned.nonce)
    except ProviderError as exc:
        return OAuthFailure("OAuthCallback", str(exc))
    except TimeoutError:
        return OAuthFailure("OAuthCallback", "provider did not answer in time")
    if not profile.id or len(profile.id) > MAX_PROVIDER_ID_LENGTH:
        return OAuthFailure(None, "profile has no usable id")
    account = Account(
        provider=provider.id,
        type="oidc" if isinstance(provider, OidcProvider) else "oauth",
        provider_account_id=profile.id,
        tokens=tokens,
    )
    if not await sign_in_callback(SignInParams(account=account, profile=profile.raw)):
        return OAuthFailure("AccessDenied", "signIn callback refused")
    try:
        return await _find_or_create_user(users, profile, account, link_by_email)
    except DATABASE_ERRORS as exc:
        return OAuthFailure("OAuthCreateAccount", f"user store failed: {type(exc).__name__}")


async def _find_or_create_user(
    users: UserRepository, profile: Profile, account: Account, link_by_email: bool
) -> OAuthSignIn | OAuthFailure:
    """Accounts are identified by (provider, id); an email match alone never links (R26)."""
    provider, provider_id = account.provider, account.provider_account_id
    # What a provider says must fit the columns; a display field never blocks a sign-in.
    name = profile.name[:MAX_NAME_LENGTH] if profile.name else None
    image = profile.image if profile.image and len(profile.image) <= MAX_IMAGE_LENGTH else None
    user = await users.get_by_account(provider, provider_id)
    if user is not None:
        updated = await users.update_profile(user.id, name=name, image=image)
        return OAuthSignIn(updated or user, account, profile, is_new_user=False)
    email = normalize_email(profile.email)
    if email is None or not profile.email_verified:
        # An unverified address could pre-claim someone else's email (account pre-hijacking).
        return OAuthFailure("OAuthCallback", "provider gave no verified email")
    existing = await users.get_by_email(email)
    if existing is not None:
        # A concurrent first sign-in of this same identity may have created the user
        # between the two lookups: then it is simply ours.
        linked = await users.get_by_account(provider, provider_id)
        if linked is not None:
            return OAuthSignIn(linked, account, profile, is_new_user=False)
        if not link_by_email:
            return OAuthFailure("OAuthAccountNotLinked", "email belongs to another sign-in method")
        # A concurrent sign-in may have linked it a moment ago: that is the same outcome.
        with contextlib.suppress(AccountLinkedError):
            await users.link_account(existing.id, provider, provider_id)
        return OAuthSignIn(existing, account, profile, is_new_user=False)
    try:
        created = await users.create_with_account(
            email=email,
            name=name,
            image=image,
            provider=provider,
            provider_account_id=provider_id,
        )
    except UserExistsError:
        # A concurrent first sign-in of the same identity won the race: use its user.
        winner = await users.get_by_account(provider, provider_id)
        if winner is None:
            return OAuthFailure("OAuthAccountNotLinked", "email taken during sign-in")
        return OAuthSignIn(winner, account, profile, is_new_user=False)
    return OAuthSignIn(created, account, profile, is_new_user=True)
