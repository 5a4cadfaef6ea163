"""`create_app`: the one place where the parts are wired together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from authsvc import __version__
from authsvc.callbacks import DefaultJwtCallback, DefaultSessionCallback
from authsvc.db import Database
from authsvc.routes import auth
from authsvc.routes.context import BadRequestError
from authsvc.settings import Settings, load_settings
from authsvc.tokens import TokenCodec
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import SqlAlchemyUserRepository, UserRepository

log = logging.getLogger("authsvc")


def create_app(
    settings: Settings | None = None,
    *,
    users: UserRepository | None = None,
    hasher: PasswordHasher | None = None,
) -> FastAPI:
    """Build the service. Settings come from the environment unless given."""
    settings = (settings or load_settings()).check()
    database = Database(settings.database_url, timeout=settings.database_timeout)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await database.dispose()

    app = FastAPI(
        title="authsvc",
        version=__version__,
        summary="NextAuth.js v4-compatible sessions as a stand-alone service.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.codec = TokenCodec(settings.all_secrets)
    app.state.users = users or SqlAlchemyUserRepository(database.sessions)
    app.state.hasher = hasher or PasswordHasher()
    app.state.jwt_callback = DefaultJwtCallback(app.state.users, timeout=settings.database_timeout)
    app.state.session_callback = DefaultSessionCallback()
    app.include_router(auth.router, prefix=settings.public_url.base_path)
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Client mistakes are clear 4xx; anything else is a bare 500 with no details."""

    @app.exception_handler(BadRequestError)
    async def bad_request(_: Request, exc: BadRequestError) -> Response:
        return JSONResponse({"message": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"message": "invalid request"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return JSONResponse(
            {"message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return JSONResponse({"message": "internal error"}, status_code=500)
