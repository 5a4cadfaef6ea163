"""Property tests (issue 6, fuzzing): cookies and chunks, token pre-checks, the redirect rule,
email normalisation.

They extend the examples and properties beside each module (test_cookies, test_tokens,
test_redirects, test_emails, test_forward_auth) with stronger ones: browser-like cookie
jars with stale chunks, arbitrary mutations and splices of real tokens, hostile text
through the HTTP stack, and Unicode built to turn into `@`, `.` or spaces.

Every test is derandomized with a modest number of examples and no deadline, so a CI run
is reproducible and takes a few seconds; raise FUZZ's max_examples locally when hunting.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import unicodedata
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from starlette.types import Message

from authsvc.app import create_app
from authsvc.cookies import (
    MAX_CHUNKS,
    MAX_COOKIES,
    CookiePolicy,
    encode_value,
    parse_cookie_header,
    read_session_token,
    session_cookie_headers,
)
from authsvc.redirects import MAX_URL_LENGTH, default_redirect
from authsvc.session import session_codec
from authsvc.tokens import TokenCodec
from authsvc.users.emails import normalize_email
from tests.conftest import BASE, OTHER_SECRET, SECRET, make_settings
from tests.unit.test_redirects import stays_home

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CODEC = TokenCodec([SECRET])
# The service's own codec: every secret, the session-shape rule and the decode cache.
SESSION_CODEC = session_codec(make_settings(previous_secrets=[]))
NOW = 1_800_000_000
CLAIMS = {"sub": "u1", "id": "u1", "email": "ana@example.com", "role": "ADMIN", "name": "Ana"}
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
POLICIES = [
    CookiePolicy(secure=False),
    CookiePolicy(secure=True),
    CookiePolicy(secure=True, domain="example.com"),
    CookiePolicy.authjs(secure=True),
]
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


# --- cookies: parsing, serialising, chunking ------------------------------------------------

cookie_names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.",
    min_size=1,
    max_size=30,
)
# Every character a value may hold (no surrogates: they have no UTF-8 form to encode).
cookie_values = st.text(max_size=200)


def apply_set_cookies(jar: dict[str, str], headers: list[str]) -> dict[str, str]:
    """What a browser's jar holds after these Set-Cookie lines (Max-Age=0 deletes)."""
    jar = dict(jar)
    for header in headers:
        pair, *attributes = header.split("; ")
        name, _, value = pair.partition("=")
        if "Max-Age=0" in attributes:
            jar.pop(name, None)
        else:
            jar[name] = value
    return jar


def cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


@FUZZ
@given(st.sampled_from(POLICIES), cookie_names, cookie_values)
def test_any_value_survives_serialising_and_parsing(
    policy: CookiePolicy, name: str, value: str
) -> None:
    """R12/R27: what authsvc sets is read back unchanged (encodeURIComponent + decode)."""
    line = policy.serialize(name, value, expires=NOW)
    assert parse_cookie_header(line.split("; ")[0]) == {name: value}


@FUZZ
@given(st.sampled_from(POLICIES), cookie_names, cookie_values)
def test_a_set_cookie_line_never_holds_a_control_character_or_a_stray_separator(
    policy: CookiePolicy, name: str, value: str
) -> None:
    """R37: one line, and the value can neither end the cookie nor add an attribute."""
    line = policy.serialize(name, value, expires=NOW)
    assert not CONTROL.search(line)
    encoded = line.split("; ")[0].split("=", 1)[1]
    assert not set(encoded) & set(' ;,"\\')


stale_jars = st.dictionaries(st.integers(0, 12), st.text(alphabet=B64URL, max_size=50), max_size=10)


