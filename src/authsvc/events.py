"""next-auth's `events`: hooks that hear what happened, after it happened.

`Events(sign_in=…, sign_out=…, create_user=…, update_user=…, link_account=…, session=…)`
is given to `create_app`. Each handler is an `async def` taking its event, whose fields are
next-auth's payload (`user`, `account`, `profile`, `is_new_user` for `isNewUser`, `token`,
`session`). Handlers are awaited once the action is done, before the response is sent; one
that raises is logged (its exception type, by event) and changes nothing for the user.

Whatever the handlers, every event writes one audit line on the `authsvc.audit` logger
(INFO; the `session` event, which happens on every `/session` read, at DEBUG): the event,
the user id and, where there is one, the provider. Never a token, a secret or a profile.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from authsvc.callbacks import Account
from authsvc.tokens import Claims
from authsvc.users.repository import UserRecord

audit_log = logging.getLogger("authsvc.audit")
log = logging.getLogger("authsvc.events")


@dataclass(frozen=True, slots=True)
class SignInEvent:
    """A user signed in (`events.signIn`)."""

    name: ClassVar[str] = "signIn"
    user: UserRecord
    account: Account
    profile: Mapping[str, Any] | None = None
    is_new_user: bool = False

    def audit(self) -> dict[str, Any]:
        return {"user": self.user.id, "provider": self.account.provider, "new": self.is_new_user}


@dataclass(frozen=True, slots=True)
class SignOutEvent:
    """A browser with a session cookie signed out (`events.signOut`); `token` is the
    session's claims, None when the cookie was not a valid session."""

    name: ClassVar[str] = "signOut"
    token: Claims | None

    def audit(self) -> dict[str, Any]:
        user = (self.token.get("id") or self.token.get("sub")) if self.token else None
        return {"user": user if isinstance(user, str) else None}


@dataclass(frozen=True, slots=True)
class CreateUserEvent:
    """A user was created: a first OAuth sign-in, or `authsvc create-user`."""

    name: ClassVar[str] = "createUser"
    user: UserRecord

    def audit(self) -> dict[str, Any]:
        return {"user": self.user.id}


@dataclass(frozen=True, slots=True)
class UpdateUserEvent:
    """A user was changed: a new name or picture from the provider at an OAuth sign-in, or
    a new role (`authsvc set-role`)."""

    name: ClassVar[str] = "updateUser"
    user: UserRecord

    def audit(self) -> dict[str, Any]:
        return {"user": self.user.id}


@dataclass(frozen=True, slots=True)
class LinkAccountEvent:
    """A provider identity was linked to a user (`events.linkAccount`)."""

    name: ClassVar[str] = "linkAccount"
    user: UserRecord
    account: Account
    profile: Mapping[str, Any] | None = None

    def audit(self) -> dict[str, Any]:
        return {"user": self.user.id, "provider": self.account.provider}


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """A session was read through `/session` (`events.session`)."""

    name: ClassVar[str] = "session"
    session: dict[str, Any]
    token: Claims

    def audit(self) -> dict[str, Any]:
        user = self.token.get("id") or self.token.get("sub")
        return {"user": user if isinstance(user, str) else None}


Event = (
    SignInEvent | SignOutEvent | CreateUserEvent | UpdateUserEvent | LinkAccountEvent | SessionEvent
)
Handler = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Events:
    """next-auth's `events` option: each handler is optional."""

    sign_in: Callable[[SignInEvent], Awaitable[None]] | None = None
    sign_out: Callable[[SignOutEvent], Awaitable[None]] | None = None
    create_user: Callable[[CreateUserEvent], Awaitable[None]] | None = None
    update_user: Callable[[UpdateUserEvent], Awaitable[None]] | None = None
    link_account: Callable[[LinkAccountEvent], Awaitable[None]] | None = None
    session: Callable[[SessionEvent], Awaitable[None]] | None = None

    async def emit(self, event: Event) -> None:
        """The audit line, then the application's handler. Never raises."""
        level = logging.DEBUG if isinstance(event, SessionEvent) else logging.INFO
        if audit_log.isEnabledFor(level):
            fields = event.audit()
            described = " ".join(f"{key}={value}" for key, value in fields.items())
            extra = {"fields": {"event": event.name, **fields}}
            audit_log.log(level, "%s %s", event.name, described, extra=extra)
        handler = self._handler(event)
        if handler is None:
            return
        try:
            await handler(event)
        except Exception as exc:
            log.error("%s event handler failed: %s", event.name, type(exc).__name__)

    def _handler(self, event: Event) -> Handler | None:
        match event:
            case SignInEvent():
                return self.sign_in
            case SignOutEvent():
                return self.sign_out
            case CreateUserEvent():
                return self.create_user
            case UpdateUserEvent():
                return self.update_user
            case LinkAccountEvent():
                return self.link_account
            case SessionEvent():
                return self.session
