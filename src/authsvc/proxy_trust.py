"""Proxy trust: what a request's proxies say, believed only from configured trusted peers.

The sign-in throttle, the metrics and forward auth all need the real client address, and
forward auth the original method, path and host (`X-Forwarded-*`). A peer outside
AUTHSVC_TRUSTED_PROXIES could claim any of them, so only a trusted peer is heard, and
whatever it says is cleaned of control characters before it reaches a header or a log.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def header_value(text: str) -> str:
    """`text` without control characters (no CR, LF or NUL can split a header)."""
    if text.isprintable():  # the usual case, and much cheaper than the substitution
        return text.strip()
    return _CONTROL.sub("", text).strip()


@dataclass(frozen=True, slots=True)
class OriginalRequest:
    method: str
    path: str  # without the query string, which may hold anything
    host: str | None
    client: str | None


def is_trusted(address: str | None, trusted: Sequence[Network]) -> bool:
    if not address or not trusted:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]
) -> str | None:
    """The client: the peer, or from a trusted peer the rightmost untrusted X-Forwarded-For hop."""
    if not forwarded_for or not is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, trusted):
            return header_value(hop)[:64] or peer
    return hops[0] if hops else peer


def original_request(
    *,
    method: str,
    path: str,
    peer: str | None,
    headers: Mapping[str, str],
    trusted: Sequence[Network],
) -> OriginalRequest:
    """Method, path and client of the request the proxy is asking about."""
    client = client_address(peer, headers.get("x-forwarded-for"), trusted)
    if not is_trusted(peer, trusted):
        return OriginalRequest(method=method, path=path, host=None, client=client)
    uri = headers.get("x-forwarded-uri") or headers.get("x-original-uri") or path
    return OriginalRequest(
        method=header_value(headers.get("x-forwarded-method") or method)[:16],
        path=header_value(uri.split("?", 1)[0])[:512],
        host=header_value(headers.get("x-forwarded-host") or "")[:255] or None,
        client=client,
    )
