"""The callbacks: where a storefront puts its own logic, as in next-auth's `callbacks` option.

`Callbacks(jwt=…, session=…, sign_in=…, redirect=…)` is given to `create_app`; whatever is
left out keeps authsvc's default. The defaults are importable, so a callback extends one
instead of replacing it (and keeps the role, the missing-role lookup and `update()`)::

    async def jwt(params: JwtParams) -> Claims:
        token = await default_jwt(params)
        if params.user is not None:  # sign-in
            token["tier"] = "gold"
        return token

    app = create_app(callbacks=Callbacks(jwt=jwt))

Parameters keep next-auth's names and meaning (`token`, `user`, `account`, `profile`,
`trigger`, `session`, `is_new_user` for `isNewUser`), plus `services`: the parts of the app
a callback may use (its settings and a read-only view of the user store).

A callback that raises or returns the wrong type fails closed: no session is created or
read (`/session` answers `{}` and keeps the cookie, `/verify` answers 401) and one log
line names the callback. Role freshness and revocation are not callbacks: they run around
whichever jwt callback is in place (see `session.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from authsvc.lookups import BoundedLookups

# Re-exported: every callback and its default is importable from here.
from authsvc.redirects import RedirectCallback as RedirectCallback
from authsvc.redirects import default_redirect as default_redirect
from authsvc.tokens import Claims
from authsvc.users.records import UserLookup, UserRecord

if TYPE_CHECKING:
    from authsvc.settings import Settings

log = logging.getLogger("authsvc.callbacks")
Params = TypeVar("Params")

Trigger = Literal["signIn", "signUp", "update"]


class CallbackServices(Protocol):
    """What a callback can reach of the app: the services container provides it."""

    @property
    def settings(self) -> Settings: ...

    @property
    def users(self) -> UserLookup: ...

    @property
    def lookups(self) -> BoundedLookups: ...


@dataclass(frozen=True, slots=True)
class Account:
    """next-auth's `account`: how the user signed in."""

    provider: str
    type: Literal["credentials", "oauth", "oidc"]
    provider_account_id: str
    tokens: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JwtParams:
    """Arguments of the jwt callback; `user`/`account` are set only at sign-in."""

    token: Claims
    services: CallbackServices
    user: UserRecord | None = None
    account: Account | None = None
    profile: Mapping[str, Any] | None = None
    trigger: Trigger | None = None
    # The `data` posted to `POST /session` (client input: validate before use).
    session: Any = None
    is_new_user: bool | None = None


@dataclass(frozen=True, slots=True)
class SessionParams:
    session: dict[str, Any]
    token: Claims
    services: CallbackServices


@dataclass(frozen=True, slots=True)
class SignInParams:
    """Arguments of the signIn callback, called before a session is created.

    Credentials: `user` and `credentials` (the posted body). OAuth: `profile` (the
    provider's raw profile), and `user` when this provider identity is linked already.
    """

    account: Account
    services: CallbackServices
    user: UserRecord | None = None
    profile: Mapping[str, Any] | None = None
    credentials: Mapping[str, Any] | None = None


class SignInCallback(Protocol):
    """True to let the user in; False refuses (next-auth's `AccessDenied`); a URL (a
    string) refuses and sends the user there instead (through the redirect callback)."""

    async def __call__(self, params: SignInParams) -> bool | str: ...


class JwtCallback(Protocol):
    async def __call__(self, params: JwtParams) -> Claims: ...


class SessionCallback(Protocol):
    async def __call__(self, params: SessionParams) -> dict[str, Any]: ...


def initial_token(user: UserRecord) -> Claims:
    """next-auth's token before the jwt callback: name, email, picture, sub; plus when the
    session began (`authTime`, milliseconds), which refreshes keep and revocation reads."""
    token: Claims = {"name": user.name, "email": user.email, "picture": user.image}
    token = {key: value for key, value in token.items() if value is not None}
    token["sub"] = user.id
    token["authTime"] = int(time.time() * 1000)
    return token


def claims_from_user(user: UserRecord) -> Claims:
    """The fields the storefront keeps in its token."""
    return {
        "id": user.id,
        "role": user.role.value,
        "fundraiserId": user.fundraiser_id,
        "avatar": user.image,
    }


async def default_sign_in(params: SignInParams) -> bool | str:
    """The default signIn callback: everyone who authenticated may sign in."""
    return True


