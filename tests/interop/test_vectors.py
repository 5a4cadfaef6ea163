"""The recorded next-auth vectors (tests/data/vectors/vectors.json) against authsvc's codec.

Tokens are decoded at the vectors' own clock (`generated_at_epoch`), so the results do
not depend on when the suite runs.
"""

from __future__ import annotations

import base64
import json
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authsvc.cookies import CookiePolicy, read_session_token, session_cookie_headers
from authsvc.tokens import TokenCodec, derive_key
from tests.conftest import DATA, SECRET

Vector = dict[str, Any]
Vectors = dict[str, Vector]

_RECORDED: dict[str, Any] = json.loads((DATA / "vectors" / "vectors.json").read_text())
# Every v4 vector with a recorded outcome, except the one authsvc deliberately rejects.
V4_DECODE_CASES = [
    entry["name"]
    for entry in _RECORDED["vectors"]
    if entry["name"].startswith("v4_")
    and "decoded" in entry
    and entry["name"] != "v4_no_exp_claim_handbuilt"
]
V4_KDF_CASES = [entry for entry in _RECORDED["kdf"] if entry["library"] == "next-auth v4"]
V5_TOKENS = [
    pytest.param(entry["name"], key, id=f"{entry['name']}:{key}")
    for entry in _RECORDED["vectors"]
    if entry["name"].startswith("v5_")
    for key, value in entry.items()
    if key.startswith("token") and isinstance(value, str)
]
SESSION_COOKIE = "next-auth.session-token"


@pytest.fixture(scope="module")
def clock(vectors: dict[str, Any]) -> int:
    """The sandbox clock when the vectors were made."""
    epoch: int = vectors["generated_at_epoch"]
    return epoch


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def expires_of(set_cookie: str) -> float:
    attribute = next(a for a in set_cookie.split("; ") if a.startswith("Expires="))
    return parsedate_to_datetime(attribute.removeprefix("Expires=")).timestamp()


# Decoding ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", V4_DECODE_CASES)
def test_v4_vector_decodes_as_recorded(name: str, vector: Vectors, clock: int) -> None:
    entry = vector[name]
    codec = TokenCodec([entry["secret"]], salt=entry["salt"])

    assert codec.decode(entry["token"], now=clock) == entry["decoded"]


def test_v4_vector_with_no_exp_claim_is_rejected(vector: Vectors, clock: int) -> None:
    # Deliberately stricter than next-auth (R5): next-auth's decode accepts a token with no
    # `exp` (a session that never expires); authsvc requires `exp` and rejects it.
    entry = vector["v4_no_exp_claim_handbuilt"]
    assert entry["decoded"] is not None  # what next-auth did

    assert TokenCodec([SECRET]).decode(entry["token"], now=clock) is None


def test_v4_vector_with_no_exp_claim_is_authentic_so_rejecting_it_is_policy(
    vector: Vectors,
) -> None:
    entry = vector["v4_no_exp_claim_handbuilt"]
    header, _, iv, ciphertext, tag = entry["token"].split(".")
    key = derive_key(SECRET)

    plaintext = AESGCM(key).decrypt(
        b64url_decode(iv), b64url_decode(ciphertext) + b64url_decode(tag), header.encode()
    )

    assert json.loads(plaintext) == entry["decoded"]


def test_v4_valid_default_maxage_vector_expires_thirty_days_after_its_clock(
    vector: Vectors, clock: int
) -> None:
    entry = vector["v4_valid_default_maxage_30d"]
    codec = TokenCodec([SECRET])
    exp = entry["decoded"]["exp"]

    assert codec.decode(entry["token"], now=exp + 14) == entry["decoded"]
    assert codec.decode(entry["token"], now=exp + 16) is None


def test_v4_expired_vector_is_rejected_only_for_its_expiry(vector: Vectors) -> None:
    entry = vector["v4_expired"]
    before_expiry = entry["payload_if_exp_ignored"]["exp"] - 60

    claims = TokenCodec([SECRET]).decode(entry["token"], now=before_expiry)

    assert claims == entry["payload_if_exp_ignored"]


def test_v4_different_secret_vector_decodes_with_the_secret_that_made_it(
    vector: Vectors, clock: int
) -> None:
    entry = vector["v4_different_secret"]

    claims = TokenCodec([entry["encoded_with_secret"]]).decode(entry["token"], now=clock)

    assert claims == entry["decoded_with_encoding_secret"]


def test_v4_oauth_state_vector_does_not_decode_without_its_salt(
    vector: Vectors, clock: int
) -> None:
    entry = vector["v4_oauth_state_cookie_salted"]
    assert entry["decoded_without_salt"] is None

    assert TokenCodec([SECRET]).decode(entry["token"], now=clock) is None


