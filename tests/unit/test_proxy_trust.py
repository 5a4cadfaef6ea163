"""Proxy trust: the client and the original request, heard only from trusted proxies."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from authsvc.proxy_trust import client_address, header_value, original_request

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


def test_an_untrusted_peer_cannot_choose_the_client_address() -> None:
    assert client_address("203.0.113.9", "1.2.3.4", TRUSTED) == "203.0.113.9"


def test_a_trusted_peer_names_the_rightmost_untrusted_hop() -> None:
    chain = "198.51.100.1, 203.0.113.7, 10.1.2.3"
    assert client_address("10.0.0.1", chain, TRUSTED) == "203.0.113.7"


def test_no_trusted_proxies_means_the_peer_is_the_client() -> None:
    assert client_address("10.0.0.1", "1.2.3.4", ()) == "10.0.0.1"


def test_a_trusted_proxy_reports_the_original_method_and_path_without_query() -> None:
    headers = {
        "x-forwarded-method": "DELETE",
        "x-forwarded-uri": "/orders/7?token=secret",
        "x-forwarded-host": "shop.example.com",
        "x-forwarded-for": "203.0.113.7",
    }
    original = original_request(
        method="GET", path="/api/auth/verify", peer="::1", headers=headers, trusted=TRUSTED
    )
    assert (original.method, original.path, original.host, original.client) == (
        "DELETE",
        "/orders/7",
        "shop.example.com",
        "203.0.113.7",
    )


def test_forwarded_headers_from_an_untrusted_peer_are_ignored() -> None:
    headers = {
        "x-forwarded-method": "DELETE",
        "x-forwarded-uri": "/admin",
        "x-forwarded-for": "1.1.1.1",
    }
    original = original_request(
        method="GET", path="/api/auth/verify", peer="192.0.2.1", headers=headers, trusted=TRUSTED
    )
    assert (original.method, original.path, original.host, original.client) == (
        "GET",
        "/api/auth/verify",
        None,
        "192.0.2.1",
    )


@given(st.text())
def test_header_values_never_hold_cr_lf_or_nul(text: str) -> None:
    value = header_value(text)
    assert not any(char in value for char in "\r\n\x00")
