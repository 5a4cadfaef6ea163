"""Auth.js v5 (`@auth/core` 0.41.3) token codec: JWE `dir` + `A256CBC-HS512` with a `kid`.

What differs from next-auth v4 (tokens.py), as `@auth/core/jwt` does it:

- the key is HKDF-SHA256(secret, salt = the session cookie's name, info = `Auth.js Generated
  Encryption Key (<salt>)`), 64 bytes for A256CBC-HS512 (MAC key first, AES key last) and
  32 bytes (the first half) for A256GCM;
- the header is `{"alg":"dir","enc":"A256CBC-HS512","kid":"<thumbprint>"}`, the kid being
  the RFC 7638 thumbprint of the key as an `oct` JWK (SHA-512 for 64 bytes, SHA-256 for 32);
- several secrets: the first encrypts; a token with a `kid` is opened with the secret whose
  thumbprint matches, one without a `kid` with the first secret only;
- decoding accepts `enc` A256CBC-HS512 or A256GCM, `alg` `dir` only.

Everything after the plaintext (JSON, `exp` required, clock tolerance, the session shape,
the cache) is TokenCodec's. Decoding is as strict as v4: the header must be one of the exact
shapes `@auth/core` (or jose without a kid) writes, for a configured secret, checked with
the other structural checks before any crypto, and the tag is compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authsvc.tokens import TokenCodec, b64url_decode, compact_parts, segments_well_formed

Encryption = Literal["A256CBC-HS512", "A256GCM"]
CBC: Encryption = "A256CBC-HS512"
GCM: Encryption = "A256GCM"
KEY_LENGTH: dict[Encryption, int] = {CBC: 64, GCM: 32}
# Segment lengths in base64url characters: IV 16 bytes / tag 32 bytes for CBC-HS512,
# IV 12 bytes / tag 16 bytes for GCM.
_SHAPE: dict[Encryption, tuple[int, int]] = {CBC: (22, 43), GCM: (16, 22)}
_BLOCK = 16


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def derive_key(secret: str, salt: str, enc: Encryption = CBC) -> bytes:
    """`@auth/core`'s `getDerivedEncryptionKey`: 64 bytes for CBC-HS512, 32 for GCM."""
    return _derive_key(secret, salt, enc)


@lru_cache(maxsize=64)
def _derive_key(secret: str, salt: str, enc: Encryption) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_LENGTH[enc],
        salt=salt.encode(),
        info=f"Auth.js Generated Encryption Key ({salt})".encode(),
    )
    return hkdf.derive(secret.encode())


def thumbprint(key: bytes) -> str:
    """RFC 7638 thumbprint of `{"k":…,"kty":"oct"}`: SHA-512 for a 64-byte key, else SHA-256."""
    jwk = json.dumps({"k": b64url(key), "kty": "oct"}, separators=(",", ":"))
    digest = hashlib.sha512 if len(key) == KEY_LENGTH[CBC] else hashlib.sha256
    return b64url(digest(jwk.encode()).digest())


def header_segment(enc: Encryption, kid: str | None) -> str:
    """The base64url protected header, keys in the order `@auth/core` writes them."""
    header = {"alg": "dir", "enc": enc, **({"kid": kid} if kid is not None else {})}
    return b64url(json.dumps(header, separators=(",", ":")).encode())


@dataclass(frozen=True, slots=True)
class _Opener:
    enc: Encryption
    key: bytes


@lru_cache(maxsize=64)
def _openers(secrets: tuple[str, ...], salt: str) -> dict[str, _Opener]:
    """Every header this configuration accepts, with the key that opens it.

    Looking the header up is the kid-matching rule: a `kid` names the secret whose
    thumbprint it is (the first such secret, as `@auth/core` tries them in order); a token
    without one is opened with the first secret only. Anything else is not a token of ours.
    """
    openers: dict[str, _Opener] = {}
    for index, secret in enumerate(secrets):
        for enc in (CBC, GCM):
            key = derive_key(secret, salt, enc)
            openers.setdefault(header_segment(enc, thumbprint(key)), _Opener(enc, key))
            if index == 0:
                openers[header_segment(enc, None)] = _Opener(enc, key)
    return openers


def _cbc_tag(mac_key: bytes, aad: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """RFC 7518 §5.2.2.1: HMAC-SHA-512 over AAD ‖ IV ‖ ciphertext ‖ AL, first 32 bytes."""
    mac = crypto_hmac.HMAC(mac_key, hashes.SHA512())
    mac.update(aad + iv + ciphertext + (len(aad) * 8).to_bytes(8, "big"))
    return mac.finalize()[:32]


def seal_cbc_hs512(key: bytes, header: str, plaintext: bytes, iv: bytes) -> str:
    """The compact JWE of `plaintext` with A256CBC-HS512 (RFC 7518 §5.2.2.1)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key[32:]), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    tag = _cbc_tag(key[:32], header.encode("ascii"), iv, ciphertext)
    return f"{header}..{b64url(iv)}.{b64url(ciphertext)}.{b64url(tag)}"


def _open_cbc_hs512(key: bytes, aad: bytes, iv: bytes, ciphertext: bytes, tag: bytes) -> bytes:
    """RFC 7518 §5.2.2.2: check the tag (constant time), then decrypt and unpad."""
    if len(ciphertext) % _BLOCK or not hmac.compare_digest(
        _cbc_tag(key[:32], aad, iv, ciphertext), tag
    ):
        raise InvalidTag
    decryptor = Cipher(algorithms.AES(key[32:]), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:  # authentic but badly padded: made with our key, not by a JWE library
        raise InvalidTag from None


@dataclass(frozen=True, slots=True)
class AuthjsTokenCodec(TokenCodec):
    """`@auth/core/jwt` `encode`/`decode`; `salt` is the session cookie's name.

    Claims handling (iat/exp/jti, JSON, expiry, the `accepts` rule, the cache) is the
    inherited TokenCodec's; only sealing and opening differ.
    """

    def _seal(self, plaintext: bytes) -> str:
        key = derive_key(self.secrets[0], self.salt, CBC)
        return seal_cbc_hs512(key, header_segment(CBC, thumbprint(key)), plaintext, os.urandom(16))

    def _open(self, token: str) -> bytes | None:
        parts = compact_parts(token)
        if parts is None:
            return None
        header, iv, ciphertext, tag = parts
        opener = _openers(_as_tuple(self.secrets), self.salt).get(header)
        if opener is None:
            return None
        iv_chars, tag_chars = _SHAPE[opener.enc]
        if not segments_well_formed(iv, ciphertext, tag, iv_chars=iv_chars, tag_chars=tag_chars):
            return None
        aad = header.encode("ascii")
        nonce, sealed, mac = b64url_decode(iv), b64url_decode(ciphertext), b64url_decode(tag)
        try:
            if opener.enc == GCM:
                return AESGCM(opener.key).decrypt(nonce, sealed + mac, aad)
            return _open_cbc_hs512(opener.key, aad, nonce, sealed, mac)
        except InvalidTag:
            return None


def _as_tuple(secrets: Sequence[str]) -> tuple[str, ...]:
    return secrets if isinstance(secrets, tuple) else tuple(secrets)
