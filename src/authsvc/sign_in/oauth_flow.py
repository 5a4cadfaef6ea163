"""The OAuth sign-in flow, start to finish, with no HTTP framework in sight.

`begin_sign_in` makes the authorization URL and the check cookies; `complete_sign_in`
verifies what comes back to the callback, talks to the provider, finds or creates the
user, and makes the session's claims. Every way it can fail is a `SignInFailure` carrying
next-auth's error code, so the route only has to turn it into a redirect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from authsvc.callbacks import Account, SignInParams, run_sign_in
from authsvc.cookies import CookiePolicy
from authsvc.db import DATABASE_ERRORS
from authsvc.events import (
    CreateUserEvent,
    Events,
    LinkAccountEvent,
    SignInEvent,
    UpdateUserEvent,
)
from authsvc.oauth_checks import code_challenge, issue_checks, read_checks
from authsvc.outbound import ProviderError
from authsvc.providers.oauth_client import RESERVED_PARAMS, OAuthProvider, Profile
from authsvc.providers.oidc import OidcProvider
from authsvc.services import Services
from authsvc.session import sign_in_claims
from authsvc.sign_in.result import SignedIn, SignInFailure
from authsvc.users.emails import normalize_email
from authsvc.users.repository import (
    AccountLinkedError,
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
    """Who signed in, and how (for the events and the jwt callback)."""

    user: UserRecord
    account: Account
    profile: Profile
    is_new_user: bool
    # What changed in the user store on the way (for the events).
    linked: bool = False
    updated: bool = False


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
    services: Services,
) -> SignedIn | SignInFailure:
    """The callback's `params` (query or form_post body) and the request's cookies (the
    checks) → the new session's claims, or why not."""
    outcome = await _signed_in_user(provider, params, cookies, ctx, services)
    if isinstance(outcome, SignInFailure):
        log.warning("%s %s: %s", outcome.code or "OAuthProfile", provider.id, outcome.reason)
        return outcome
    await _announce_changes(services.events, outcome)
    claims = await sign_in_claims(
        services,
        outcome.user,
        outcome.account,
        profile=outcome.profile.raw,
        is_new_user=outcome.is_new_user,
    )
    if claims is None:
        return SignInFailure("Configuration", "jwt callback failed")
    return SignedIn(claims, _sign_in_event(outcome))


async def _signed_in_user(
    provider: OAuthProvider,
    params: Mapping[str, Any],
    cookies: Mapping[str, str],
    ctx: FlowContext,
    services: Services,
) -> OAuthSignIn | SignInFailure:
    if "error" in params:
        return SignInFailure("Callback", "provider returned an error to the callback")
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
        return SignInFailure("OAuthCallback", "state, PKCE or nonce check missing or invalid")
    code = params.get("code")
    if not isinstance(code, str) or not code or len(code) > 2048:
        return SignInFailure("OAuthCallback", "callback has no code")
    try:
        first_use = await services.checks.redeem(returned.state_jti, returned.state_expires)
    except DATABASE_ERRORS as exc:
        return SignInFailure("Callback", f"check store unavailable: {type(exc).__name__}")
    if not first_use:
        return SignInFailure("OAuthCallback", "state was used already")
    try:
        async with asyncio.timeout(ctx.deadline):
            endpoints = await provider.endpoints(ctx.http)
            issuer = params.get("iss")
            if issuer is not None and endpoints.issuer and issuer != endpoints.issuer:
                # RFC 9207: the response names another issuer (mix-up attack).
                return SignInFailure("OAuthCallback", "callback iss is not the provider's issuer")
            tokens = await provider.exchange_code(
                ctx.http,
                endpoints,
                code=code,
                redirect_uri=ctx.redirect_uri,
                code_verifier=returned.code_verifier,
            )
            profile = await provider.profile(ctx.http, endpoints, tokens, nonce=returned.nonce)
    except ProviderError as exc:
        return SignInFailure("OAuthCallback", str(exc))
    except TimeoutError:
        return SignInFailure("OAuthCallback", "provider did not answer in time")
    if not profile.id or len(profile.id) > MAX_PROVIDER_ID_LENGTH:
        return SignInFailure(None, "profile has no usable id")
    account = Account(
        provider=provider.id,
        type="oidc" if isinstance(provider, OidcProvider) else "oauth",
        provider_account_id=profile.id,
        tokens=tokens,
    )
    users = services.users
    try:
        linked = await users.get_by_account(account.provider, account.provider_account_id)
    except DATABASE_ERRORS as exc:
        return SignInFailure("OAuthCreateAccount", f"user store failed: {type(exc).__name__}")
    allowed = await run_sign_in(
        services.callbacks.sign_in,
        SignInParams(account=account, services=services, user=linked, profile=profile.raw),
    )
    if allowed is not True:
        return SignInFailure("AccessDenied", "signIn callback refused", refusal=allowed)
    link_by_email = services.settings.link_accounts_by_email
    try:
        return await _find_or_create_user(users, profile, account, linked, link_by_email)
    except DATABASE_ERRORS as exc:
        return SignInFailure("OAuthCreateAccount", f"user store failed: {type(exc).__name__}")


