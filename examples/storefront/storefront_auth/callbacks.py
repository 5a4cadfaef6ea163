"""The storefront's `callbacks`, each extending authsvc's default.

- jwt: the default's `id`, `role`, `avatar`, `update()` and missing-role lookup, plus:
  `fundraiserId` only for FUNDRAISER accounts, looked up in the user store; `avatar` from
  the OAuth profile at an OAuth sign-in; and the storefront's own claim, `permissions`.
- session: the default (`session.user.image` is the token's `avatar`), plus `permissions`.
- signIn: STAFF sign in through the company's single sign-on (the `oidc` provider) with a
  verified email only: never with a password, never with an unverified address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authsvc.callbacks import (
    Callbacks,
    JwtParams,
    SessionParams,
    SignInParams,
    default_jwt,
    default_session,
    default_sign_in,
    find_user,
)
from authsvc.tokens import Claims
from authsvc.users.models import Role

STAFF_PROVIDER = "oidc"
# What each role may do in the storefront's back office, carried in the token so the
# storefront's pages and APIs decide without a database call.
PERMISSIONS: Mapping[str, list[str]] = {
    Role.ADMIN: ["orders:read", "orders:write", "users:manage"],
    Role.STAFF: ["orders:read", "orders:write"],
    Role.DEVELOPER: ["orders:read"],
    Role.FUNDRAISER: ["fundraiser:read"],
    Role.WHOLESALE: ["catalogue:wholesale"],
    Role.CUSTOMER: [],
}


def avatar_from(profile: Mapping[str, Any]) -> str | None:
    """The picture an OAuth provider gives: OpenID Connect and Google say `picture`,
    GitHub `avatar_url`."""
    for key in ("picture", "avatar_url"):
        value = profile.get(key)
        if isinstance(value, str) and value.startswith("https://"):
            return value
    return None


async def jwt(params: JwtParams) -> Claims:
    token = await default_jwt(params)
    if params.user is None and params.trigger != "update":
        return token  # an ordinary request: the token as it is, no database call
    if params.profile is not None:
        token["avatar"] = avatar_from(params.profile) or token.get("avatar")
    role = token.get("role")
    token["fundraiserId"] = None
    if role == Role.FUNDRAISER:
        fundraiser = await find_user(params.services, "id", token.get("id"))
        token["fundraiserId"] = fundraiser.fundraiser_id if fundraiser else None
    token["permissions"] = PERMISSIONS.get(str(role), [])
    return token


async def session(params: SessionParams) -> dict[str, Any]:
    result = await default_session(params)
    result["user"]["permissions"] = params.token.get("permissions", [])
    return result


async def sign_in(params: SignInParams) -> bool | str:
    allowed = await default_sign_in(params)
    if allowed is not True:
        return allowed
    user = params.user
    if user is None and params.profile is not None:  # a first OAuth sign-in
        user = await find_user(params.services, "email", params.profile.get("email"))
    if user is None or user.role is not Role.STAFF:
        return True
    verified = params.profile is not None and params.profile.get("email_verified") is True
    return params.account.provider == STAFF_PROVIDER and verified


CALLBACKS = Callbacks(jwt=jwt, session=session, sign_in=sign_in)
