"""The OAuth check cookies (`state`, PKCE verifier, `nonce`): issue, read, clear (R19-R21).

Each check is a JWE of `{value, provider}` salted with its cookie's name, living 15
minutes, bound to the provider that issued it (GHSA-x445-f3h2-j279); every configured
check must come back (GHSA-7r7x-4c4q-c4qf). Real next-auth check cookies from the
recorded transcript are read at the transcript's own clock.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from authsvc.cookies import CookiePolicy
from authsvc.oauth_checks import (
    CHECK_MAX_AGE,
    clear_checks,
    code_challenge,
    issue_checks,
    read_checks,
)
from authsvc.providers.oauth_client import Check
from authsvc.tokens import CLOCK_TOLERANCE, TokenCodec
from tests.conftest import DATA, OTHER_SECRET, SECRET

NOW = 1_795_833_995.0
POLICY = CookiePolicy(secure=False)
SECURE_POLICY = CookiePolicy(secure=True)
ALL: frozenset[Check] = frozenset({"state", "pkce", "nonce"})
STATE_ONLY: frozenset[Check] = frozenset({"state"})
TRANSCRIPT: dict[str, Any] = json.loads((DATA / "vectors" / "transcript.json").read_text())


def jar(set_cookies: list[str]) -> dict[str, str]:
    """What a browser sends back for these Set-Cookie values."""
    cookies: dict[str, str] = {}
    for header in set_cookies:
        name, _, rest = header.partition("=")
        cookies[name] = rest.split(";", 1)[0]
    return cookies


def issued_jar(
    provider: str = "oidc", checks: frozenset[Check] = ALL, now: float = NOW
) -> tuple[str, dict[str, str]]:
    issued = issue_checks(provider, checks, policy=POLICY, secrets_=[SECRET], now=now)
    return issued.state, jar(issued.cookies)


def read(
    provider: str,
    state: object,
    cookies: dict[str, str],
    *,
    checks: frozenset[Check] = ALL,
    now: float = NOW,
    policy: CookiePolicy = POLICY,
    secrets_: tuple[str, ...] = (SECRET,),
) -> Any:
    return read_checks(
        provider, checks, state, cookies=cookies, policy=policy, secrets_=secrets_, now=now
    )


def transcript_cookie(step: int, name: str) -> str:
    entry = next(s for s in TRANSCRIPT["steps"] if s["index"] == step)
    header: str = next(c for c in entry["response"]["set_cookie"] if c.startswith(f"{name}="))
    return header.split(";", 1)[0].split("=", 1)[1]


# -- issuing ---------------------------------------------------------------------------


def test_every_configured_check_gets_its_own_cookie() -> None:
    issued = issue_checks("oidc", ALL, policy=POLICY, secrets_=[SECRET], now=NOW)
    assert sorted(jar(issued.cookies)) == [
        "next-auth.nonce",
        "next-auth.pkce.code_verifier",
        "next-auth.state",
    ]


def test_a_state_only_provider_gets_only_a_state_cookie() -> None:
    issued = issue_checks("facebook", STATE_ONLY, policy=POLICY, secrets_=[SECRET], now=NOW)
    assert list(jar(issued.cookies)) == ["next-auth.state"]
    assert issued.code_verifier is None and issued.nonce is None


def test_check_values_are_43_character_base64url_strings_and_all_different() -> None:
    issued = issue_checks("oidc", ALL, policy=POLICY, secrets_=[SECRET], now=NOW)
    values = [issued.state, issued.code_verifier, issued.nonce]
    for value in values:
        assert value is not None and re.fullmatch(r"[A-Za-z0-9_-]{43}", value)
    assert len(set(values)) == 3


def test_two_sign_ins_never_share_a_state() -> None:
    states = {issued_jar()[0] for _ in range(50)}
    assert len(states) == 50


def test_check_cookies_live_fifteen_minutes_and_are_http_only() -> None:
    issued = issue_checks("oidc", ALL, policy=POLICY, secrets_=[SECRET], now=NOW)
    assert CHECK_MAX_AGE == 900
    for header in issued.cookies:
        attributes = header.split("; ")[1:]
        assert "Max-Age=900" in attributes
        assert "Expires=Sat, 28 Nov 2026 03:01:35 GMT" in attributes  # NOW + 900
        assert "HttpOnly" in attributes and "SameSite=Lax" in attributes and "Path=/" in attributes


def test_the_sealed_payload_is_value_and_provider_expiring_after_900_seconds() -> None:
    issued = issue_checks("github", STATE_ONLY, policy=POLICY, secrets_=[SECRET], now=NOW)
    sealed = jar(issued.cookies)["next-auth.state"]
    claims = TokenCodec([SECRET], salt="next-auth.state").decode(sealed, now=NOW)
    assert claims is not None
    assert claims["value"] == issued.state and claims["provider"] == "github"
    assert claims["exp"] - claims["iat"] == 900


def test_check_cookies_are_salted_with_their_own_name() -> None:
    _, cookies = issued_jar()
    assert TokenCodec([SECRET]).decode(cookies["next-auth.state"], now=NOW) is None
    salted = TokenCodec([SECRET], salt="next-auth.pkce.code_verifier")
    assert salted.decode(cookies["next-auth.state"], now=NOW) is None


def test_secure_deployments_use_secure_prefixed_names_as_salt() -> None:
    issued = issue_checks("oidc", ALL, policy=SECURE_POLICY, secrets_=[SECRET], now=NOW)
    cookies = jar(issued.cookies)
    assert set(cookies) == {
        "__Secure-next-auth.state",
        "__Secure-next-auth.pkce.code_verifier",
        "__Secure-next-auth.nonce",
    }
    codec = TokenCodec([SECRET], salt="__Secure-next-auth.state")
    assert codec.decode(cookies["__Secure-next-auth.state"], now=NOW) is not None
    assert all("Secure" in header.split("; ") for header in issued.cookies)


def test_code_challenge_is_s256_of_the_verifier_as_in_rfc_7636() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 appendix B
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


# -- reading ---------------------------------------------------------------------------


def test_the_checks_of_this_sign_in_are_read_back() -> None:
    issued = issue_checks("oidc", ALL, policy=POLICY, secrets_=[SECRET], now=NOW)
    returned = read("oidc", issued.state, jar(issued.cookies), now=NOW + 60)
    assert returned is not None
    assert returned.state == issued.state
    assert returned.code_verifier == issued.code_verifier
    assert returned.nonce == issued.nonce
    assert returned.state_expires == int(NOW) + 900
    assert returned.state_jti


def test_a_check_minted_for_another_provider_is_refused() -> None:
    state, cookies = issued_jar("github", STATE_ONLY)
    assert read("facebook", state, cookies, checks=STATE_ONLY) is None


def test_a_pkce_cookie_minted_for_another_provider_is_refused() -> None:
    state, cookies = issued_jar("oidc")
    _, google = issued_jar("google")
    cookies["next-auth.pkce.code_verifier"] = google["next-auth.pkce.code_verifier"]
    assert read("oidc", state, cookies) is None


def test_a_nonce_cookie_minted_for_another_provider_is_refused() -> None:
    state, cookies = issued_jar("oidc")
    _, google = issued_jar("google")
    cookies["next-auth.nonce"] = google["next-auth.nonce"]
    assert read("oidc", state, cookies) is None


def test_a_real_next_auth_state_cookie_is_read_for_its_own_provider() -> None:
    decoded = TRANSCRIPT["derived"]["github_state_cookie_decoded"]
    cookies = {"next-auth.state": transcript_cookie(35, "next-auth.state")}
    returned = read("github", decoded["value"], cookies, checks=STATE_ONLY, now=decoded["iat"])
    assert returned is not None and returned.state == decoded["value"]


def test_a_real_next_auth_state_cookie_minted_for_github_is_refused_for_facebook() -> None:
    decoded = TRANSCRIPT["derived"]["github_state_cookie_decoded"]
    cookies = {"next-auth.state": transcript_cookie(35, "next-auth.state")}
    assert (
        read("facebook", decoded["value"], cookies, checks=STATE_ONLY, now=decoded["iat"]) is None
    )


def test_the_next_auth_state_vector_for_google_is_refused_for_the_generic_provider(
    vector: dict[str, dict[str, Any]],
) -> None:
    entry = vector["v4_oauth_state_cookie_salted"]
    cookies = {"next-auth.state": entry["token"]}
    value, iat = entry["decoded"]["value"], entry["decoded"]["iat"]
    assert read("google", value, cookies, checks=STATE_ONLY, now=iat) is not None
    assert read("oidc", value, cookies, checks=STATE_ONLY, now=iat) is None


def test_a_missing_state_cookie_is_refused() -> None:
    state, cookies = issued_jar()
    del cookies["next-auth.state"]
    assert read("oidc", state, cookies) is None


def test_a_missing_pkce_cookie_is_refused_when_pkce_is_configured() -> None:
    state, cookies = issued_jar()
    del cookies["next-auth.pkce.code_verifier"]
    assert read("oidc", state, cookies) is None


def test_a_missing_nonce_cookie_is_refused_when_nonce_is_configured() -> None:
    state, cookies = issued_jar()
    del cookies["next-auth.nonce"]
    assert read("oidc", state, cookies) is None


def test_an_empty_check_cookie_is_refused() -> None:
    state, cookies = issued_jar()
    cookies["next-auth.state"] = ""
    assert read("oidc", state, cookies) is None


def test_checks_a_provider_does_not_use_are_not_required() -> None:
    state, cookies = issued_jar("facebook", STATE_ONLY)
    returned = read("facebook", state, cookies, checks=STATE_ONLY)
    assert returned is not None
    assert returned.code_verifier is None and returned.nonce is None


def test_a_check_cookie_is_still_good_just_before_fifteen_minutes() -> None:
    state, cookies = issued_jar()
    assert read("oidc", state, cookies, now=NOW + CHECK_MAX_AGE - 1) is not None


def test_a_check_cookie_has_expired_after_fifteen_minutes_and_the_clock_tolerance() -> None:
    state, cookies = issued_jar()
    assert read("oidc", state, cookies, now=NOW + CHECK_MAX_AGE + CLOCK_TOLERANCE) is None


def test_a_tampered_state_cookie_is_refused() -> None:
    state, cookies = issued_jar()
    sealed = cookies["next-auth.state"]
    header, key, iv, ciphertext, tag = sealed.split(".")
    flipped = ("B" if ciphertext[5] == "A" else "A").join((ciphertext[:5], ciphertext[6:]))
    cookies["next-auth.state"] = ".".join((header, key, iv, flipped, tag))
    assert read("oidc", state, cookies) is None


def test_a_state_cookie_put_in_the_pkce_slot_is_refused() -> None:
    state, cookies = issued_jar()
    cookies["next-auth.pkce.code_verifier"] = cookies["next-auth.state"]
    assert read("oidc", state, cookies) is None


def test_a_check_sealed_with_another_secret_is_refused() -> None:
    issued = issue_checks("oidc", ALL, policy=POLICY, secrets_=[OTHER_SECRET], now=NOW)
    assert read("oidc", issued.state, jar(issued.cookies)) is None


def test_a_check_sealed_with_a_previous_secret_is_still_read_during_rotation() -> None:
    issued = issue_checks("oidc", ALL, policy=POLICY, secrets_=[OTHER_SECRET], now=NOW)
    returned = read("oidc", issued.state, jar(issued.cookies), secrets_=(SECRET, OTHER_SECRET))
    assert returned is not None


def test_a_state_that_differs_from_the_cookie_is_refused() -> None:
    _, cookies = issued_jar()
    other_state, _ = issued_jar()
    assert read("oidc", other_state, cookies) is None


def test_a_state_with_one_character_changed_is_refused() -> None:
    state, cookies = issued_jar()
    changed = state[:-1] + ("A" if state[-1] != "A" else "B")
    assert read("oidc", changed, cookies) is None


@pytest.mark.parametrize("returned_state", [None, "", ["x"], 42, {"state": "x"}])
def test_a_missing_or_non_string_state_parameter_is_refused(returned_state: object) -> None:
    _, cookies = issued_jar()
    assert read("oidc", returned_state, cookies) is None


def test_a_state_only_cookie_sealed_without_a_provider_is_refused() -> None:
    sealed = TokenCodec([SECRET], salt="next-auth.state").encode({"value": "abc"}, 900, now=NOW)
    assert read("oidc", "abc", {"next-auth.state": sealed}, checks=STATE_ONLY) is None


def test_a_check_whose_value_is_not_a_string_is_refused() -> None:
    codec = TokenCodec([SECRET], salt="next-auth.state")
    sealed = codec.encode({"value": 12345, "provider": "oidc"}, 900, now=NOW)
    assert read("oidc", 12345, {"next-auth.state": sealed}, checks=STATE_ONLY) is None
    assert read("oidc", "12345", {"next-auth.state": sealed}, checks=STATE_ONLY) is None


def test_a_secure_deployment_ignores_cookies_under_the_plain_names() -> None:
    state, cookies = issued_jar()
    assert read("oidc", state, cookies, policy=SECURE_POLICY) is None


# -- clearing --------------------------------------------------------------------------


def test_clearing_expires_every_check_cookie_the_browser_sent() -> None:
    _, cookies = issued_jar()
    cleared = clear_checks(POLICY, {**cookies, "next-auth.csrf-token": "x"})
    assert sorted(cleared) == [
        "next-auth.nonce=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
        "next-auth.pkce.code_verifier=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
        "next-auth.state=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
    ]


def test_clearing_leaves_alone_check_cookies_the_browser_did_not_send() -> None:
    assert clear_checks(POLICY, {"next-auth.state": "x"}) == [
        "next-auth.state=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    ]
    assert clear_checks(POLICY, {"next-auth.session-token": "x"}) == []