async def _find_or_create_user(
    users: UserRepository,
    profile: Profile,
    account: Account,
    user: UserRecord | None,
    link_by_email: bool,
) -> OAuthSignIn | SignInFailure:
    """Accounts are identified by (provider, id); an email match alone never links (R26).
    `user` is the one linked to this identity already, if any."""
    provider, provider_id = account.provider, account.provider_account_id
    # What a provider says must fit the columns; a display field never blocks a sign-in.
    name = profile.name[:MAX_NAME_LENGTH] if profile.name else None
    image = profile.image if profile.image and len(profile.image) <= MAX_IMAGE_LENGTH else None
    if user is not None:
        updated = await users.update_profile(user.id, name=name, image=image)
        changed = (user.name, user.image) != (name, image)
        return OAuthSignIn(
            updated or user, account, profile, is_new_user=False, updated=changed and bool(updated)
        )
    email = normalize_email(profile.email)
    if email is None or not profile.email_verified:
        # An unverified address could pre-claim someone else's email (account pre-hijacking).
        return SignInFailure("OAuthCallback", "provider gave no verified email")
    existing = await users.get_by_email(email)
    if existing is not None:
        # A concurrent first sign-in of this same identity may have created the user
        # between the two lookups: then it is simply ours.
        linked = await users.get_by_account(provider, provider_id)
        if linked is not None:
            return OAuthSignIn(linked, account, profile, is_new_user=False)
        if not link_by_email:
            return SignInFailure("OAuthAccountNotLinked", "email belongs to another sign-in method")
        try:
            await users.link_account(existing.id, provider, provider_id)
        except AccountLinkedError:
            # A concurrent sign-in linked it a moment ago: the same outcome, already told.
            return OAuthSignIn(existing, account, profile, is_new_user=False)
        return OAuthSignIn(existing, account, profile, is_new_user=False, linked=True)
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
            return SignInFailure("OAuthAccountNotLinked", "email taken during sign-in")
        return OAuthSignIn(winner, account, profile, is_new_user=False)
    return OAuthSignIn(created, account, profile, is_new_user=True, linked=True)


async def _announce_changes(events: Events, signed_in: OAuthSignIn) -> None:
    """What the sign-in changed in the user store, in next-auth's order (before the session
    is made, so they are told even if making it fails)."""
    user, account, profile = signed_in.user, signed_in.account, signed_in.profile.raw
    if signed_in.is_new_user:
        await events.emit(CreateUserEvent(user=user))
    if signed_in.linked:
        await events.emit(LinkAccountEvent(user=user, account=account, profile=profile))
    if signed_in.updated:
        await events.emit(UpdateUserEvent(user=user))


def _sign_in_event(signed_in: OAuthSignIn) -> SignInEvent:
    return SignInEvent(
        user=signed_in.user,
        account=signed_in.account,
        profile=signed_in.profile.raw,
        is_new_user=signed_in.is_new_user,
    )
