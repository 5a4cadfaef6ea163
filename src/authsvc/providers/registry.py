"""The OAuth providers a deployment has enabled, built once from the settings."""

from __future__ import annotations

from authsvc.providers import oidc
from authsvc.providers.facebook import facebook
from authsvc.providers.github import github
from authsvc.providers.oauth import OAuthProvider
from authsvc.settings import Settings


def build_providers(settings: Settings) -> dict[str, OAuthProvider]:
    """Enabled providers by id, in next-auth's usual listing order."""
    providers: dict[str, OAuthProvider] = {}

    def secret(value: object) -> str:
        return value.get_secret_value() if hasattr(value, "get_secret_value") else ""

    if settings.google_client_id:
        providers["google"] = oidc.google(
            settings.google_client_id,
            secret(settings.google_client_secret),
            settings.google_issuer,
        )
    if settings.github_client_id:
        providers["github"] = github(
            settings.github_client_id,
            secret(settings.github_client_secret),
            authorization_url=settings.github_authorization_url,
            token_url=settings.github_token_url,
            api_url=settings.github_api_url,
        )
    if settings.facebook_client_id:
        providers["facebook"] = facebook(
            settings.facebook_client_id,
            secret(settings.facebook_client_secret),
            authorization_url=settings.facebook_authorization_url,
            token_url=settings.facebook_token_url,
            graph_url=settings.facebook_graph_url,
        )
    if settings.oidc_client_id and settings.oidc_issuer:
        providers["oidc"] = oidc.generic(
            settings.oidc_client_id,
            secret(settings.oidc_client_secret),
            settings.oidc_issuer,
            settings.oidc_name,
            settings.oidc_scope,
        )
    return providers
