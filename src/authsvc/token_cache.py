"""A bounded cache of decoded session tokens, keyed by a digest of the whole token string.

A sidecar sees the same cookie on request after request; decrypting it once is enough.
The cache holds only what the codec accepted, for no longer than the token's own `exp`
(plus the clock tolerance), evicts the least recently used entry beyond `max_entries`,
and hands out copies so a callback that mutates its token cannot poison the next request.
Checks that can change while a token lives (revocation) run after it, on every request.

Entries are kept small because a full cache is the service's largest steady allocation
(10,000 entries by default, docs/reliability.md's soak): the key is a SHA-256
digest rather than the ~500-byte token (a second preimage is what it would take to be
served someone else's claims), and the claim names are stored once per token shape
rather than once per token. An entry takes about 0.9 KB instead of 2.2 KB (10,000 real
session tokens: 8.6 MiB, was 21.5), for ~1.5 µs more per hit against the ~25 µs of
decryption a hit saves.
"""

from __future__ import annotations

from collections import OrderedDict
from hashlib import sha256
from typing import Any

from authsvc.tokens import CLOCK_TOLERANCE, Claims

# Token shapes (the tuple of claim names) seen so far. Tokens are minted by this service
# or its next-auth peer, so there are a handful; the bound only guards a jwt callback
# that adds a claim per user, whose tokens then keep their own names.
MAX_SHAPES = 64

Entry = tuple[tuple[str, ...], tuple[Any, ...], float]


class TokenCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[bytes, Entry] = OrderedDict()
        self._shapes: dict[tuple[str, ...], tuple[str, ...]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float) -> Claims | None:
        key = _digest(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        names, values, valid_until = entry
        if now >= valid_until:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return dict(zip(names, values))  # noqa: B905 - put() stores them pairwise

    def put(self, token: str, claims: Claims) -> None:
        key = _digest(token)
        names = self._shape(tuple(claims))
        valid_until = float(claims["exp"]) + CLOCK_TOLERANCE
        self._entries[key] = (names, tuple(claims.values()), valid_until)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def _shape(self, names: tuple[str, ...]) -> tuple[str, ...]:
        shared = self._shapes.get(names)
        if shared is not None:
            return shared
        if len(self._shapes) < MAX_SHAPES:
            self._shapes[names] = names
        return names


def _digest(token: str) -> bytes:
    return sha256(token.encode()).digest()
