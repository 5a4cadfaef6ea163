"""The token codec: next-auth's format, and the stricter checks on input (R1-R10)."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st
from jose import jwe
from jose.exceptions import JOSEError

from authsvc.tokens import (
    HEADER_SEGMENT,
    MAX_TOKEN_LENGTH,
    TokenCodec,
    derive_key,
    is_session_shaped,
)
from tests.conftest import OTHER_SECRET, SECRET

NOW = 1_800_000_000
CLAIMS = {"sub": "ckv1user0000000000000001", "email": "ana@example.com", "role": "ADMIN"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(
    payload: bytes,
    *,
    header: dict[str, Any] | None = None,
    key: bytes | None = None,
    iv: bytes | None = None,
) -> str:
    """A JWE built directly with AES-GCM, to craft inputs next-auth would never write."""
    header_segment = (
        b64(json.dumps(header, separators=(",", ":")).encode()) if header else HEADER_SEGMENT
    )
    nonce = iv or os.urandom(12)
    sealed = AESGCM(key or derive_key(SECRET)).encrypt(nonce, payload, header_segment.encode())
    return f"{header_segment}..{b64(nonce)}.{b64(sealed[:-16])}.{b64(sealed[-16:])}"


@pytest.fixture
def codec() -> TokenCodec:
    return TokenCodec([SECRET])


def test_encoded_token_starts_with_next_auths_exact_header(codec: TokenCodec) -> None:
    token = codec.encode(CLAIMS, 60, now=NOW)
    assert token.startswith(HEADER_SEGMENT + "..")
    _, key, iv, _, tag = token.split(".")
    assert (key, len(iv), len(tag)) == ("", 16, 22)


def test_encoded_token_opens_with_python_jose_to_the_exact_plaintext(codec: TokenCodec) -> None:
    token = codec.encode(CLAIMS, 60, now=NOW)
    plaintext = jwe.decrypt(token.encode(), derive_key(SECRET))
    expected = {**CLAIMS, "iat": NOW, "exp": NOW + 60}
    opened = json.loads(plaintext)
    assert {key: opened[key] for key in expected} == expected
    assert plaintext == json.dumps(opened, separators=(",", ":"), ensure_ascii=False).encode()


def test_every_encoded_token_has_a_fresh_iv(codec: TokenCodec) -> None:
    ivs = {codec.encode(CLAIMS, 60, now=NOW).split(".")[2] for _ in range(50)}
    assert len(ivs) == 50


def test_encode_sets_iat_exp_and_a_uuid4_jti(codec: TokenCodec) -> None:
    claims = codec.decode(codec.encode(CLAIMS, 3600, now=NOW), now=NOW)
    assert claims is not None
    assert (claims["iat"], claims["exp"]) == (NOW, NOW + 3600)
    assert len(claims["jti"]) == 36 and claims["jti"][14] == "4"


def test_every_jti_is_a_distinct_rfc_4122_version_4_uuid(codec: TokenCodec) -> None:
    jtis = [jwt_id(codec.encode(CLAIMS, 60, now=NOW)) for _ in range(200)]
    parsed = [uuid.UUID(jti) for jti in jtis]
    assert [str(u) for u in parsed] == jtis
    assert {(u.version, u.variant) for u in parsed} == {(4, uuid.RFC_4122)}
    assert len(set(jtis)) == 200


def jwt_id(token: str) -> str:
    return str(json.loads(jwe.decrypt(token, derive_key(SECRET)))["jti"])


def test_encode_overwrites_iat_exp_jti_in_place_keeping_their_position(codec: TokenCodec) -> None:
    token = codec.encode({"iat": 1, "sub": "u", "exp": 2, "jti": "x"}, 60, now=NOW)
    plaintext = jwe.decrypt(token, derive_key(SECRET))
    assert list(json.loads(plaintext)) == ["iat", "sub", "exp", "jti"]


def test_plaintext_is_compact_json_with_raw_unicode(codec: TokenCodec) -> None:
    token = codec.encode({"sub": "u", "name": "Ána ✓"}, 60, now=NOW)
    plaintext = jwe.decrypt(token, derive_key(SECRET)).decode()
    assert plaintext.startswith('{"sub":"u","name":"Ána ✓","iat":')


def test_token_round_trips(codec: TokenCodec) -> None:
    claims = codec.decode(codec.encode(CLAIMS, 60, now=NOW), now=NOW)
    assert claims is not None and claims["email"] == "ana@example.com"


def test_key_derivation_matches_the_published_vector() -> None:
    expected = "e2ef7d2505c7ec99f4c7aae85a55d2200f685b23d7a9ab3c4af4420e0dcbe4ec"
    assert derive_key(SECRET).hex() == expected


def test_salted_codec_cannot_read_session_tokens_and_vice_versa(codec: TokenCodec) -> None:
    salted = TokenCodec([SECRET], salt="next-auth.state")
    assert salted.decode(codec.encode(CLAIMS, 60, now=NOW), now=NOW) is None
    assert codec.decode(salted.encode({"value": "v"}, 60, now=NOW), now=NOW) is None


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-100, True), (0, True), (14, True), (15, False), (16, False)]
)
def test_expiry_has_fifteen_seconds_of_tolerance(
    codec: TokenCodec, offset: int, accepted: bool
) -> None:
    token = codec.encode(CLAIMS, 60, now=NOW)
    assert (codec.decode(token, now=NOW + 60 + offset) is not None) is accepted


def test_token_from_another_secret_is_rejected(codec: TokenCodec) -> None:
    token = TokenCodec([OTHER_SECRET]).encode(CLAIMS, 60, now=NOW)
    assert codec.decode(token, now=NOW) is None


def test_previous_secret_decrypts_but_new_tokens_use_the_current_one() -> None:
    old_token = TokenCodec([OTHER_SECRET]).encode(CLAIMS, 60, now=NOW)
    rotating = TokenCodec([SECRET, OTHER_SECRET])
    assert rotating.decode(old_token, now=NOW) is not None
    assert TokenCodec([SECRET]).decode(rotating.encode(CLAIMS, 60, now=NOW), now=NOW)


def test_removing_the_old_secret_invalidates_its_tokens() -> None:
    old_token = TokenCodec([OTHER_SECRET]).encode(CLAIMS, 60, now=NOW)
    assert TokenCodec([SECRET]).decode(old_token, now=NOW) is None


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "enc": "A256GCM"},
        {"alg": "HS256", "enc": "A256GCM"},
        {"alg": "A256KW", "enc": "A256GCM"},
        {"alg": "RSA-OAEP", "enc": "A256GCM"},
        {"alg": "PBES2-HS256+A128KW", "enc": "A256GCM"},
        {"alg": "dir", "enc": "A128GCM"},
        {"alg": "dir", "enc": "A256CBC-HS512"},
        {"alg": "dir", "enc": "A256GCM", "zip": "DEF"},
        {"alg": "dir", "enc": "A256GCM", "kid": "x"},
        {"enc": "A256GCM", "alg": "dir"},
    ],
)
def test_any_other_header_is_rejected_before_decryption(
    codec: TokenCodec, header: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_: object) -> None:
        raise AssertionError("decrypt must not be reached")

    monkeypatch.setattr("authsvc.tokens._cipher", fail)
    payload = json.dumps({**CLAIMS, "exp": NOW + 60}).encode()
    assert codec.decode(handmade(payload, header=header), now=NOW) is None


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "enc": "A256GCM"},
        {"alg": "dir", "enc": "A128GCM"},
        {"alg": "dir", "enc": "A256GCM", "zip": "DEF"},
        {"enc": "A256GCM", "alg": "dir"},
    ],
)
def test_a_genuine_token_under_another_header_is_rejected(
    codec: TokenCodec, header: dict[str, Any]
) -> None:
    """The cipher authenticates next-auth's header, not the token's: only the header check
    stands between a swapped header and a session."""
    _, *rest = codec.encode(CLAIMS, 60, now=NOW).split(".")
    swapped = ".".join([b64(json.dumps(header, separators=(",", ":")).encode()), *rest])
    assert codec.decode(swapped, now=NOW) is None


def test_handmade_token_with_the_exact_header_is_accepted(codec: TokenCodec) -> None:
    payload = json.dumps({**CLAIMS, "exp": NOW + 60}).encode()
    assert codec.decode(handmade(payload), now=NOW) is not None


@pytest.mark.parametrize("segment", [0, 2, 3, 4])
def test_flipping_a_middle_character_of_any_segment_is_rejected(
    codec: TokenCodec, segment: int
) -> None:
    parts = codec.encode(CLAIMS, 60, now=NOW).split(".")
    middle = len(parts[segment]) // 2
    flipped = "B" if parts[segment][middle] != "B" else "C"
    parts[segment] = parts[segment][:middle] + flipped + parts[segment][middle + 1 :]
    assert codec.decode(".".join(parts), now=NOW) is None


def test_non_canonical_last_character_of_the_tag_is_rejected(codec: TokenCodec) -> None:
    token = codec.encode(CLAIMS, 60, now=NOW)
    head, tag = token.rsplit(".", 1)
    # The tag's last character has 4 unused bits; python-jose alone would accept this.
    sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = sibling.index(tag[-1])
    altered = tag[:-1] + sibling[index + 1 if index % 16 != 15 else index - 1]
    assert codec.decode(f"{head}.{altered}", now=NOW) is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: [p[0], "AAAA", *p[2:]],  # non-empty encrypted key
        lambda p: [p[0], p[1], p[2][:11], *p[3:]],  # 8-byte IV
        lambda p: [*p[:4], p[4][:16]],  # 12-byte tag
        lambda p: [p[0], p[1], p[2], p[3].replace("-", "+").replace("_", "/") + "+", p[4]],
        lambda p: [*p[:4], p[4] + "=="],
        lambda p: [*p, ""],  # six segments
        lambda p: p[:4],  # four segments
        lambda p: [p[0], p[1], p[2], "", p[4]],  # empty ciphertext
    ],
)
def test_structurally_invalid_tokens_are_rejected(codec: TokenCodec, mutate: Any) -> None:
    parts = codec.encode(CLAIMS, 60, now=NOW).split(".")
    assert codec.decode(".".join(mutate(parts)), now=NOW) is None


@pytest.mark.parametrize(
    "garbage",
    ["", "garbage", "a.b.c", "....", "\x00" * 10, "é" * 50, HEADER_SEGMENT + "....", "." * 4000],
)
def test_garbage_is_no_session_not_an_exception(codec: TokenCodec, garbage: str) -> None:
    assert codec.decode(garbage, now=NOW) is None


def test_oversized_token_is_rejected_before_any_crypto(
    codec: TokenCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_: object) -> None:
        raise AssertionError("decrypt must not be reached")

    token = codec.encode({**CLAIMS, "blob": "x" * MAX_TOKEN_LENGTH}, 60, now=NOW)
    monkeypatch.setattr("authsvc.tokens._cipher", fail)
    started = time.perf_counter()
    assert codec.decode(token, now=NOW) is None
    assert codec.decode("A" * 300 * 1024, now=NOW) is None
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xfe not utf-8",
        b"[1,2,3]",
        b"null",
        b'"a string"',
        b"not json",
        b'{"sub":"u"}',  # no exp
        b'{"sub":"u","exp":null}',
        b'{"sub":"u","exp":"1900000000"}',
        b'{"sub":"u","exp":true}',
        b'{"sub":"u","exp":[1900000000]}',
        b'{"sub":"u","exp":1900000000,"nbf":"x"}',
        b'{"sub":"u","exp":1900000000,"nbf":1900000000}',
        b'{"sub":"u","exp":1900000000,"iat":"yesterday"}',
        b'{"sub":"u","exp":1e999}',
    ],
)
def test_payloads_that_are_not_a_valid_claim_set_are_rejected(
    codec: TokenCodec, payload: bytes
) -> None:
    assert codec.decode(handmade(payload), now=NOW) is None


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=4), st.integers(0, 400))
def test_decoder_agrees_with_python_jose_on_valid_and_tampered_tokens(
    payload: bytes, segment: int, position: int
) -> None:
    """The direct AES-GCM opener accepts exactly what python-jose's jwe.decrypt accepts."""
    claims = {"sub": "u", "data": payload.hex(), "exp": NOW + 60}
    parts = TokenCodec([SECRET]).encode(claims, 60, now=NOW).split(".")
    if segment != 1 and parts[segment]:
        index = position % len(parts[segment])
        original = parts[segment][index]
        parts[segment] = (
            parts[segment][:index] + ("A" if original != "A" else "B") + parts[segment][index + 1 :]
        )
    token = ".".join(parts)
    ours = TokenCodec([SECRET]).decode(token, now=NOW)
    try:
        theirs = jwe.decrypt(token, derive_key(SECRET))
    except JOSEError:
        theirs = None
    if ours is not None:
        assert theirs is not None and json.loads(theirs) == ours
    elif theirs is not None:
        # Only our canonical-base64 rule may refuse what python-jose opens: a changed
        # last character of the ciphertext or tag whose spare bits python-jose ignores.
        assert segment in (3, 4)


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "u"},
        {"sub": "u", "role": "ADMIN", "email": "a@b.co", "name": None},
        {"sub": "u", "role": None},
    ],
)
def test_session_shaped_claims(claims: dict[str, Any]) -> None:
    assert is_session_shaped(claims)


@pytest.mark.parametrize(
    "claims",
    [
        {"value": "state-value", "provider": "github", "sub": "x"},
        {"value": "state-value", "provider": "github"},
        {},
        {"sub": ""},
        {"sub": 42},
        {"sub": "u\r\nX-Evil: 1"},
        {"sub": "u", "role": ["admin"]},
        {"sub": "u", "role": "admin\r\nX-Evil: 1"},
        {"sub": "u", "role": {"$ne": 1}},
        {"sub": "u", "role": "SUPERUSER"},
        {"sub": "u", "email": "a" * 400 + "@b.co"},
        {"sub": "u", "email": "a@b.co\r\nX: y"},
        {"sub": "u", "email": 7},
        {"sub": "u", "name": {"first": "A"}},
    ],
)
def test_claims_without_the_session_shape_are_refused(claims: dict[str, Any]) -> None:
    assert not is_session_shaped(claims)
