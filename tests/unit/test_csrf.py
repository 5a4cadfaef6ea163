"""next-auth's double-submit CSRF token (R18)."""

from __future__ import annotations

import hashlib

from authsvc import csrf
from authsvc.csrf import csrf_state, csrf_verified
from tests.conftest import OTHER_SECRET, SECRET


def cookie_for(token: str, secret: str = SECRET) -> str:
    return f"{token}|{hashlib.sha256((token + secret).encode()).hexdigest()}"


def test_missing_cookie_mints_a_64_hex_token_and_its_cookie() -> None:
    state = csrf_state(None, [SECRET])
    assert len(state.token) == 64 and int(state.token, 16) >= 0
    assert state.new_cookie == cookie_for(state.token)
    assert not state.trusted


def test_cookie_hashed_with_the_secret_is_trusted_and_not_reissued() -> None:
    state = csrf_state(cookie_for("a" * 64), [SECRET])
    assert (state.token, state.trusted, state.new_cookie) == ("a" * 64, True, None)


def test_cookie_with_a_forged_hash_is_replaced() -> None:
    state = csrf_state("a" * 64 + "|" + "0" * 64, [SECRET])
    assert not state.trusted and state.token != "a" * 64


def test_cookie_minted_with_another_secret_is_replaced() -> None:
    assert not csrf_state(cookie_for("b" * 64, OTHER_SECRET), [SECRET]).trusted


def test_cookie_from_a_rotated_secret_is_trusted_and_reissued_under_the_current_one() -> None:
    state = csrf_state(cookie_for("c" * 64, OTHER_SECRET), [SECRET, OTHER_SECRET])
    assert state.trusted and state.new_cookie == cookie_for("c" * 64)


def test_body_token_must_equal_the_cookie_token() -> None:
    state = csrf_state(cookie_for("d" * 64), [SECRET])
    assert csrf_verified(state, "d" * 64)
    assert not csrf_verified(state, "e" * 64)
    assert not csrf_verified(state, None)
    assert not csrf_verified(state, ["d" * 64])


def test_freshly_minted_token_never_verifies() -> None:
    state = csrf_state(None, [SECRET])
    assert not csrf_verified(state, state.token)


def test_a_cookie_trusted_once_is_checked_again_under_other_secrets() -> None:
    cookie = cookie_for("f" * 64)
    assert csrf_state(cookie, [SECRET]).trusted
    assert not csrf_state(cookie, [OTHER_SECRET]).trusted


def test_a_forged_cookie_seen_before_still_gets_a_fresh_token_each_time() -> None:
    forged = "a" * 64 + "|" + "1" * 64
    first, second = csrf_state(forged, [SECRET]), csrf_state(forged, [SECRET])
    assert first.token != second.token and not (first.trusted or second.trusted)


def test_a_long_made_up_cookie_is_not_kept_in_memory() -> None:
    remembered = csrf._remembered.cache_info().currsize
    for index in range(20):
        csrf_state(f"{index}{'a' * 30_000}|{'0' * 64}", [SECRET])
    assert csrf._remembered.cache_info().currsize == remembered
