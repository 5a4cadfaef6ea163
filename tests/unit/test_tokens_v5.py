"""The Auth.js v5 token codec: @auth/core's format, its vectors, and the strict checks."""

from __future__ import annotations

import hmac
import json
import os
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st
from jose import jwe

from authsvc.token_cache import TokenCache
from authsvc.tokens import MAX_TOKEN_LENGTH, TokenCodec, b64url_decode, is_session_shaped
from authsvc.tokens_v5 import (
    CBC,
    GCM,
    AuthjsTokenCodec,
    Encryption,
    _cbc_tag,
    b64url,
    derive_key,
    header_segment,
    seal_cbc_hs512,
    thumbprint,
)
from tests.authjs_vectors import RECORDED, recorded_decodes
from tests.conftest import OTHER_SECRET, SECRET

NOW = 1_800_000_000
SALT = "authjs.session-token"
CLAIMS = {"sub": "ckv1user0000000000000001", "email": "ana@example.com", "role": "ADMIN"}
V5_KDF = [entry for entry in RECORDED["kdf"] if entry["library"] == "@auth/core v5"]
VALID_VECTORS = ["v5_authjs.session-token", "v5___Secure-authjs.session-token"]
Vector = dict[str, Any]


@pytest.fixture
def codec() -> AuthjsTokenCodec:
    return AuthjsTokenCodec([SECRET], salt=SALT)


@pytest.fixture(scope="module")
def clock() -> int:
    """The clock the vectors were made at, so their outcome does not depend on today."""
    epoch: int = RECORDED["generated_at_epoch"]
    return epoch


def handmade(
    payload: bytes,
    *,
    enc: Encryption = CBC,
    kid: str | None = "derived",
    header: str | None = None,
    secret: str = SECRET,
) -> str:
    """A token sealed directly, to craft what @auth/core would or would never write."""
    key = derive_key(secret, SALT, enc)
    segment = header or header_segment(enc, thumbprint(key) if kid == "derived" else kid)
    if enc == CBC:
        return seal_cbc_hs512(key, segment, payload, os.urandom(16))
    iv = os.urandom(12)
    sealed = AESGCM(key).encrypt(iv, payload, segment.encode())
    return f"{segment}..{b64url(iv)}.{b64url(sealed[:-16])}.{b64url(sealed[-16:])}"


def claims_json(**extra: Any) -> bytes:
    return json.dumps({**CLAIMS, "exp": NOW + 60, **extra}).encode()


def header_of(token: str) -> str:
    return b64url_decode(token.split(".")[0]).decode()


# Key derivation and kid ---------------------------------------------------------------


@pytest.mark.parametrize("entry", V5_KDF, ids=lambda e: f"{e['salt']}:{e['enc']}")
def test_key_derivation_matches_each_recorded_auth_core_key(entry: Vector) -> None:
    key = derive_key(entry["secret"], entry["salt"], entry["enc"])
    assert key.hex() == entry["derived_key_hex"]


@pytest.mark.parametrize("entry", V5_KDF, ids=lambda e: f"{e['salt']}:{e['enc']}")
def test_kid_is_the_recorded_jwk_thumbprint_of_the_key(entry: Vector) -> None:
    assert thumbprint(bytes.fromhex(entry["derived_key_hex"])) == entry["kid_jwk_thumbprint"]


def test_the_gcm_key_is_the_first_half_of_the_cbc_key() -> None:
    assert derive_key(SECRET, SALT, GCM) == derive_key(SECRET, SALT, CBC)[:32]


# Encoding -------------------------------------------------------------------------------


def test_encoded_header_is_dir_cbc_hs512_and_the_kid_in_that_order(
    codec: AuthjsTokenCodec,
) -> None:
    token = codec.encode(CLAIMS, 60, now=NOW)
    kid = thumbprint(derive_key(SECRET, SALT))
    assert header_of(token) == f'{{"alg":"dir","enc":"A256CBC-HS512","kid":"{kid}"}}'


def test_encoded_token_has_an_empty_key_a_16_byte_iv_and_a_32_byte_tag(
    codec: AuthjsTokenCodec,
) -> None:
    _, key, iv, _, tag = codec.encode(CLAIMS, 60, now=NOW).split(".")
    assert (key, len(b64url_decode(iv)), len(b64url_decode(tag))) == ("", 16, 32)


