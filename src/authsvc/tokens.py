"""next-auth v4 token codec: JWE `dir` + `A256GCM`, key = HKDF-SHA256(secret).

Encoding is byte-compatible with next-auth's `encode`. Decoding is stricter than
next-auth's `decode` (see docs in README "Where authsvc differs"): the header must be
exactly the one next-auth writes, segments must be canonical base64url, the token has
a length cap checked before any crypto, and `exp` is required. Every failure is the
value `None`; nothing raises to the caller.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authsvc.users.records import ROLES

Claims = dict[str, Any]

HEADER_SEGMENT = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0"  # {"alg":"dir","enc":"A256GCM"}
CLOCK_TOLERANCE = 15
# A 3-chunk next-auth cookie is ~8.4k characters; 16 KiB leaves room and bounds the work.
MAX_TOKEN_LENGTH = 16 * 1024
MAX_EMAIL_LENGTH = 320

_B64URL = re.compile(r"[A-Za-z0-9_-]+")
# base64url characters whose value has its low 4 bits clear, for the canonical last
# character of an encoding of n bytes with n % 3 == 1 (4 spare bits) ...
_CANONICAL_4 = frozenset("AQgw")
# ... and low 2 bits clear, for n % 3 == 2 (2 spare bits).
_CANONICAL_2 = frozenset("AEIMQUYcgkosw048")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def derive_key(secret: str, salt: str = "") -> bytes:
    """next-auth's `getDerivedEncryptionKey`: 32 bytes of HKDF-SHA256."""
    return _derive_key(secret, salt)


@lru_cache(maxsize=64)
def _derive_key(secret: str, salt: str) -> bytes:
    info = "NextAuth.js Generated Encryption Key"
    if salt:
        info += f" ({salt})"
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt.encode(), info=info.encode())
    return hkdf.derive(secret.encode())


class DecodeCache(Protocol):
    """Where a codec keeps the tokens it decoded (token_cache.TokenCache is authsvc's)."""

    def get(self, token: str, now: float) -> Claims | None: ...

    def put(self, token: str, claims: Claims) -> None: ...


