"""Forward-auth logic without HTTP: oauth2-proxy policy semantics and identity headers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from authsvc.callbacks import Callbacks, JwtParams
from authsvc.forward_auth import (
    IDENTITY_HEADERS,
    Allow,
    Deny,
    Identity,
    Policy,
    PolicyError,
    decide,
    identity_from_token,
    identity_headers,
    parse_policy,
)
from authsvc.tokens import TokenCodec
from tests.conftest import SECRET
from tests.fakes import InMemoryUsers, services_over

ANA = Identity(user_id="u1", email="ana@shop.example.com", role="ADMIN", name="Ana")
BOB = Identity(user_id="u2", email="bob@example.org", role="CUSTOMER")
CODEC = TokenCodec([SECRET])


def allows(query: list[tuple[str, str]], identity: Identity) -> bool:
    return parse_policy(query).allows(identity)


# --- policy ------------------------------------------------------------------------------


def test_no_policy_parameters_allow_every_identity() -> None:
    assert parse_policy([("rd", "/x")]) == Policy()
    assert allows([], ANA) and allows([], BOB)


def test_a_comma_list_allows_any_of_its_roles() -> None:
    assert allows([("allowed_roles", "STAFF,ADMIN")], ANA)
    assert not allows([("allowed_roles", "STAFF,WHOLESALE")], ANA)


def test_repeated_parameters_add_to_the_same_list() -> None:
    query = [("allowed_roles", "STAFF"), ("allowed_roles", "CUSTOMER")]
    assert allows(query, BOB)
    assert not allows(query, ANA)


def test_allowed_groups_is_the_same_list_as_allowed_roles() -> None:
    assert allows([("allowed_groups", "ADMIN"), ("allowed_roles", "STAFF")], ANA)
    assert not allows([("allowed_groups", "STAFF")], ANA)


def test_roles_are_matched_whatever_their_case() -> None:
    assert allows([("allowed_roles", "admin")], ANA)


def test_an_unknown_role_is_a_policy_error_naming_it() -> None:
    with pytest.raises(PolicyError, match="'ROOT'"):
        parse_policy([("allowed_roles", "ADMIN,root")])


def test_kinds_must_all_pass() -> None:
    query = [("allowed_roles", "ADMIN"), ("allowed_email_domains", "example.org")]
    assert not allows(query, ANA)  # role passes, domain fails
    assert not allows(query, BOB)  # domain passes, role fails


def test_an_empty_parameter_is_no_constraint() -> None:
    assert allows([("allowed_roles", ""), ("allowed_emails", " , ")], BOB)


def test_emails_match_exactly_ignoring_case() -> None:
    assert allows([("allowed_emails", "x@y.z,Bob@Example.org")], BOB)
    assert not allows([("allowed_emails", "bob@example.org.evil")], BOB)


@pytest.mark.parametrize(
    ("entry", "email", "allowed"),
    [
        ("example.org", "bob@example.org", True),
        ("example.org", "bob@eu.example.org", False),
        (".example.org", "bob@eu.example.org", True),
        (".example.org", "bob@example.org", True),
        ("*.example.org", "bob@eu.example.org", True),
        ("*.example.org", "bob@example.org", True),
        (".example.org", "bob@evilexample.org", False),
        ("example.org", "bob@example.org.evil.com", False),
        ("EXAMPLE.org", "bob@example.ORG", True),
    ],
)
def test_email_domains_follow_oauth2_proxy_subdomain_rules(
    entry: str, email: str, allowed: bool
) -> None:
    identity = Identity(user_id="u", email=email, role="CUSTOMER")
    assert allows([("allowed_email_domains", entry)], identity) is allowed


def test_more_than_a_hundred_entries_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="too many"):
        parse_policy([("allowed_emails", ",".join(f"u{i}@x.io" for i in range(101)))])


# --- identity ----------------------------------------------------------------------------


def test_identity_prefers_the_id_claim_over_sub() -> None:
    identity = identity_from_token({"sub": "s", "id": "i", "email": "a@b.c", "role": "STAFF"})
    assert identity == Identity(user_id="i", email="a@b.c", role="STAFF")


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "s", "email": "a@b.c"},
        {"sub": "s", "email": "a@b.c", "role": "root"},
        {"sub": "s", "role": "ADMIN"},
        {"sub": "s", "email": "\r\n", "role": "ADMIN"},
    ],
    ids=["no role", "unknown role", "no email", "blank email"],
)
def test_a_token_without_a_full_identity_has_none(claims: dict[str, Any]) -> None:
    assert identity_from_token(claims) is None


def test_identity_headers_are_all_present_and_non_empty() -> None:
    headers = identity_headers(BOB)
    assert list(headers) == list(IDENTITY_HEADERS)
    assert headers == {
        "X-Auth-Request-User": "u2",
        "X-Auth-Request-Email": "bob@example.org",
        "X-Auth-Request-Preferred-Username": "bob@example.org",
        "X-Auth-Request-Groups": "CUSTOMER",
        "X-Auth-Request-Role": "CUSTOMER",
        "X-Auth-Request-Name": "bob@example.org",
    }


def test_control_characters_never_reach_a_header_value() -> None:
    identity = Identity(user_id="u", email="a@b.c", role="ADMIN", name="Ana\r\nX-Evil: 1\x00")
    assert identity_headers(identity)["X-Auth-Request-Name"] == "AnaX-Evil: 1"


# --- the decision --------------------------------------------------------------------------


async def keep_token(params: JwtParams) -> dict[str, Any]:
    return dict(params.token)


async def add_role(params: JwtParams) -> dict[str, Any]:
    return {**params.token, "role": "STAFF"}


async def run_decide(token: str | None, query: list[tuple[str, str]], jwt: Any = keep_token) -> Any:
    services = services_over(InMemoryUsers(), Callbacks(jwt=jwt))
    return await decide(token, parse_policy(query), services)


def ana_token(**claims: Any) -> str:
    return CODEC.encode({"sub": "u1", "email": "ana@shop.example.com", **claims}, 600)


async def test_a_valid_session_is_allowed_with_its_identity() -> None:
    decision = await run_decide(ana_token(role="ADMIN", name="Ana"), [])
    assert isinstance(decision, Allow)
    assert decision.identity == ANA


async def test_no_token_is_unauthenticated() -> None:
    assert await run_decide(None, []) == Deny("unauthenticated")


async def test_an_expired_token_is_unauthenticated() -> None:
    expired = CODEC.encode({"sub": "u1", "role": "ADMIN"}, 60, now=time.time() - 3600)
    assert await run_decide(expired, []) == Deny("unauthenticated")


async def test_a_failed_policy_is_forbidden() -> None:
    decision = await run_decide(ana_token(role="ADMIN"), [("allowed_roles", "STAFF")])
    assert isinstance(decision, Deny)
    assert decision.outcome == "forbidden"


async def test_the_jwt_callback_completes_a_token_without_a_role() -> None:
    decision = await run_decide(ana_token(), [("allowed_roles", "STAFF")], jwt=add_role)
    assert isinstance(decision, Allow)
    assert decision.token["role"] == "STAFF"


async def test_a_token_still_without_a_role_is_unauthenticated_not_allowed() -> None:
    assert await run_decide(ana_token(), []) == Deny("unauthenticated")
