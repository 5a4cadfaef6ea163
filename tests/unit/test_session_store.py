"""The session store: load (cookie chunks or Bearer → claims), save (re-issue) and clear."""

from __future__ import annotations

import time
from typing import Any

from authsvc.cookies import CookiePolicy, http_date, parse_cookie_header
from authsvc.session_store import SessionStore
from authsvc.tokens import CLOCK_TOLERANCE, TokenCodec, is_session_shaped
from tests.conftest import MAX_SET_COOKIE_BYTES, OTHER_SECRET, SECRET

NOW = 1_790_000_000.0
MAX_AGE = 600
CODEC = TokenCodec([SECRET])
STORE = SessionStore(CookiePolicy(secure=False), CODEC, MAX_AGE)
AUTHJS_STORE = SessionStore(CookiePolicy.authjs(secure=False), CODEC, MAX_AGE)
NAME = "next-auth.session-token"
ANA = {"sub": "u1", "email": "ana@shop.example.com", "role": "ADMIN"}


def token(claims: dict[str, Any] | None = None, codec: TokenCodec = CODEC) -> str:
    return codec.encode(claims or ANA, MAX_AGE)


def jar_after(request: dict[str, str], set_cookies: list[str]) -> dict[str, str]:
    """The browser's cookies after it applies these Set-Cookie values."""
    jar = dict(request)
    for header in set_cookies:
        name, _, rest = header.partition("=")
        value = rest.split(";")[0]
        if "Max-Age=0" in header:
            jar.pop(name, None)
        else:
            jar[name] = value
    return jar


def names(set_cookies: list[str]) -> list[str]:
    return [header.split("=", 1)[0] for header in set_cookies]


# --- loading ---------------------------------------------------------------------------------


def test_a_whole_session_cookie_is_the_token() -> None:
    assert STORE.token({NAME: "abc", "other": "x"}) == "abc"


def test_chunks_are_reassembled_in_numeric_order() -> None:
    assert STORE.token({f"{NAME}.1": "def", f"{NAME}.0": "abc"}) == "abcdef"


def test_without_a_cookie_the_bearer_token_is_percent_decoded() -> None:
    assert STORE.token({}, "Bearer a%2Eb") == "a.b"


def test_the_session_cookie_wins_over_a_bearer_header() -> None:
    assert STORE.token({NAME: "from-cookie"}, "Bearer from-header") == "from-cookie"


def test_only_the_exact_word_bearer_gives_a_token() -> None:
    assert [STORE.token({}, header) for header in ("bearer t", "Basic t", "Bearer")] == [
        None,
        None,
        None,
    ]


def test_a_bearer_token_that_does_not_percent_decode_is_no_token() -> None:
    assert STORE.token({}, "Bearer %E0%A4%A") is None


def test_next_auth_reads_an_empty_session_cookie_as_no_token() -> None:
    assert STORE.token({NAME: "", f"{NAME}.0": "ab"}) is None


def test_authjs_skips_an_empty_session_cookie_and_reads_the_chunks() -> None:
    assert AUTHJS_STORE.token({"authjs.session-token": "", "authjs.session-token.0": "ab"}) == "ab"


def test_a_valid_session_cookie_loads_as_its_claims() -> None:
    claims = STORE.load({NAME: token()})
    assert claims is not None
    assert {key: claims[key] for key in ANA} == ANA


def test_a_bearer_token_loads_when_the_request_has_no_cookie() -> None:
    claims = STORE.load({}, f"Bearer {token()}")
    assert claims is not None and claims["sub"] == "u1"


def test_a_request_without_a_token_loads_nothing() -> None:
    assert STORE.load({"next-auth.csrf-token": "x"}) is None


def test_a_token_sealed_with_another_secret_loads_nothing() -> None:
    assert STORE.load({NAME: token(codec=TokenCodec([OTHER_SECRET]))}) is None


def test_an_expired_token_loads_nothing() -> None:
    assert STORE.load({NAME: token()}, now=time.time() + MAX_AGE + CLOCK_TOLERANCE + 1) is None


def test_an_authentic_token_that_is_not_a_session_loads_nothing() -> None:
    # An OAuth check cookie is sealed with the same key: it must never pass for a session.
    check = token({"value": "state", "provider": "github"})
    assert STORE.load({NAME: check}) is None