@dataclass(frozen=True, slots=True)
class TokenCodec:
    """Encrypts with the first secret, decrypts with any (key rotation)."""

    secrets: Sequence[str]
    salt: str = ""
    # Decoded tokens by token string; see token_cache.py. None: decrypt every time.
    cache: DecodeCache | None = field(default=None, compare=False)
    # A rule the claims must also meet (e.g. `is_session_shaped`); checked before caching,
    # so a cached token never needs checking again.
    accepts: Callable[[Claims], bool] | None = None

    def encode(self, claims: Mapping[str, Any], max_age: int, now: float | None = None) -> str:
        """Like next-auth `encode`: copy, then set iat/exp/jti (overwriting, keeping order)."""
        issued = int(time.time() if now is None else now)
        payload = dict(claims)
        payload["iat"] = issued
        payload["exp"] = issued + max_age
        payload["jti"] = _uuid4()
        return self._seal(_COMPACT_JSON.encode(payload).encode())

    def _seal(self, plaintext: bytes) -> str:
        """The compact JWE of `plaintext` under the first secret (the token format's part).

        What python-jose's `jwe.encrypt(plaintext, key, "dir", "A256GCM")` writes (a random
        96-bit IV, the header segment as the additional data), with `cryptography`'s AESGCM
        called directly: python-jose's generic path cost a quarter of `GET /session`
        (docs/performance.md). tests/unit/test_tokens.py opens these tokens with python-jose.
        """
        iv = os.urandom(12)
        sealed = _cipher(self.secrets[0], self.salt).encrypt(iv, plaintext, _AAD)
        ciphertext, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
        segments = (HEADER_SEGMENT, "", *map(b64url_encode, (iv, ciphertext, tag)))
        return ".".join(segments)

    def decode(self, token: str, now: float | None = None) -> Claims | None:
        """The claims of a well-formed, authentic, unexpired token; otherwise None."""
        current = time.time() if now is None else now
        if self.cache is not None:
            cached = self.cache.get(token, current)
            if cached is not None:
                return cached
        claims = self._decode(token, current)
        if claims is not None and self.cache is not None:
            self.cache.put(token, claims)
        return claims

    def _decode(self, token: str, now: float) -> Claims | None:
        plaintext = self._open(token)
        if plaintext is None:
            return None
        try:
            claims = json.loads(plaintext.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None
        if not isinstance(claims, dict) or not _times_valid(claims, now):
            return None
        if self.accepts is not None and not self.accepts(claims):
            return None
        return claims

    def _open(self, token: str) -> bytes | None:
        """The plaintext of a well-formed, authentic token (the token format's part)."""
        if not _well_formed(token):
            return None
        return self._decrypt(token)

    def _decrypt(self, token: str) -> bytes | None:
        """AES-256-GCM open of a token `_well_formed` accepted, trying each secret.

        With the header pinned to `dir`/`A256GCM` there is nothing left for a JOSE library
        to negotiate, so this calls `cryptography`'s AESGCM directly: about twice as fast
        as python-jose's generic `jwe.decrypt` (see docs/performance.md), and checked
        against it by tests/unit/test_tokens.py.
        """
        _, _, iv, ciphertext, tag = token.split(".")
        nonce = b64url_decode(iv)
        sealed = b64url_decode(ciphertext) + b64url_decode(tag)
        for secret in self.secrets:
            try:
                return _cipher(secret, self.salt).decrypt(nonce, sealed, _AAD)
            except InvalidTag:
                continue
        return None


_AAD = HEADER_SEGMENT.encode("ascii")
# json.dumps(..., separators=(",", ":"), ensure_ascii=False), built once.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_TAG_BYTES = 16


def _uuid4() -> str:
    """`str(uuid.uuid4())` (next-auth's `jti`, a v4 UUID), in half the time: the `UUID`
    object it builds was 2 % of a signed-in `GET /session`."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@lru_cache(maxsize=64)
def _cipher(secret: str, salt: str) -> AESGCM:
    return AESGCM(derive_key(secret, salt))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _well_formed(token: object) -> bool:
    """Cheap structural checks, before any crypto (R1, R3, R4)."""
    parts = compact_parts(token)
    return (
        parts is not None
        and parts[0] == HEADER_SEGMENT
        and segments_well_formed(*parts[1:], iv_chars=16, tag_chars=22)
    )


def compact_parts(token: object) -> tuple[str, str, str, str] | None:
    """Header, IV, ciphertext and tag of a compact `dir` JWE (empty key segment) within the
    length cap; None for anything else. Checked before any crypto."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        return None
    parts = token.split(".")
    if len(parts) != 5 or parts[1] != "":
        return None
    header, _, iv, ciphertext, tag = parts
    return header, iv, ciphertext, tag


def segments_well_formed(
    iv: str, ciphertext: str, tag: str, *, iv_chars: int, tag_chars: int
) -> bool:
    """The IV and tag have their algorithm's exact lengths; every segment is canonical."""
    if len(iv) != iv_chars or len(tag) != tag_chars or not ciphertext:
        return False
    return all(_canonical_b64url(segment) for segment in (iv, ciphertext, tag))


def _canonical_b64url(segment: str) -> bool:
    if not _B64URL.fullmatch(segment):
        return False
    remainder = len(segment) % 4
    if remainder == 1:
        return False
    if remainder == 2:
        return segment[-1] in _CANONICAL_4
    if remainder == 3:
        return segment[-1] in _CANONICAL_2
    return True


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _times_valid(claims: Claims, now: float | None) -> bool:
    current = int(time.time() if now is None else now)
    exp = claims.get("exp")
    if not _is_number(exp) or exp <= current - CLOCK_TOLERANCE:  # type: ignore[operator]
        return False
    if "nbf" in claims:
        nbf = claims["nbf"]
        if not _is_number(nbf) or nbf > current + CLOCK_TOLERANCE:
            return False
    return "iat" not in claims or _is_number(claims["iat"])


def is_session_shaped(claims: Claims) -> bool:
    """A session token, as opposed to any other JWE under the same key (R6, R7).

    OAuth check cookies carry `{value, provider}`; a session carries a subject. Claims that
    later reach headers and JSON (`role`, `email`, `name`) must have sane types.
    """
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or _CONTROL.search(sub):
        return False
    if "value" in claims and "provider" in claims:
        return False
    role = claims.get("role")
    if role is not None and (not isinstance(role, str) or role not in ROLES):
        return False
    email = claims.get("email")
    if email is not None and (
        not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH or _CONTROL.search(email)
    ):
        return False
    name = claims.get("name")
    return name is None or isinstance(name, str)
