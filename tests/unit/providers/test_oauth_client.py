"""The shared OAuth client plumbing (providers/oauth_client.py)."""

from __future__ import annotations

import base64

import httpx

from authsvc.providers.oauth_client import _SharedClient


def test_basic_client_authentication_form_encodes_id_and_secret() -> None:
    # RFC 6749 §2.3.1, as openid-client (next-auth) does it.
    http = httpx.AsyncClient()
    client = _SharedClient(http, "app:1", "p@ss w+rd%", "https://a.example", "https://t.example")
    request, auth = client.build_request(
        http, "POST", "https://t.example", auth_method="client_secret_basic", data={}
    )
    assert auth is not None
    flow = auth.sync_auth_flow(request)
    header = next(flow).headers["authorization"]
    assert base64.b64decode(header.split()[1]).decode() == "app%3A1:p%40ss+w%2Brd%25"
