"""FastAPI dependencies: how routes reach the shared parts, and where applications plug in.

Override any of them with `app.dependency_overrides[...]`, for example to supply your own
jwt callback::

    app.dependency_overrides[get_jwt_callback] = lambda: my_jwt_callback

They are `async def` although they never await: FastAPI runs a plain `def` dependency in
its thread pool, a thread hop per dependency per request (measured: a third of
/api/auth/verify's time), while an `async def` one is a plain call.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from authsvc.callbacks import JwtCallback, SessionCallback, SignInCallback, allow_sign_in
from authsvc.providers.oauth import OAuthProvider
from authsvc.redirects import RedirectCallback, default_redirect
from authsvc.revocation import RevocationCheck
from authsvc.settings import Settings
from authsvc.throttle import SignInThrottle
from authsvc.tokens import TokenCodec
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import CheckStore, UserRepository


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_codec(request: Request) -> TokenCodec:
    codec: TokenCodec = request.app.state.codec
    return codec


async def get_user_repository(request: Request) -> UserRepository:
    users: UserRepository = request.app.state.users
    return users


async def get_password_hasher(request: Request) -> PasswordHasher:
    hasher: PasswordHasher = request.app.state.hasher
    return hasher


async def get_jwt_callback(request: Request) -> JwtCallback:
    callback: JwtCallback = request.app.state.jwt_callback
    return callback


async def get_session_callback(request: Request) -> SessionCallback:
    callback: SessionCallback = request.app.state.session_callback
    return callback


async def get_providers(request: Request) -> dict[str, OAuthProvider]:
    providers: dict[str, OAuthProvider] = request.app.state.providers
    return providers


async def get_check_store(request: Request) -> CheckStore:
    store: CheckStore = request.app.state.check_store
    return store


async def get_revocation(request: Request) -> RevocationCheck | None:
    check: RevocationCheck | None = request.app.state.revocation
    return check


async def get_throttle(request: Request) -> SignInThrottle:
    throttle: SignInThrottle = request.app.state.throttle
    return throttle


async def get_sign_in_callback() -> SignInCallback:
    return allow_sign_in


async def get_redirect_callback() -> RedirectCallback:
    return default_redirect


SettingsDep = Annotated[Settings, Depends(get_settings)]
CodecDep = Annotated[TokenCodec, Depends(get_codec)]
UsersDep = Annotated[UserRepository, Depends(get_user_repository)]
HasherDep = Annotated[PasswordHasher, Depends(get_password_hasher)]
JwtCallbackDep = Annotated[JwtCallback, Depends(get_jwt_callback)]
SessionCallbackDep = Annotated[SessionCallback, Depends(get_session_callback)]
ProvidersDep = Annotated[dict[str, OAuthProvider], Depends(get_providers)]
CheckStoreDep = Annotated[CheckStore, Depends(get_check_store)]
RevocationDep = Annotated[RevocationCheck | None, Depends(get_revocation)]
ThrottleDep = Annotated[SignInThrottle, Depends(get_throttle)]
SignInCallbackDep = Annotated[SignInCallback, Depends(get_sign_in_callback)]
RedirectDep = Annotated[RedirectCallback, Depends(get_redirect_callback)]