@FUZZ
@given(
    st.sampled_from(POLICIES),
    st.text(alphabet=B64URL + ".", min_size=1, max_size=20_000),
    stale_jars,
    st.booleans(),
)
def test_after_a_write_the_browser_reassembles_exactly_the_new_token(
    policy: CookiePolicy, token: str, stale: dict[int, str], plain: bool
) -> None:
    """R12: whatever chunks (or plain cookie) the browser held, the jar after the
    Set-Cookie lines reads back the new token, and every line fits in 4096 bytes."""
    name = policy.session_token
    jar = {f"{name}.{i}": value for i, value in stale.items()}
    if plain:
        jar[name] = "old-token"
    jar["other"] = "kept"
    headers = session_cookie_headers(policy, jar, token, expires=NOW)
    after = apply_set_cookies(jar, headers)
    assert all(len(line.encode()) <= 4096 for line in headers)
    assert after["other"] == "kept"
    chunks = -(-len(token) // policy.chunk_size)
    if chunks <= MAX_CHUNKS:
        assert read_session_token(parse_cookie_header(cookie_header(after)), name) == token


@FUZZ
@given(st.sampled_from(POLICIES), stale_jars, st.booleans())
def test_after_sign_out_no_session_cookie_is_left_in_the_jar(
    policy: CookiePolicy, stale: dict[int, str], plain: bool
) -> None:
    """R12/R14: clearing expires the plain cookie and every chunk the browser sent."""
    name = policy.session_token
    jar = {f"{name}.{i}": value or "x" for i, value in stale.items()}
    if plain:
        jar[name] = "old-token"
    after = apply_set_cookies(jar, session_cookie_headers(policy, jar, None))
    assert not [cookie for cookie in after if cookie.startswith(name)]


@FUZZ
@given(st.text(alphabet=B64URL, min_size=1, max_size=8 * 3933), st.randoms(use_true_random=False))
def test_chunks_reassemble_in_whatever_order_the_browser_sends_them(
    token: str, random: Any
) -> None:
    """R12: the Cookie header's order of `.0 … .n` does not matter."""
    policy = POLICIES[0]
    headers = session_cookie_headers(policy, {}, token)
    pairs = [header.split("; ")[0] for header in headers]
    random.shuffle(pairs)
    assert read_session_token(parse_cookie_header("; ".join(pairs)), policy.session_token) == token


@FUZZ
@given(st.lists(st.tuples(cookie_names, cookie_values), max_size=30))
def test_the_first_occurrence_of_each_name_wins(pairs: list[tuple[str, str]]) -> None:
    """Duplicates (cookie@0.7.2 rule): whatever follows, the first value of a name counts."""
    header = "; ".join(f"{name}={encode_value(value)}" for name, value in pairs)
    expected: dict[str, str] = {}
    for name, value in pairs:
        expected.setdefault(name, value)
    assert parse_cookie_header(header) == expected


@FUZZ
@given(st.text(alphabet=st.characters(max_codepoint=255), max_size=40_000))
def test_any_latin1_cookie_header_parses_to_a_bounded_jar(header: str) -> None:
    """A raw header (ASGI gives latin-1) never raises and yields at most MAX_COOKIES names."""
    jar = parse_cookie_header(header)
    assert len(jar) <= MAX_COOKIES
    assert all(name and name == name.strip() for name in jar)


# --- the token pre-checks ---------------------------------------------------------------------


@FUZZ
@given(st.text(max_size=600))
def test_arbitrary_text_is_never_a_session(text: str) -> None:
    """R1-R4, R10: any string is None, never an exception."""
    assert CODEC.decode(text, now=NOW) is None


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes_as_a_header_are_never_a_session(raw: bytes) -> None:
    """R1-R4: bytes as a proxy may pass them (latin-1), whole or in a compact-JWE frame."""
    text = raw.decode("latin-1")
    assert CODEC.decode(text, now=NOW) is None
    assert CODEC.decode(f"eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..{text}", now=NOW) is None


@st.composite
def mutated_tokens(draw: st.DrawFn) -> tuple[str, str]:
    """A real token and a changed copy: characters replaced, inserted, deleted or swapped
    between segments, or a truncation."""
    token = CODEC.encode({**CLAIMS, "n": draw(st.integers())}, 600, now=NOW)
    chars = list(token)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
        position = draw(st.integers(0, max(len(chars) - 1, 0)))
        new = draw(st.one_of(st.sampled_from(B64URL + ".=+/ %"), st.characters()))
        if kind == "replace" and chars:
            chars[position] = new
        elif kind == "insert":
            chars.insert(position, new)
        elif kind == "delete" and chars:
            del chars[position]
        else:
            del chars[position:]
    return token, "".join(chars)


@FUZZ
@given(mutated_tokens())
def test_a_mutated_token_never_decodes(pair: tuple[str, str]) -> None:
    """R2, R4: any change to a real token, however small, makes it no session."""
    original, mutated = pair
    assume(mutated != original)
    assert CODEC.decode(mutated, now=NOW) is None


@FUZZ
@given(st.integers(), st.integers(), st.lists(st.integers(0, 1), min_size=5, max_size=5))
def test_segments_spliced_from_two_real_tokens_never_decode(
    first: int, second: int, picks: list[int]
) -> None:
    """R2: a token assembled from the segments of two authentic ones is not authentic."""
    assume(first != second)
    tokens = [CODEC.encode({**CLAIMS, "n": n}, 600, now=NOW).split(".") for n in (first, second)]
    spliced = [tokens[pick][index] for index, pick in enumerate(picks)]
    assume(len(set(picks[2:])) > 1)  # IV, ciphertext and tag not all from one token
    assert CODEC.decode(".".join(spliced), now=NOW) is None


extra_claims = st.dictionaries(
    st.text(max_size=10).map(lambda key: "x-" + key),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20), st.lists, max_leaves=6
    ),
    max_size=5,
)