def test_a_codec_that_checks_the_shape_itself_still_refuses_a_non_session() -> None:
    shaped = SessionStore(
        CookiePolicy(secure=False), TokenCodec([SECRET], accepts=is_session_shaped), MAX_AGE
    )
    assert shaped.load({NAME: token({"value": "state", "provider": "github"})}) is None


def test_a_broken_chunk_still_counts_as_a_session_cookie() -> None:
    assert STORE.has_cookie({f"{NAME}.3": "garbage"})


def test_other_cookies_are_not_a_session_cookie() -> None:
    assert not STORE.has_cookie({"next-auth.csrf-token": "x", "next-auth.callback-url": "/"})


# --- saving ----------------------------------------------------------------------------------


def test_a_saved_session_loads_back_as_the_same_claims() -> None:
    saved = STORE.save({}, ANA, time.time())
    claims = STORE.load(jar_after({}, saved))
    assert claims is not None
    assert {key: claims[key] for key in ANA} == ANA


def test_a_saved_session_is_one_cookie_with_next_auths_attributes() -> None:
    [header] = STORE.save({}, ANA, NOW)
    assert header.startswith(f"{NAME}=")
    assert header.endswith(f"; Path=/; Expires={http_date(NOW + MAX_AGE)}; HttpOnly; SameSite=Lax")


def test_a_saved_token_expires_max_age_after_now() -> None:
    [header] = STORE.save({}, ANA, NOW)
    raw = header.split(";")[0].split("=", 1)[1]
    claims = CODEC.decode(raw, now=NOW)
    assert claims is not None and claims["exp"] == NOW + MAX_AGE


def test_a_large_session_is_saved_in_chunks_that_each_fit_a_browser() -> None:
    large = {**ANA, "padding": "p" * 9000}
    saved = STORE.save({}, large, time.time())
    assert names(saved) == [f"{NAME}.{i}" for i in range(len(saved))]
    assert len(saved) > 1
    assert all(len(header.encode()) <= MAX_SET_COOKIE_BYTES for header in saved)
    claims = STORE.load(jar_after({}, saved))
    assert claims is not None and claims["padding"] == large["padding"]


def test_saving_rewrites_the_requests_chunks_first_and_clears_those_beyond_the_new_count() -> None:
    request = {f"{NAME}.{i}": "old" for i in range(3)}
    saved = STORE.save(request, ANA, NOW)
    assert saved[:3] == [
        STORE.policy.clear(f"{NAME}.0"),
        STORE.policy.clear(f"{NAME}.1"),
        STORE.policy.clear(f"{NAME}.2"),
    ]
    assert names(saved) == [f"{NAME}.0", f"{NAME}.1", f"{NAME}.2", NAME]


def test_saving_a_session_leaves_the_browser_with_only_the_new_token() -> None:
    request = {f"{NAME}.{i}": "old" for i in range(4)} | {"next-auth.csrf-token": "c"}
    after = jar_after(request, STORE.save(request, ANA, NOW))
    assert sorted(after) == ["next-auth.csrf-token", NAME]


def test_authjs_saves_under_its_own_name() -> None:
    assert names(AUTHJS_STORE.save({}, ANA, NOW)) == ["authjs.session-token"]


# --- clearing --------------------------------------------------------------------------------


def test_clearing_deletes_every_session_cookie_the_request_sent_in_its_order() -> None:
    request = parse_cookie_header(f"{NAME}.1=b; next-auth.csrf-token=c; {NAME}.0=a; {NAME}=x")
    assert STORE.clear(request) == [
        f"{NAME}.1=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
        f"{NAME}.0=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
        f"{NAME}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
    ]


def test_clearing_a_request_without_a_session_cookie_sets_nothing() -> None:
    assert STORE.clear({"next-auth.csrf-token": "c"}) == []


def test_a_secure_store_clears_with_the_secure_attribute() -> None:
    secure = SessionStore(CookiePolicy(secure=True), CODEC, MAX_AGE)
    assert secure.clear({"__Secure-next-auth.session-token": "t"}) == [
        "__Secure-next-auth.session-token=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"
    ]


def test_authjs_clearing_leaves_empty_session_cookies_alone() -> None:
    request = {"authjs.session-token": "", "authjs.session-token.0": "old"}
    assert names(AUTHJS_STORE.clear(request)) == ["authjs.session-token.0"]
