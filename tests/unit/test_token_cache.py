"""The decoded-token cache: bounded, never past `exp`, copies out (issue 5)."""

from __future__ import annotations

import tracemalloc

import pytest

from authsvc.token_cache import TokenCache
from authsvc.tokens import TokenCodec
from tests.conftest import SECRET

NOW = 1_800_000_000


@pytest.fixture
def codec() -> TokenCodec:
    return TokenCodec([SECRET], cache=TokenCache(100))


def test_repeated_token_is_served_without_decrypting_again(
    codec: TokenCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = codec.encode({"sub": "u", "role": "ADMIN"}, 60, now=NOW)
    assert codec.decode(token, now=NOW) is not None

    def fail(*_: object) -> None:
        raise AssertionError("decrypted twice")

    monkeypatch.setattr("authsvc.tokens._cipher", fail)
    claims = codec.decode(token, now=NOW + 1)
    assert claims is not None and claims["role"] == "ADMIN"


def test_cached_token_is_refused_once_it_expires(codec: TokenCodec) -> None:
    token = codec.encode({"sub": "u"}, 60, now=NOW)
    assert codec.decode(token, now=NOW) is not None
    assert codec.decode(token, now=NOW + 60 + 14) is not None
    assert codec.decode(token, now=NOW + 60 + 15) is None
    assert isinstance(codec.cache, TokenCache) and len(codec.cache) == 0


def test_rejected_tokens_are_not_cached(codec: TokenCodec) -> None:
    assert codec.decode("garbage", now=NOW) is None
    assert isinstance(codec.cache, TokenCache) and len(codec.cache) == 0


def test_mutating_a_decoded_token_does_not_change_the_cache(codec: TokenCodec) -> None:
    token = codec.encode({"sub": "u", "role": "ADMIN"}, 60, now=NOW)
    first = codec.decode(token, now=NOW)
    assert first is not None
    first["role"] = "CUSTOMER"
    second = codec.decode(token, now=NOW)
    assert second is not None and second["role"] == "ADMIN"


def test_cache_never_holds_more_than_its_bound() -> None:
    cache = TokenCache(3)
    for i in range(10):
        cache.put(f"token-{i}", {"sub": "u", "exp": NOW + 60})
    assert len(cache) == 3
    assert cache.get("token-0", NOW) is None
    assert cache.get("token-9", NOW) is not None


def test_least_recently_used_entry_is_evicted_first() -> None:
    cache = TokenCache(2)
    cache.put("a", {"exp": NOW + 60})
    cache.put("b", {"exp": NOW + 60})
    cache.get("a", NOW)
    cache.put("c", {"exp": NOW + 60})
    assert cache.get("a", NOW) is not None and cache.get("b", NOW) is None


def test_memory_stays_flat_under_many_distinct_tokens() -> None:
    cache = TokenCache(1000)
    claims = {"sub": "ckv1user0000000000000001", "role": "ADMIN", "exp": NOW + 60}
    for i in range(20_000):
        cache.put(f"warm-{i:07d}" + "x" * 400, claims)
    tracemalloc.start()
    baseline, _ = tracemalloc.get_traced_memory()
    for i in range(200_000):
        cache.put(f"token-{i:07d}" + "x" * 400, claims)
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(cache) == 1000
    assert current - baseline < 1_000_000  # bytes: bounded by the entry count, not the traffic


def test_a_token_one_character_away_from_a_cached_one_is_not_served(codec: TokenCodec) -> None:
    token = codec.encode({"sub": "u", "role": "ADMIN"}, 60, now=NOW)
    assert codec.decode(token, now=NOW) is not None
    last = "A" if token[-1] != "A" else "B"
    assert codec.decode(token[:-1] + last, now=NOW) is None


def test_a_full_cache_of_session_tokens_takes_under_a_kilobyte_per_entry() -> None:
    codec = TokenCodec([SECRET])
    claims = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "picture": None,
        "sub": "clx0123456789abcdefghijk",
        "id": "clx0123456789abcdefghijk",
        "role": "CUSTOMER",
        "fundraiserId": None,
        "avatar": "https://cdn.example.com/avatars/ada.png",
    }
    tokens = [codec.encode(claims, 3600, now=NOW) for _ in range(2000)]
    cache = TokenCache(len(tokens))
    cached = TokenCodec([SECRET], cache=cache)
    tracemalloc.start()
    for token in tokens:
        # Each request brings its own copy of the token string.
        assert cached.decode(token[:1] + token[1:], now=NOW) is not None
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(cache) == len(tokens)
    # The soak's RSS budget (docs/reliability.md) rests on this: 10,000 entries < 10 MiB.
    assert held / len(tokens) < 1024


def test_a_cache_needs_room_for_one_entry() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        TokenCache(0)
