"""The app `authsvc serve --app storefront_auth.app:create_storefront_app` runs.

A function, so each worker builds its own app, with settings from the environment.
"""

from __future__ import annotations

from authsvc.app import AuthService, create_app
from storefront_auth.callbacks import CALLBACKS
from storefront_auth.events import EVENTS


def create_storefront_app() -> AuthService:
    return create_app(callbacks=CALLBACKS, events=EVENTS)
