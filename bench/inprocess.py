"""Token validation in one process: authsvc's codec against its peers, timeit-style.

Every case checks the same token (the storefront payload, 30-day `exp`) and is first
asserted to return the storefront claims. Each is timed as `timeit` does (garbage
collector off, a loop of `number` calls sized to last at least `min_time`), and the best
of `repeats` loops counts: the least disturbed run of the same work.

- `aes-gcm primitive`: `AESGCM.decrypt` alone on pre-decoded inputs (context: the floor
  of the crypto itself).
- `raw aes-gcm decode`: the minimal correct decode, written here as the peer/floor:
  split, header check, base64url, AES-GCM, JSON, `exp`.
- `python-jose`: bare `jwe.decrypt` + `json.loads` + `exp` check (the baseline).
- `fastapi-nextauth-jwt`: the library's `NextAuthJWTv4` dependency called directly on a
  request whose cookies are already parsed (so only its token work is timed).
- `authsvc first-seen`: `TokenCodec(secrets, accepts=is_session_shaped)` with no cache:
  every strict check, every time.
- `authsvc cached`: the service's codec (`session.session_codec(settings)`: a `TokenCache`
  of the default size) on a token it has seen before, the normal case for a sidecar.
- `next-auth decode (node)`: next-auth's own `decode` in Node (bench/nextauth_decode.js).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jose import jwe

from authsvc.token_cache import TokenCache
from authsvc.tokens import HEADER_SEGMENT, TokenCodec, derive_key, is_session_shaped
from bench.common import BENCH, STOREFRONT

JOSE = "python-jose"
RAW = "raw aes-gcm decode"
PRIMITIVE = "aes-gcm primitive"
FIRST_SEEN = "authsvc first-seen"
CACHED = "authsvc cached"
FNJ = "fastapi-nextauth-jwt"
NODE = "next-auth decode (node)"


@dataclass(frozen=True)
class Timing:
    case: str
    ops_per_second: float
    microseconds: float
    number: int
    repeats: int


def best_of(case: str, call: Callable[[], object], *, min_time: float, repeats: int) -> Timing:
    timer = timeit.Timer(call)
    number = 1
    while True:  # timeit.autorange, with our own minimum loop time
        if timer.timeit(number) >= min_time:
            break
        number *= 2
    best = min(timer.repeat(repeat=repeats, number=number))
    return Timing(case, number / best, best / number * 1e6, number, repeats)


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def jose_decode(token: str, key: bytes) -> dict[str, Any]:
    """The baseline: python-jose's generic JWE decrypt, JSON, `exp`."""
    claims: dict[str, Any] = json.loads(jwe.decrypt(token, key))
    if claims["exp"] <= time.time():
        raise ValueError("expired")
    return claims


_AAD = HEADER_SEGMENT.encode("ascii")


def raw_decode(token: str, cipher: AESGCM) -> dict[str, Any]:
    """The floor: the least a correct next-auth decode can do in Python."""
    header, key, iv, ciphertext, tag = token.split(".")
    if header != HEADER_SEGMENT or key:
        raise ValueError("not a next-auth dir/A256GCM token")
    plaintext = cipher.decrypt(_b64(iv), _b64(ciphertext) + _b64(tag), _AAD)
    claims: dict[str, Any] = json.loads(plaintext)
    if claims["exp"] <= time.time():
        raise ValueError("expired")
    return claims


class _Request:
    """What fastapi-nextauth-jwt reads from a request: parsed cookies and the method."""

    def __init__(self, token: str) -> None:
        self.cookies = {"next-auth.session-token": token}
        self.method = "GET"
        self.headers: dict[str, str] = {}


def _same_claims(claims: object) -> None:
    if not isinstance(claims, dict) or {k: claims.get(k) for k in STOREFRONT} != STOREFRONT:
        raise AssertionError(f"a case decoded something else: {claims!r}")


def cases(secret: str, token: str) -> dict[str, Callable[[], object]]:
    from fastapi_nextauth_jwt import NextAuthJWTv4  # type: ignore[import-untyped]

    key = derive_key(secret)
    cipher = AESGCM(key)
    _, _, iv, ciphertext, tag = token.split(".")
    nonce, sealed = _b64(iv), _b64(ciphertext) + _b64(tag)
    first_seen = TokenCodec([secret], accepts=is_session_shaped)
    cached = TokenCodec([secret], cache=TokenCache(), accepts=is_session_shaped)
    peer = NextAuthJWTv4(secret=secret, secure_cookie=False, csrf_prevention_enabled=False)
    request = _Request(token)
    return {
        PRIMITIVE: lambda: cipher.decrypt(nonce, sealed, _AAD),
        RAW: lambda: raw_decode(token, cipher),
        JOSE: lambda: jose_decode(token, key),
        FNJ: lambda: peer(request),
        FIRST_SEEN: lambda: first_seen.decode(token),
        CACHED: lambda: cached.decode(token),
    }


def node_decode(secret: str, token: str, *, number: int, repeats: int) -> Timing:
    request = json.dumps({"token": token, "secret": secret, "number": number, "repeats": repeats})
    result = subprocess.run(  # noqa: S603 - fixed argv: node and our own script
        ["node", str(BENCH / "nextauth_decode.js")],  # noqa: S607 - node from PATH
        input=request,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    answer = json.loads(result.stdout)
    return Timing(
        NODE,
        float(answer["ops_per_second"]),
        float(answer["best_seconds"]) / number * 1e6,
        number,
        repeats,
    )


def measure(
    secret: str, token: str, *, min_time: float, repeats: int, node_number: int
) -> list[Timing]:
    timings = []
    for case, call in cases(secret, token).items():
        if case != PRIMITIVE:
            _same_claims(call())
        timings.append(best_of(case, call, min_time=min_time, repeats=repeats))
    timings.append(node_decode(secret, token, number=node_number, repeats=repeats))
    return timings
