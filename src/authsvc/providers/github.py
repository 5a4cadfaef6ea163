"""GitHub: OAuth 2 with the REST API for the profile.

Only a **verified** address from `/user/emails` is used (the primary one when verified,
else the first verified one), never the unverified public profile email.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from authsvc.outbound import ProviderError, get_json
from authsvc.providers.oauth_client import Endpoints, PlainOAuthProvider, Profile, first_string


@dataclass(slots=True, kw_only=True)
class GitHubProvider(PlainOAuthProvider):
    api_url: str

    async def profile(
        self,
        http: httpx.AsyncClient,
        endpoints: Endpoints,
        tokens: Mapping[str, Any],
        *,
        nonce: str | None,
    ) -> Profile:
        headers = {
            "Authorization": f"Bearer {tokens['access_token']}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        api = self.api_url.rstrip("/")
        user = await get_json(http, f"{api}/user", headers=headers)
        if not isinstance(user, dict) or not isinstance(user.get("id"), int | str):
            raise ProviderError("GitHub user has no id")
        emails = await get_json(http, f"{api}/user/emails", headers=headers)
        email = verified_email(emails)
        return Profile(
            id=str(user["id"]),
            name=first_string(user.get("name")) or first_string(user.get("login")),
            email=email,
            email_verified=email is not None,
            image=first_string(user.get("avatar_url")),
            raw=user,
        )


def verified_email(emails: object) -> str | None:
    if not isinstance(emails, list):
        return None
    verified = [
        entry
        for entry in emails
        if isinstance(entry, dict)
        and entry.get("verified") is True
        and isinstance(entry.get("email"), str)
    ]
    primary = [entry for entry in verified if entry.get("primary") is True]
    chosen = primary or verified
    return str(chosen[0]["email"]) if chosen else None


def github(
    client_id: str,
    client_secret: str,
    *,
    authorization_url: str,
    token_url: str,
    api_url: str,
) -> GitHubProvider:
    return GitHubProvider(
        id="github",
        name="GitHub",
        client_id=client_id,
        client_secret=client_secret,
        scope="read:user user:email",
        checks=frozenset({"state", "pkce"}),
        authorization_endpoint=authorization_url,
        token_endpoint=token_url,
        api_url=api_url,
    )