def test_encode_sets_iat_exp_and_a_uuid4_jti(codec: AuthjsTokenCodec) -> None:
    claims = codec.decode(codec.encode(CLAIMS, 60, now=NOW), now=NOW)
    assert claims is not None
    assert (claims["iat"], claims["exp"]) == (NOW, NOW + 60)
    assert uuid.UUID(claims["jti"]).version == 4


def test_token_round_trips(codec: AuthjsTokenCodec) -> None:
    claims = codec.decode(codec.encode({**CLAIMS, "name": "Ána ✓"}, 60, now=NOW), now=NOW)
    assert claims is not None
    assert {k: claims[k] for k in (*CLAIMS, "name")} == {**CLAIMS, "name": "Ána ✓"}


def test_sealing_reproduces_the_deterministic_vector_byte_for_byte(
    vector: dict[str, Vector],
) -> None:
    entry = vector["v5_deterministic_fixed_iv"]
    key = bytes.fromhex(entry["derived_key_hex"])

    token = seal_cbc_hs512(
        key,
        header_segment(CBC, entry["kid"]),
        entry["plaintext_utf8"].encode(),
        bytes.fromhex(entry["iv_hex"]),
    )

    assert token == entry["token"]


def test_python_jose_opens_a_token_encoded_here(codec: AuthjsTokenCodec) -> None:
    token = codec.encode(CLAIMS, 60, now=NOW)
    assert json.loads(jwe.decrypt(token, derive_key(SECRET, SALT)))["sub"] == CLAIMS["sub"]


def test_new_tokens_are_encrypted_with_the_first_secret() -> None:
    token = AuthjsTokenCodec([OTHER_SECRET, SECRET], salt=SALT).encode(CLAIMS, 60, now=NOW)
    assert AuthjsTokenCodec([OTHER_SECRET], salt=SALT).decode(token, now=NOW) is not None


# The recorded @auth/core vectors --------------------------------------------------------


@pytest.mark.parametrize(("token", "salt", "secrets", "recorded"), recorded_decodes())
def test_each_recorded_auth_core_decode_holds_here(
    clock: int, token: str, salt: str, secrets: list[str], recorded: Any
) -> None:
    assert AuthjsTokenCodec(secrets, salt=salt).decode(token, now=clock) == recorded


@pytest.mark.parametrize("name", VALID_VECTORS)
def test_auth_core_vector_is_refused_under_the_other_cookie_name(
    vector: dict[str, Vector], clock: int, name: str
) -> None:
    entry = vector[name]
    other = next(n for n in VALID_VECTORS if n != name)
    codec = AuthjsTokenCodec([entry["secret"]], salt=vector[other]["salt"])
    assert codec.decode(entry["token"], now=clock) is None


def test_v4_codec_refuses_a_token_encoded_here(codec: AuthjsTokenCodec) -> None:
    assert TokenCodec([SECRET]).decode(codec.encode(CLAIMS, 60, now=NOW), now=NOW) is None


def test_v4_token_is_refused_even_with_the_same_secret_and_salt() -> None:
    v4_token = TokenCodec([SECRET], salt=SALT).encode(CLAIMS, 60, now=NOW)
    assert AuthjsTokenCodec([SECRET], salt=SALT).decode(v4_token, now=NOW) is None


# What decode accepts --------------------------------------------------------------------


def test_a256gcm_token_with_its_sha256_kid_is_accepted(codec: AuthjsTokenCodec) -> None:
    assert codec.decode(handmade(claims_json(), enc=GCM), now=NOW) is not None


def test_a256gcm_token_without_a_kid_is_accepted(codec: AuthjsTokenCodec) -> None:
    assert codec.decode(handmade(claims_json(), enc=GCM, kid=None), now=NOW) is not None


def test_cbc_token_without_a_kid_is_accepted(codec: AuthjsTokenCodec) -> None:
    assert codec.decode(handmade(claims_json(), kid=None), now=NOW) is not None