@pytest.mark.parametrize(("name", "key"), V5_TOKENS)
def test_v5_token_does_not_decode_with_the_v4_codec(
    name: str, key: str, vector: Vectors, clock: int
) -> None:
    entry = vector[name]
    secrets = [SECRET, *entry.get("secrets", {}).values()]

    assert TokenCodec(secrets).decode(entry[key], now=clock) is None


def test_cross_vector_token_is_a_v4_token_that_decodes_here(vector: Vectors, clock: int) -> None:
    # `cross_v4_token_decoded_by_v5` records that @auth/core (v5) cannot read a v4 token.
    # The token itself is an ordinary next-auth v4 session token, so the v4 codec reads it.
    entry = vector["cross_v4_token_decoded_by_v5"]
    assert entry["result"]["payload"] is None

    claims = TokenCodec([entry["secret"]]).decode(entry["token"], now=clock)

    assert claims is not None
    assert claims["sub"] == "ckv1user0000000000000001"


# Key derivation and exact bytes --------------------------------------------------------


@pytest.mark.parametrize("entry", V4_KDF_CASES, ids=lambda entry: entry["salt"] or "session")
def test_v4_key_derivation_matches_next_auth(entry: dict[str, Any]) -> None:
    assert derive_key(entry["secret"], entry["salt"]).hex() == entry["derived_key_hex"]


def test_deterministic_vector_is_reproduced_by_aes_gcm_with_the_derived_key(
    vector: Vectors,
) -> None:
    entry = vector["v4_deterministic_fixed_iv"]
    key = derive_key(entry["secret"], entry["salt"])
    assert key.hex() == entry["derived_key_hex"]
    iv = bytes.fromhex(entry["iv_hex"])

    sealed = AESGCM(key).encrypt(
        iv, entry["plaintext_utf8"].encode(), entry["aad_ascii"].encode("ascii")
    )
    ciphertext, tag = sealed[:-16], sealed[-16:]
    token = f"{entry['aad_ascii']}..{b64url(iv)}.{b64url(ciphertext)}.{b64url(tag)}"

    assert token == entry["token"]


def test_deterministic_vector_decodes_to_its_plaintext(vector: Vectors) -> None:
    entry = vector["v4_deterministic_fixed_iv"]

    claims = TokenCodec([SECRET]).decode(entry["token"], now=entry["decoded"]["iat"])

    assert claims == json.loads(entry["plaintext_utf8"]) == entry["decoded"]


# Chunked cookies -----------------------------------------------------------------------


def test_large_token_is_written_as_the_chunks_next_auth_writes(vector: Vectors) -> None:
    entry = vector["v4_large_payload_chunked"]
    recorded = entry["set_cookie_headers_fresh"]

    headers = session_cookie_headers(
        CookiePolicy(secure=False), {}, entry["token"], expires=expires_of(recorded[0])
    )

    assert headers == recorded


def test_large_token_chunks_reassemble_to_the_token(vector: Vectors) -> None:
    entry = vector["v4_large_payload_chunked"]
    cookies = {}
    for header in entry["set_cookie_headers_fresh"]:
        name, _, value = header.split("; ")[0].partition("=")
        cookies[name] = value

    assert read_session_token(cookies, SESSION_COOKIE) == entry["token"]


def test_large_token_chunks_use_the_secure_names_on_https(vector: Vectors) -> None:
    entry = vector["v4_large_payload_chunked"]
    # Recorded values are truncated: compare what is left of each.
    prefixes = [
        h.split("...(truncated")[0] for h in entry["set_cookie_headers_secure_cookie_names"]
    ]

    headers = session_cookie_headers(CookiePolicy(secure=True), {}, entry["token"], expires=0)

    assert len(headers) == len(prefixes)
    assert all(h.startswith(p) for h, p in zip(headers, prefixes, strict=True))


def test_small_token_replacing_three_chunks_clears_them_first(vector: Vectors) -> None:
    recorded = vector["v4_large_payload_chunked"][
        "set_cookie_headers_when_replacing_3_chunks_with_small_token"
    ]
    small_token = recorded[3].split("; ")[0].removeprefix(f"{SESSION_COOKIE}=")
    stale = {f"{SESSION_COOKIE}.{i}": "stale" for i in range(3)}

    headers = session_cookie_headers(
        CookiePolicy(secure=False), stale, small_token, expires=expires_of(recorded[3])
    )

    assert headers[:3] == recorded[:3]
    assert headers == recorded