@FUZZ
@given(extra_claims, st.sampled_from([SECRET, OTHER_SECRET]))
def test_a_session_shaped_token_decodes_only_under_a_configured_secret(
    extra: dict[str, Any], secret: str
) -> None:
    """R8, R9: authentic session claims decode under our key and never under another."""
    token = TokenCodec([secret]).encode({**extra, **CLAIMS}, 600, now=NOW)
    assert (SESSION_CODEC.decode(token, now=NOW) is not None) is (secret == SECRET)


@FUZZ
@given(extra_claims, st.sampled_from(["state", "pkce", "nonce", ""]))
def test_an_authentic_check_cookie_payload_never_passes_as_a_session(
    extra: dict[str, Any], value: str
) -> None:
    """R6 (GHSA-v64w-49xw-qq89): `{value, provider}` under the session key is refused,
    whatever else it carries (even a subject and a role)."""
    claims = {**extra, **CLAIMS, "value": value, "provider": "github"}
    token = CODEC.encode(claims, 600, now=NOW)
    assert SESSION_CODEC.decode(token, now=NOW) is None


# --- the redirect rule -------------------------------------------------------------------------

home_like = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(
        [
            BASE,
            BASE + "@",
            BASE + ".",
            BASE + ":",
            "http://localhost:3000.",
            "/",
            "//",
            "/\\",
            "\\",
            "http:",
            "https://",
            "http://localhost",
            "/%2F",
            " ",
            "\t/",
        ]
    ),
    st.text(max_size=60),
)


@FUZZ
@given(st.one_of(home_like, st.text(max_size=100)))
def test_text_made_to_look_like_home_still_lands_home(target: str) -> None:
    """R27: prefixes that parsers disagree on, followed by anything."""
    location = default_redirect(target, BASE)
    assert stays_home(location)
    location.encode("ascii")


@FUZZ
@given(st.one_of(home_like, st.text(max_size=100)))
def test_the_rule_accepts_its_own_short_output_unchanged(target: str) -> None:
    """R27: a callback URL stored in the cookie is read back as the same URL."""
    location = default_redirect(target, BASE)
    assert default_redirect(location, BASE) == location


@pytest.mark.parametrize("length", [300, 336, 337, 700])
def test_the_rule_accepts_its_own_long_output_unchanged(length: int) -> None:
    """R27: found by the property above with longer inputs: a path of non-ASCII letters
    grows when encoded. The cap applies to the Location sent, so whatever the rule returns
    it accepts unchanged when it comes back in the callback-url cookie."""
    location = default_redirect("/" + "é" * length, BASE)
    assert len(location) <= MAX_URL_LENGTH
    assert default_redirect(location, BASE) == location


