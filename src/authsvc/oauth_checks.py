"""OAuth `state`, PKCE and `nonce` checks, each in its own encrypted cookie (R19-R21).

As in next-auth: a JWE of `{value, provider}` salted with the cookie's name, living 15
minutes. Stricter than next-auth: every configured check must come back, bound to the
provider that issued it (GHSA-x445-f3h2-j279, GHSA-7r7x-4c4q-c4qf), and `state` is
single-use (its `jti` is redeemed in the check store).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from authsvc.cookies import CookiePolicy
from authsvc.providers.oauth_client import Check
from authsvc.tokens import TokenCodec

CHECK_MAX_AGE = 15 * 60


def _random() -> str:
    """32 random bytes, base64url: 43 characters (also a valid PKCE verifier)."""
    return secrets.token_urlsafe(32)


def code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def cookie_name(policy: CookiePolicy, check: Check) -> str:
    return {
        "state": policy.state,
        "pkce": policy.pkce_code_verifier,
        "nonce": policy.nonce,
    }[check]


@dataclass(frozen=True, slots=True)
class IssuedChecks:
    state: str
    code_verifier: str | None
    nonce: str | None
    cookies: list[str]


@dataclass(frozen=True, slots=True)
class ReturnedChecks:
    state: str
    state_jti: str
    state_expires: int
    code_verifier: str | None
    nonce: str | None


def issue_checks(
    provider_id: str,
    checks: frozenset[Check],
    *,
    policy: CookiePolicy,
    secrets_: Sequence[str],
    now: float,
) -> IssuedChecks:
    values: dict[Check, str] = {check: _random() for check in ("state", "pkce", "nonce")}
    cookies = []
    for check in ("state", "pkce", "nonce"):
        if check != "state" and check not in checks:
            continue
        name = cookie_name(policy, check)
        sealed = TokenCodec(secrets_, salt=name).encode(
            {"value": values[check], "provider": provider_id}, CHECK_MAX_AGE, now=now
        )
        cookies.append(
            policy.serialize(name, sealed, max_age=CHECK_MAX_AGE, expires=now + CHECK_MAX_AGE)
        )
    return IssuedChecks(
        state=values["state"],
        code_verifier=values["pkce"] if "pkce" in checks else None,
        nonce=values["nonce"] if "nonce" in checks else None,
        cookies=cookies,
    )


def read_checks(
    provider_id: str,
    checks: frozenset[Check],
    returned_state: object,
    *,
    cookies: Mapping[str, str],
    policy: CookiePolicy,
    secrets_: Sequence[str],
    now: float,
) -> ReturnedChecks | None:
    """The checks of this browser's sign-in with `provider_id`, or None if any fails."""
    opened: dict[str, dict[str, object]] = {}
    for check in ("state", "pkce", "nonce"):
        if check != "state" and check not in checks:
            continue
        name = cookie_name(policy, check)
        raw = cookies.get(name)
        claims = TokenCodec(secrets_, salt=name).decode(raw, now=now) if raw else None
        if (
            claims is None
            or claims.get("provider") != provider_id
            or not isinstance(claims.get("value"), str)
        ):
            return None
        opened[check] = claims
    state = opened["state"]
    if not isinstance(returned_state, str) or not hmac.compare_digest(
        returned_state.encode(), str(state["value"]).encode()
    ):
        return None
    return ReturnedChecks(
        state=str(state["value"]),
        state_jti=str(state.get("jti")),
        state_expires=int(state["exp"]),  # type: ignore[call-overload]
        code_verifier=str(opened["pkce"]["value"]) if "pkce" in opened else None,
        nonce=str(opened["nonce"]["value"]) if "nonce" in opened else None,
    )


def clear_checks(policy: CookiePolicy, cookies: Mapping[str, str]) -> list[str]:
    """Clearing Set-Cookies for every check cookie the browser sent."""
    names = (policy.state, policy.pkce_code_verifier, policy.nonce)
    return [policy.clear(name) for name in names if name in cookies]
