"""The OAuth providers a deployment has enabled, built once from the settings."""

from __future__ import annotations

from authsvc.providers import oidc
from authsvc.providers.facebook import facebook
from authsvc.providers.github import github
from authsvc.providers.oauth_client import OAuthProvider
from authsvc.settings import Settings


def build_providers(settings: Settings) -> dict[str, OAuthProvider]:
    """Enabled providers by id, in next-auth's usual listing order."""
    providers: dict[str, OAuthProvider] = {}
    if settings.google.client_id:
        providers["google"] = oidc.google(
            settings.google.client_id, settings.google.secret, settings.google.issuer
        )
    if settings.github.client_id:
        providers["github"] = github(
            settings.github.client_id,
            settings.github.secret,
            authorization_url=settings.github.authorization_url,
            token_url=settings.github.token_url,
            api_url=settings.github.api_url,
        )
    if settings.facebook.client_id:
        providers["facebook"] = facebook(
            settings.facebook.client_id,
            settings.facebook.secret,
            authorization_url=settings.facebook.authorization_url,
            token_url=settings.facebook.token_url,
            graph_url=settings.facebook.graph_url,
        )
    if settings.oidc.client_id and settings.oidc.issuer:
        providers["oidc"] = oidc.generic(
            settings.oidc.client_id,
            settings.oidc.secret,
            settings.oidc.issuer,
            settings.oidc.name,
            settings.oidc.scope,
        )
    return providers