@pytest.fixture(scope="module")
def service() -> FastAPI:
    """authsvc on an empty in-memory database (nothing here reaches it)."""
    return create_app(make_settings())


def asgi_post(app: FastAPI, path: str, body: bytes, cookie: str) -> tuple[int, dict[str, str]]:
    """One form POST straight into the ASGI app, in a fresh event loop."""
    answer: dict[str, Any] = {}

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {
                k.decode("latin-1"): v.decode("latin-1") for k, v in message["headers"]
            }

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"localhost:3000"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"cookie", cookie.encode("latin-1")),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 3000),
    }
    asyncio.run(app(scope, receive, send))
    return answer["status"], answer["headers"]


@FUZZ
@given(st.text(max_size=300))
def test_any_text_posted_as_a_sign_out_callback_url_redirects_home(
    service: FastAPI, target: str
) -> None:
    """R27 through the HTTP stack: form decoding, the rule, the Location header."""
    token = "a" * 64
    digest = hashlib.sha256((token + SECRET).encode()).hexdigest()
    body = urlencode({"csrfToken": token, "callbackUrl": target}).encode()
    status, headers = asgi_post(
        service, "/api/auth/signout", body, f"next-auth.csrf-token={token}%7C{digest}"
    )
    assert status == 302
    assert stays_home(headers["location"])


# --- email normalisation -----------------------------------------------------------------------

# Characters that NFKC or IDNA turn into `@`, `.`, spaces or ASCII letters, and the ASCII
# they imitate: the material of GHSA-7rqj-j65f-68wh-style confusions.
LOCAL_LETTERS = "abcxyz019.-_+'ａｂｃＸＹＺ１ﬁﬀⅰℌ"
DOMAIN_LETTERS = "abcxyz019-ａｂｃＸＹＺ１ﬁⅰℌ"
ATS = ["@", "＠", "﹫"]
DOTS = [".", "．", "。", "｡", "․"]
NOISE = ["", " ", "\u3000", "\u00a0", ",", ";", "@", "＠", "﹫", '"', "\r\n", "\x00"]


@st.composite
def confusable_addresses(draw: st.DrawFn) -> str:
    """local @ label . tld, each part spelled with look-alikes, plus one piece of noise."""
    local = st.text(alphabet=LOCAL_LETTERS, min_size=1, max_size=12)
    label = st.text(alphabet=DOMAIN_LETTERS, min_size=1, max_size=12)
    address = (
        draw(local)
        + draw(st.sampled_from(ATS))
        + draw(label)
        + draw(st.sampled_from(DOTS))
        + draw(label)
    )
    position = draw(st.integers(0, len(address)))
    noise = draw(st.one_of(st.just(""), st.sampled_from(NOISE)))
    return address[:position] + noise + address[position:]


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@FUZZ
@given(st.one_of(confusable_addresses(), st.emails(), st.text(max_size=80)))
def test_a_normalised_address_is_a_lowercase_ascii_domain_fixed_point(raw: str) -> None:
    """GHSA-7rqj-j65f-68wh, GHSA-xv97-c62v-4587: None, or one `@`, no space or control
    character, a lower-case ASCII domain, unchanged by NFKC and by normalising again."""
    normalized = normalize_email(raw)
    if normalized is None:
        return
    _, at, domain = normalized.partition("@")
    assert at and "@" not in domain
    assert not re.search(r"[\s\x00-\x1f\x7f,;<>\"]", normalized)
    assert domain.isascii() and domain == domain.lower()
    assert unicodedata.normalize("NFKC", normalized) == normalized
    assert normalize_email(normalized) == normalized


@FUZZ
@given(st.one_of(st.emails(), st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126))))
def test_fullwidth_and_upper_case_spellings_are_the_same_account(raw: str) -> None:
    """An address typed in fullwidth forms or capitals is the same account (or refused alike)."""
    normalized = normalize_email(raw)
    assert normalize_email(fullwidth(raw)) == normalized
    assert normalize_email(raw.upper()) == normalized
