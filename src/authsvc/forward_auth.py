"""Forward-auth decisions, knowing nothing of HTTP: policy and identity headers.

- **Policy**: oauth2-proxy's per-request query parameters. Each is a comma-separated list
  and may be repeated; an empty or absent parameter is no constraint; parameters of
  different kinds must all pass (AND), any entry of one kind may match (OR).
  `allowed_groups` is accepted as a synonym of `allowed_roles`: a user's one group is
  their role.
- **Identity**: the user id, email, role and name of a session, as the `X-Auth-Request-*`
  headers a proxy copies onto the upstream request. Every header is always present and
  non-empty, and no value holds a control character (CR, LF, NUL, ...).

What the proxy says about the original request is proxy_trust.py's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, NamedTuple

from authsvc.proxy_trust import header_value
from authsvc.session import SessionServices, resolve_token
from authsvc.tokens import Claims
from authsvc.users.models import ROLES

ROLE_PARAMS = ("allowed_roles", "allowed_groups")
EMAIL_PARAM = "allowed_emails"
DOMAIN_PARAM = "allowed_email_domains"
POLICY_PARAMS = frozenset((*ROLE_PARAMS, EMAIL_PARAM, DOMAIN_PARAM))
MAX_POLICY_ENTRIES = 100

USER = "X-Auth-Request-User"
EMAIL = "X-Auth-Request-Email"
PREFERRED_USERNAME = "X-Auth-Request-Preferred-Username"
GROUPS = "X-Auth-Request-Groups"
ROLE = "X-Auth-Request-Role"
NAME = "X-Auth-Request-Name"
IDENTITY_HEADERS = (USER, EMAIL, PREFERRED_USERNAME, GROUPS, ROLE, NAME)


class PolicyError(ValueError):
    """A policy parameter that cannot mean anything; the message is safe to send back."""


class Identity(NamedTuple):
    # A NamedTuple: hashable (the rendered answer is memoised by identity) and, unlike a
    # frozen dataclass, cheap to build once per forward-auth check.
    user_id: str
    email: str
    role: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    roles: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()
    email_domains: tuple[str, ...] = ()

    def allows(self, identity: Identity) -> bool:
        return (
            (not self.roles or identity.role in self.roles)
            and (not self.emails or identity.email.lower() in self.emails)
            and (not self.email_domains or _domain_allowed(identity.email, self.email_domains))
        )


NO_POLICY = Policy()


def _entries(values: Iterable[str]) -> list[str]:
    entries = [entry.strip() for value in values for entry in value.split(",") if entry.strip()]
    if len(entries) > MAX_POLICY_ENTRIES:
        raise PolicyError(f"too many policy entries (at most {MAX_POLICY_ENTRIES})")
    return entries


def parse_policy(params: Iterable[tuple[str, str]]) -> Policy:
    """The policy in a query string's (name, value) pairs; other names are ignored."""
    values: dict[str, list[str]] = {}
    for name, value in params:
        if name in POLICY_PARAMS:
            values.setdefault(name, []).append(value)
    if not values:
        return NO_POLICY
    roles = {entry.upper() for entry in _entries(v for p in ROLE_PARAMS for v in values.get(p, []))}
    unknown = sorted(roles - ROLES)
    if unknown:
        raise PolicyError(
            f"unknown role {unknown[0]!r} in allowed_roles; roles are {', '.join(sorted(ROLES))}"
        )
    emails = {entry.lower() for entry in _entries(values.get(EMAIL_PARAM, []))}
    domains = tuple(entry.lower() for entry in _entries(values.get(DOMAIN_PARAM, [])))
    return Policy(roles=frozenset(roles), emails=frozenset(emails), email_domains=domains)


def has_policy_params(params: Iterable[tuple[str, str]]) -> bool:
    return any(name in POLICY_PARAMS for name, _ in params)


def _domain_allowed(email: str, allowed: Sequence[str]) -> bool:
    """oauth2-proxy's `IsEndpointAllowed` on the email's domain.

    `example.com` matches that domain only; `.example.com` and `*.example.com` match it
    and every subdomain.
    """
    local, at, domain = email.lower().rpartition("@")
    if not at or not local or not domain:
        return False
    for entry in allowed:
        bare = entry.removeprefix("*.").removeprefix(".")
        if domain == bare:
            return True
        if entry.startswith((".", "*.")) and domain.endswith("." + bare):
            return True
    return False


def identity_from_token(token: Claims) -> Identity | None:
    """The identity a proxy needs, or None when the session lacks part of it."""
    user_id = token.get("id") or token.get("sub")
    email = token.get("email")
    role = token.get("role")
    name = token.get("name")
    if not isinstance(user_id, str) or not isinstance(email, str) or role not in ROLES:
        return None
    if not header_value(user_id) or not header_value(email):
        return None
    return Identity(
        user_id=user_id,
        email=email,
        role=str(role),
        name=name if isinstance(name, str) else None,
    )


def identity_headers(identity: Identity) -> dict[str, str]:
    """Every identity header, non-empty; values may hold non-ASCII text (sent as UTF-8)."""
    email = header_value(identity.email)
    name = header_value(identity.name or "") or email
    return {
        USER: header_value(identity.user_id),
        EMAIL: email,
        PREFERRED_USERNAME: email,
        GROUPS: identity.role,
        ROLE: identity.role,
        NAME: name,
    }


@lru_cache(maxsize=4096)
def rendered(identity: Identity) -> tuple[tuple[tuple[bytes, bytes], ...], bytes]:
    """The identity headers (raw UTF-8 bytes, as oauth2-proxy sends them) and JSON body.

    A pure function of the identity, memoised: a sidecar answers for the same few users
    over and over, and building headers and JSON is most of an allowed check's cost.
    """
    headers = tuple(
        (name.lower().encode(), value.encode())
        for name, value in identity_headers(identity).items()
    )
    body = {
        "id": identity.user_id,
        "email": identity.email,
        "role": identity.role,
        "name": identity.name,
    }
    return headers, json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# Allow and Deny are built on every check: plain slotted classes, treated as immutable.
@dataclass(slots=True)
class Allow:
    identity: Identity
    # The token after the jwt callback: what a refreshed cookie would carry.
    token: Claims
    outcome: Literal["allow"] = "allow"


@dataclass(slots=True)
class Deny:
    outcome: Literal["unauthenticated", "forbidden"]
    identity: Identity | None = None


Decision = Allow | Deny


async def decide(
    raw_token: str | None, policy: Policy, services: SessionServices, *, now: float | None = None
) -> Decision:
    """The token read path (as for /session, without the session object), then the
    identity and the policy. A failed jwt callback denies, like no session."""
    outcome = await resolve_token(raw_token, services, now=now)
    if outcome.kind != "valid" or outcome.token is None:
        return Deny("unauthenticated")
    identity = identity_from_token(outcome.token)
    if identity is None:
        # No role even after the jwt callback's lookup (unknown user, or the database
        # did not answer in time): never an "allow" with a partial identity.
        return Deny("unauthenticated")
    if not policy.allows(identity):
        return Deny("forbidden", identity=identity)
    return Allow(identity=identity, token=outcome.token)