def test_kid_of_an_unknown_secret_is_refused(codec: AuthjsTokenCodec) -> None:
    token = handmade(claims_json(), kid=thumbprint(derive_key(OTHER_SECRET, SALT)))
    assert codec.decode(token, now=NOW) is None


def test_gcm_kid_on_a_cbc_token_is_refused(codec: AuthjsTokenCodec) -> None:
    token = handmade(claims_json(), kid=thumbprint(derive_key(SECRET, SALT, GCM)))
    assert codec.decode(token, now=NOW) is None


@pytest.mark.parametrize(
    "header",
    [
        '{"enc":"A256CBC-HS512","alg":"dir","kid":"%s"}',  # keys in another order
        '{"alg":"dir","enc":"A256CBC-HS512","kid":"%s","zip":"DEF"}',
        '{"alg":"dir","enc":"A256CBC-HS512","kid":"%s","typ":"JWT"}',
        '{"alg":"dir", "enc":"A256CBC-HS512","kid":"%s"}',  # whitespace
        '{"alg":"A256KW","enc":"A256CBC-HS512","kid":"%s"}',
        '{"alg":"dir","enc":"A128CBC-HS256","kid":"%s"}',
        '{"alg":"none","enc":"A256CBC-HS512","kid":"%s"}',
        '{"alg":"dir","enc":"A256CBC-HS512","kid":"%s","kid":"x"}',
    ],
)
def test_headers_other_than_the_exact_auth_core_shapes_are_refused(
    codec: AuthjsTokenCodec, header: str
) -> None:
    kid = thumbprint(derive_key(SECRET, SALT))
    token = handmade(claims_json(), header=b64url((header % kid).encode()))
    assert codec.decode(token, now=NOW) is None


@pytest.mark.parametrize("segment", [0, 2, 3, 4])
def test_changing_any_segment_is_refused(codec: AuthjsTokenCodec, segment: int) -> None:
    parts = codec.encode(CLAIMS, 60, now=NOW).split(".")
    flipped = "B" if parts[segment][5] == "A" else "A"
    parts[segment] = parts[segment][:5] + flipped + parts[segment][6:]
    assert codec.decode(".".join(parts), now=NOW) is None


def test_non_canonical_last_character_of_the_tag_is_refused(codec: AuthjsTokenCodec) -> None:
    parts = codec.encode(CLAIMS, 60, now=NOW).split(".")
    # 32 bytes → 43 characters; the last one carries 2 spare bits that must be zero.
    last = parts[4][-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    parts[4] = parts[4][:-1] + alphabet[alphabet.index(last) | 1]
    assert codec.decode(".".join(parts), now=NOW) is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: [p[0], "AAAA", *p[2:]],  # an encrypted key
        lambda p: [p[0], p[1], p[2][:-2], *p[3:]],  # a 15-byte IV
        lambda p: [*p[:4], p[4][:-1]],  # a short tag
        lambda p: [*p[:4], p[4] + "="],  # padding
        lambda p: [p[0], p[1], p[2], "", p[4]],  # no ciphertext
        lambda p: [*p, ""],  # six segments
        lambda p: p[:4],  # four segments
    ],
)
def test_structurally_invalid_tokens_are_refused(codec: AuthjsTokenCodec, mutate: Any) -> None:
    parts = codec.encode(CLAIMS, 60, now=NOW).split(".")
    assert codec.decode(".".join(mutate(parts)), now=NOW) is None


def test_ciphertext_that_is_not_whole_blocks_is_refused_before_decryption(
    codec: AuthjsTokenCodec,
) -> None:
    parts = codec.encode(CLAIMS, 60, now=NOW).split(".")
    parts[3] = b64url(b64url_decode(parts[3])[:-1])
    assert codec.decode(".".join(parts), now=NOW) is None