async def default_jwt(params: JwtParams) -> Claims:
    """The storefront design: the token carries the role; the database is a fallback.

    - sign-in: copy `id`, `role`, `fundraiserId`, `avatar` from the user;
    - `update`: re-read those (and `name`) from the database, never from client data;
    - any other request: use the token as it is, with no database call, unless `role` is
      missing (a token minted before roles existed), then look the user up by email once.

    Lookups go through `find_user`: one that fails or misses its deadline leaves the token
    without a role (the session stays; the next request tries again).
    """
    token = dict(params.token)
    if params.user is not None:
        token.update(claims_from_user(params.user))
        return token
    if params.trigger == "update":
        user = await find_user(params.services, "id", token.get("id") or token.get("sub"))
        if user is not None:
            token["name"] = user.name
            token.update(claims_from_user(user))
        return token
    if "role" not in token:
        user = await find_user(params.services, "email", token.get("email"))
        if user is not None:
            token.update(claims_from_user(user))
    return token


async def default_session(params: SessionParams) -> dict[str, Any]:
    """Map token fields onto `session.user`: id, role, fundraiserId (when set), image."""
    token = params.token
    user = dict(params.session.get("user") or {})
    user["id"] = token.get("id") or token.get("sub")
    if "name" in token:
        user["name"] = token["name"]
    if token.get("role") is not None:
        user["role"] = token["role"]
    if token.get("fundraiserId") is not None:
        user["fundraiserId"] = token["fundraiserId"]
    if token.get("avatar") is not None:
        user["image"] = token["avatar"]
    return {**params.session, "user": user}


async def find_user(
    services: CallbackServices, by: Literal["id", "email"], key: object
) -> UserRecord | None:
    """A user, looked up as the session path does: within AUTHSVC_SESSION_LOOKUP_TIMEOUT,
    one flight per key, a bounded number at once (see lookups.py). None when there is no
    such user, or the store failed or was too slow (logged): the caller goes on without.
    """
    if not isinstance(key, str) or not key:
        return None
    users = services.users
    find = users.get_by_id if by == "id" else users.get_by_email
    try:
        return await services.lookups.run((by, id(users), key), lambda: find(key))
    except Exception as exc:  # any store's failure (SQLAlchemy's or the app's), or the deadline
        log.warning("user lookup failed: %s", type(exc).__name__)
        return None


@dataclass(frozen=True, slots=True)
class Callbacks:
    """next-auth's `callbacks` option. Each one left out is authsvc's default."""

    jwt: JwtCallback = default_jwt
    session: SessionCallback = default_session
    sign_in: SignInCallback = default_sign_in
    redirect: RedirectCallback = default_redirect


# --- calling them: a broken callback fails closed, with one log line naming it ----------


async def run_jwt(callback: JwtCallback, params: JwtParams) -> Claims | None:
    """The jwt callback's token, or None when it raised or returned something else."""
    return await _dict_from("jwt", callback, params)


async def run_session(callback: SessionCallback, params: SessionParams) -> dict[str, Any] | None:
    """The session callback's session, or None when it raised or returned something else."""
    return await _dict_from("session", callback, params)


async def _dict_from(
    name: str, callback: Callable[[Params], Awaitable[object]], params: Params
) -> dict[str, Any] | None:
    try:
        result = await callback(params)
    except Exception as exc:
        log.error("%s callback failed: %s", name, type(exc).__name__)
        return None
    if not isinstance(result, dict):
        log.error("%s callback returned %s, not a dict: no session", name, type(result).__name__)
        return None
    return result


async def run_sign_in(callback: SignInCallback, params: SignInParams) -> bool | str:
    """The signIn callback's answer; a raise or another type refuses the sign-in."""
    try:
        allowed = await callback(params)
    except Exception as exc:
        log.error("signIn callback failed, sign-in refused: %s", type(exc).__name__)
        return False
    if not isinstance(allowed, bool | str):
        log.error(
            "signIn callback returned %s, not a bool or URL: sign-in refused",
            type(allowed).__name__,
        )
        return False
    return allowed


def run_redirect(callback: RedirectCallback, url: str, base_url: str) -> str:
    """The redirect callback's target; a raise or another type sends the user to the base."""
    try:
        target = callback(url, base_url)
    except Exception as exc:
        log.error("redirect callback failed, using the base URL: %s", type(exc).__name__)
        return base_url
    if not isinstance(target, str):
        log.error(
            "redirect callback returned %s, not a str: using the base URL", type(target).__name__
        )
        return base_url
    return target
