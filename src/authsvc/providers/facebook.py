"""Facebook: OAuth 2 with the Graph API `me` endpoint (id, name, email, picture).

Facebook only returns an address its user has confirmed, so a present email counts as
verified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from authsvc.outbound import ProviderError, get_json
from authsvc.providers.oauth_client import Endpoints, PlainOAuthProvider, Profile, first_string


@dataclass(slots=True, kw_only=True)
class FacebookProvider(PlainOAuthProvider):
    graph_url: str

    async def profile(
        self,
        http: httpx.AsyncClient,
        endpoints: Endpoints,
        tokens: Mapping[str, Any],
        *,
        nonce: str | None,
    ) -> Profile:
        me = await get_json(
            http,
            f"{self.graph_url.rstrip('/')}/me?fields=id,name,email,picture",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        if not isinstance(me, dict) or not isinstance(me.get("id"), str):
            raise ProviderError("Facebook profile has no id")
        picture = me.get("picture")
        data = picture.get("data") if isinstance(picture, dict) else None
        image = first_string(data.get("url")) if isinstance(data, dict) else None
        email = first_string(me.get("email"))
        return Profile(
            id=me["id"],
            name=first_string(me.get("name")),
            email=email,
            email_verified=email is not None,
            image=image,
            raw=me,
        )


def facebook(
    client_id: str,
    client_secret: str,
    *,
    authorization_url: str,
    token_url: str,
    graph_url: str,
) -> FacebookProvider:
    return FacebookProvider(
        id="facebook",
        name="Facebook",
        client_id=client_id,
        client_secret=client_secret,
        scope="email",
        checks=frozenset({"state"}),
        token_auth_method="client_secret_post",  # noqa: S106 - a method name, not a secret
        authorization_endpoint=authorization_url,
        token_endpoint=token_url,
        graph_url=graph_url,
    )