def test_authentic_token_with_bad_padding_is_refused(codec: AuthjsTokenCodec) -> None:
    key = derive_key(SECRET, SALT)
    header = header_segment(CBC, thumbprint(key))
    iv = os.urandom(16)
    # Two whole blocks ending in a zero byte, which PKCS#7 never writes, properly tagged.
    encryptor = Cipher(algorithms.AES(key[32:]), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(b"\x00" * 32) + encryptor.finalize()
    tag = _cbc_tag(key[:32], header.encode(), iv, ciphertext)
    token = f"{header}..{b64url(iv)}.{b64url(ciphertext)}.{b64url(tag)}"
    assert codec.decode(token, now=NOW) is None


def test_tag_is_compared_in_constant_time(
    codec: AuthjsTokenCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[int] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(len(b))
        return original(a, b)

    monkeypatch.setattr("authsvc.tokens_v5.hmac.compare_digest", spy)
    assert codec.decode(codec.encode(CLAIMS, 60, now=NOW), now=NOW) is not None
    assert compared == [32]


def test_oversized_token_is_refused_before_any_crypto(
    codec: AuthjsTokenCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_: object) -> None:
        raise AssertionError("crypto must not be reached")

    token = codec.encode({**CLAIMS, "blob": "x" * MAX_TOKEN_LENGTH}, 60, now=NOW)
    monkeypatch.setattr("authsvc.tokens_v5._open_cbc_hs512", fail)
    monkeypatch.setattr("authsvc.tokens_v5._openers", fail)
    started = time.perf_counter()
    assert codec.decode(token, now=NOW) is None
    assert codec.decode("A" * 300 * 1024, now=NOW) is None
    assert time.perf_counter() - started < 1


def test_unknown_header_is_refused_before_any_crypto(
    codec: AuthjsTokenCodec, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_: object) -> None:
        raise AssertionError("crypto must not be reached")

    token = handmade(claims_json(), header=b64url(b'{"alg":"dir","enc":"A256CBC-HS512"} '))
    monkeypatch.setattr("authsvc.tokens_v5._open_cbc_hs512", fail)
    assert codec.decode(token, now=NOW) is None


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xfe not utf-8",
        b"[1,2,3]",
        b"null",
        b"not json",
        b'{"sub":"u"}',  # no exp
        b'{"sub":"u","exp":"1900000000"}',
        b'{"sub":"u","exp":1900000000,"nbf":1900000000}',
    ],
)
def test_payloads_that_are_not_a_valid_claim_set_are_refused(
    codec: AuthjsTokenCodec, payload: bytes
) -> None:
    assert codec.decode(handmade(payload), now=NOW) is None


def test_expiry_has_fifteen_seconds_of_tolerance(codec: AuthjsTokenCodec) -> None:
    token = handmade(json.dumps({**CLAIMS, "exp": NOW - 14}).encode())
    assert codec.decode(token, now=NOW) is not None
    assert codec.decode(token, now=NOW + 2) is None


def test_check_cookie_shaped_payload_is_not_a_session() -> None:
    codec = AuthjsTokenCodec([SECRET], salt=SALT, accepts=is_session_shaped)
    token = codec.encode({"value": "v", "provider": "google"}, 60, now=NOW)
    assert codec.decode(token, now=NOW) is None


def test_decoded_tokens_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    codec = AuthjsTokenCodec([SECRET], salt=SALT, cache=TokenCache(10))
    token = codec.encode(CLAIMS, 60, now=NOW)
    assert codec.decode(token, now=NOW) is not None
    monkeypatch.setattr("authsvc.tokens_v5._open_cbc_hs512", lambda *_: b"")
    assert codec.decode(token, now=NOW) is not None


@given(st.text(max_size=600))
def test_any_text_is_a_token_or_none_never_an_exception(text: str) -> None:
    assert AuthjsTokenCodec([SECRET], salt=SALT).decode(text, now=NOW) is None


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=4), st.integers(0, 400))
def test_only_untouched_tokens_decode(payload: bytes, segment: int, position: int) -> None:
    codec = AuthjsTokenCodec([SECRET], salt=SALT)
    parts = codec.encode({"sub": "u", "data": payload.hex()}, 60, now=NOW).split(".")
    if segment == 1:  # the (empty) key segment: any character there is refused
        parts[1] = "A"
    else:
        index = position % len(parts[segment])
        replacement = "A" if parts[segment][index] != "A" else "B"
        parts[segment] = parts[segment][:index] + replacement + parts[segment][index + 1 :]
    assert codec.decode(".".join(parts), now=NOW) is None
