"""A bounded cache of decoded session tokens, keyed by the whole token string.

A sidecar sees the same cookie on request after request; decrypting it once is enough.
The cache holds only what the codec accepted, for no longer than the token's own `exp`
(plus the clock tolerance), evicts the least recently used entry beyond `max_entries`,
and hands out copies so a callback that mutates its token cannot poison the next request.
Checks that can change while a token lives (revocation) run after it, on every request.
"""

from __future__ import annotations

from collections import OrderedDict

from authsvc.tokens import CLOCK_TOLERANCE, Claims


class TokenCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[Claims, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float) -> Claims | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        claims, valid_until = entry
        if now >= valid_until:
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return dict(claims)

    def put(self, token: str, claims: Claims) -> None:
        self._entries[token] = (dict(claims), float(claims["exp"]) + CLOCK_TOLERANCE)
        self._entries.move_to_end(token)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
