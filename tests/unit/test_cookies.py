"""Cookie names, serialisation, parsing and session-token chunking (R11, R12)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authsvc.cookies import (
    MAX_CHUNKS,
    CookiePolicy,
    encode_value,
    parse_cookie_header,
    read_session_token,
    session_cookie_headers,
)
from tests.conftest import MAX_SET_COOKIE_BYTES

PLAIN = CookiePolicy(secure=False)
SECURE = CookiePolicy(secure=True)
EXPIRES = 1798425995  # Mon, 28 Dec 2026 02:46:35 GMT
NAME = PLAIN.session_token
# The libraries' chunk sizes, restated rather than imported so a change in the source fails
# here: next-auth v4 and Auth.js v5 reserve 163 and 160 of 4096 bytes for attributes.
CHUNK_SIZE = 3933
AUTHJS_CHUNK_SIZE = 3936


def test_http_names_are_next_auths_defaults() -> None:
    assert (PLAIN.session_token, PLAIN.csrf_token, PLAIN.callback_url) == (
        "next-auth.session-token",
        "next-auth.csrf-token",
        "next-auth.callback-url",
    )
    assert (PLAIN.state, PLAIN.pkce_code_verifier, PLAIN.nonce) == (
        "next-auth.state",
        "next-auth.pkce.code_verifier",
        "next-auth.nonce",
    )


def test_https_names_use_secure_and_host_prefixes() -> None:
    assert SECURE.session_token == "__Secure-next-auth.session-token"
    assert SECURE.csrf_token == "__Host-next-auth.csrf-token"
    assert SECURE.callback_url == "__Secure-next-auth.callback-url"


def test_session_cookie_is_serialised_like_next_auth() -> None:
    assert PLAIN.serialize(NAME, "abc", expires=EXPIRES) == (
        "next-auth.session-token=abc; Path=/; Expires=Mon, 28 Dec 2026 02:46:35 GMT; "
        "HttpOnly; SameSite=Lax"
    )


def test_secure_cookie_carries_the_secure_attribute_before_samesite() -> None:
    assert SECURE.serialize(SECURE.csrf_token, "t|h") == (
        "__Host-next-auth.csrf-token=t%7Ch; Path=/; HttpOnly; Secure; SameSite=Lax"
    )


def test_clearing_a_cookie_sets_an_empty_value_and_max_age_zero() -> None:
    assert (
        PLAIN.clear(NAME) == "next-auth.session-token=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    )


def test_values_are_encoded_like_encode_uri_component() -> None:
    assert encode_value("http://localhost:3000/a b?x=1&y=ü") == (
        "http%3A%2F%2Flocalhost%3A3000%2Fa%20b%3Fx%3D1%26y%3D%C3%BC"
    )
    assert encode_value("-_.!~*'()") == "-_.!~*'()"


def test_parser_percent_decodes_values() -> None:
    cookies = parse_cookie_header("next-auth.callback-url=http%3A%2F%2Flocalhost%3A3000; a=b")
    assert cookies == {"next-auth.callback-url": "http://localhost:3000", "a": "b"}


def test_first_occurrence_of_a_duplicate_name_wins() -> None:
    assert parse_cookie_header("a=first; a=second")["a"] == "first"


def test_parser_keeps_undecodable_values_raw_and_strips_quotes() -> None:
    assert parse_cookie_header('a=%E0%A4%A; b="quoted"; junk; =x') == {
        "a": "%E0%A4%A",
        "b": "quoted",
    }


def test_oversized_cookie_header_is_ignored() -> None:
    assert parse_cookie_header("a=" + "x" * 40_000) == {}


def test_short_token_is_one_cookie_even_at_exactly_the_chunk_size() -> None:
    headers = session_cookie_headers(PLAIN, {}, "x" * CHUNK_SIZE, expires=EXPIRES)
    assert len(headers) == 1 and headers[0].startswith(f"{NAME}=x")


def test_long_token_is_split_into_numbered_chunks_under_4096_bytes() -> None:
    token = "y" * (CHUNK_SIZE * 2 + 10)
    headers = session_cookie_headers(SECURE, {}, token, expires=EXPIRES)
    names = [h.split("=", 1)[0] for h in headers]
    assert names == [f"{SECURE.session_token}.{i}" for i in range(3)]
    assert all(len(h.encode()) <= 4096 for h in headers)


@pytest.mark.parametrize(
    "policy",
    [
        PLAIN,
        SECURE,
        CookiePolicy(secure=True, domain="shop.example.com"),
        CookiePolicy.authjs(secure=False),
        CookiePolicy.authjs(secure=True),
        CookiePolicy.authjs(secure=True, domain="shop.example.com"),
    ],
    ids=["v4", "v4-secure", "v4-domain", "v5", "v5-secure", "v5-domain"],
)
@pytest.mark.parametrize("length", [100, 3933, 3936, 3937, 5000, 3 * 3936 + 1])
def test_every_session_set_cookie_fits_in_4096_bytes_with_its_attributes(
    policy: CookiePolicy, length: int
) -> None:
    stale = {f"{policy.session_token}.{i}": "old" for i in range(5)}
    headers = session_cookie_headers(policy, stale, "t" * length, expires=EXPIRES)
    assert max(len(h.encode()) for h in headers) <= MAX_SET_COOKIE_BYTES


def test_writing_a_small_token_clears_every_stale_chunk() -> None:
    request = {f"{NAME}.0": "a", f"{NAME}.1": "b", f"{NAME}.2": "c", "other": "x"}
    headers = session_cookie_headers(PLAIN, request, "tok", expires=EXPIRES)
    assert headers[:3] == [PLAIN.clear(f"{NAME}.{i}") for i in range(3)]
    assert headers[3].startswith(f"{NAME}=tok;")
    assert len(headers) == 4


def test_growing_into_chunks_clears_the_plain_cookie() -> None:
    headers = session_cookie_headers(PLAIN, {NAME: "old"}, "z" * (CHUNK_SIZE + 1))
    assert headers[0] == PLAIN.clear(NAME)
    assert [h.split("=", 1)[0] for h in headers[1:]] == [f"{NAME}.0", f"{NAME}.1"]


def test_rewritten_chunks_keep_the_request_order_and_extra_ones_are_cleared() -> None:
    request = {f"{NAME}.0": "a", f"{NAME}.1": "b", f"{NAME}.2": "c"}
    headers = session_cookie_headers(PLAIN, request, "q" * (CHUNK_SIZE + 5))
    assert [h.split(";")[0].split("=")[0] for h in headers] == [
        f"{NAME}.0",
        f"{NAME}.1",
        f"{NAME}.2",
    ]
    assert headers[2] == PLAIN.clear(f"{NAME}.2")


def test_signing_out_clears_all_chunks_and_nothing_else() -> None:
    request = {f"{NAME}.0": "a", f"{NAME}.1": "b", "next-auth.csrf-token": "t"}
    assert session_cookie_headers(PLAIN, request, None) == [
        PLAIN.clear(f"{NAME}.0"),
        PLAIN.clear(f"{NAME}.1"),
    ]


def test_chunks_are_reassembled_in_numeric_order() -> None:
    cookies = {f"{NAME}.{i}": str(i) for i in (10, 2, 0, 1, 3, 4, 5, 6, 7, 8, 9)}
    assert read_session_token(cookies, NAME) is None  # more than MAX_CHUNKS
    cookies = {f"{NAME}.2": "c", f"{NAME}.0": "a", f"{NAME}.1": "b"}
    assert read_session_token(cookies, NAME) == "abc"


def test_chunks_with_a_gap_are_no_token() -> None:
    assert read_session_token({f"{NAME}.0": "a", f"{NAME}.2": "c"}, NAME) is None


def test_plain_cookie_wins_over_stray_chunks() -> None:
    assert read_session_token({f"{NAME}.0": "a", NAME: "whole"}, NAME) == "whole"


@pytest.mark.parametrize("suffix", [".01", ".-1", ".x", "x.0", ".1e1", ". 1"])
def test_names_that_only_look_like_chunks_are_ignored(suffix: str) -> None:
    assert read_session_token({f"{NAME}{suffix}": "a"}, NAME) is None


def test_secure_name_is_not_read_under_the_plain_name() -> None:
    assert read_session_token({SECURE.session_token: "tok"}, NAME) is None


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=30_000))
def test_any_token_survives_chunking_and_reassembly(token: str) -> None:
    headers = session_cookie_headers(PLAIN, {}, token or None)
    jar = parse_cookie_header("; ".join(h.split(";")[0] for h in headers))
    if not token:
        assert headers == []
    elif len(headers) <= MAX_CHUNKS:
        assert read_session_token(jar, NAME) == token


@given(st.text(max_size=300))
def test_cookie_parser_never_raises(header: str) -> None:
    assert isinstance(parse_cookie_header(header), dict)


def test_cookie_with_a_malformed_escape_is_kept_raw_as_next_auth_keeps_it() -> None:
    # cookie@0.7.2 `tryDecode`: decodeURIComponent throws on `%zz`, so the raw value stays.
    # Checked with tests/node/node_modules/cookie: parse("a=%zz%41") -> {a: "%zz%41"}.
    assert parse_cookie_header("a=%zz%41; b=100%%41") == {"a": "%zz%41", "b": "100%%41"}


# --- Domain (cross-subdomain sessions) ------------------------------------------------------

SHARED = CookiePolicy(secure=True, domain="example.com")


def test_domain_goes_after_max_age_and_before_path_like_cookie_0_7_2() -> None:
    # node -e 'require("cookie").serialize("n","v",{maxAge:0,domain:"example.com",path:"/",
    #   httpOnly:true,secure:true,sameSite:"lax"})' (tests/node/node_modules/cookie@0.7.2)
    assert SHARED.serialize("n", "v", max_age=0) == (
        "n=v; Max-Age=0; Domain=example.com; Path=/; HttpOnly; Secure; SameSite=Lax"
    )


def test_session_chunks_carry_the_domain_when_set_and_cleared() -> None:
    headers = session_cookie_headers(SHARED, {f"{SHARED.session_token}.1": "old"}, "tok", EXPIRES)
    assert headers == [
        "__Secure-next-auth.session-token.1=; Max-Age=0; Domain=example.com; Path=/; HttpOnly; "
        "Secure; SameSite=Lax",
        "__Secure-next-auth.session-token=tok; Domain=example.com; Path=/; "
        "Expires=Mon, 28 Dec 2026 02:46:35 GMT; HttpOnly; Secure; SameSite=Lax",
    ]


@pytest.mark.parametrize("secure", [True, False])
def test_the_csrf_cookie_never_gets_a_domain(secure: bool) -> None:
    policy = CookiePolicy(secure=secure, domain="example.com")
    assert "Domain" not in policy.serialize(policy.csrf_token, "t")


def test_no_domain_by_default() -> None:
    assert "Domain" not in SECURE.serialize(SECURE.session_token, "t")


# --- Auth.js v5 -----------------------------------------------------------------------

AUTHJS = CookiePolicy.authjs(secure=False)
AUTHJS_SECURE = CookiePolicy.authjs(secure=True)


def test_authjs_names_are_auth_cores_defaults() -> None:
    assert (AUTHJS.session_token, AUTHJS.csrf_token, AUTHJS.callback_url, AUTHJS.state) == (
        "authjs.session-token",
        "authjs.csrf-token",
        "authjs.callback-url",
        "authjs.state",
    )


def test_authjs_https_names_use_secure_and_host_prefixes() -> None:
    assert (AUTHJS_SECURE.session_token, AUTHJS_SECURE.csrf_token) == (
        "__Secure-authjs.session-token",
        "__Host-authjs.csrf-token",
    )


def test_authjs_token_of_exactly_3936_characters_is_one_cookie() -> None:
    headers = session_cookie_headers(AUTHJS, {}, "x" * AUTHJS_CHUNK_SIZE, expires=EXPIRES)
    assert [h.split("=")[0] for h in headers] == ["authjs.session-token"]


def test_authjs_chunks_are_3936_characters() -> None:
    headers = session_cookie_headers(AUTHJS, {}, "y" * (AUTHJS_CHUNK_SIZE + 1), expires=EXPIRES)
    values = [h.split(";")[0].split("=", 1)[1] for h in headers]
    assert [len(v) for v in values] == [AUTHJS_CHUNK_SIZE, 1]


def test_authjs_reading_skips_empty_cookies() -> None:
    jar = {AUTHJS.session_token: "", f"{AUTHJS.session_token}.0": "ab"}
    skip_empty = AUTHJS.skip_empty_chunks
    assert read_session_token(jar, AUTHJS.session_token, skip_empty=skip_empty) == "ab"


def test_next_auth_reading_keeps_an_empty_plain_cookie() -> None:
    jar = {NAME: "", f"{NAME}.0": "ab"}
    assert read_session_token(jar, NAME, skip_empty=PLAIN.skip_empty_chunks) is None


def test_authjs_writing_leaves_empty_cookies_alone() -> None:
    request = {AUTHJS.session_token: "", f"{AUTHJS.session_token}.0": "old"}
    headers = session_cookie_headers(AUTHJS, request, None)
    assert headers == ["authjs.session-token.0=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"]
