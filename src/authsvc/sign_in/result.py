"""How every sign-in flow ends, whichever way the person signed in: a new session's
claims, or a failure carrying next-auth's error code."""

from __future__ import annotations

from dataclasses import dataclass

from authsvc.events import SignInEvent
from authsvc.metrics import SignInOutcome
from authsvc.tokens import Claims

# Error codes that are not next-auth's (its client reports them as they are): a throttled
# sign-in, and one the database could not serve (try again after `retry_after`).
THROTTLED_ERROR = "TooManyRequests"
UNAVAILABLE_ERROR = "ServiceUnavailable"

_OUTCOMES: dict[str | None, SignInOutcome] = {
    THROTTLED_ERROR: "throttled",
    UNAVAILABLE_ERROR: "unavailable",
    "AccessDenied": "denied",
}


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The claims of the new session (the jwt callback has run), and the signIn event,
    told once the session is issued (as next-auth does)."""

    claims: Claims
    event: SignInEvent


@dataclass(frozen=True, slots=True)
class SignInFailure:
    """next-auth's error code (None: back to the sign-in page with no code) and a log line;
    `refusal` is the signIn callback's answer when it refused (False, or a URL);
    `retry_after` the seconds to wait when trying again later can succeed."""

    code: str | None
    reason: str
    refusal: bool | str = False
    retry_after: int | None = None

    @property
    def outcome(self) -> SignInOutcome:
        return _OUTCOMES.get(self.code, "failure")
