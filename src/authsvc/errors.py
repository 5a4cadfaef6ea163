"""Error responses: clear 4xx for client mistakes, a bare 500 for everything else.

The last-resort handler is plain ASGI middleware rather than an exception handler,
because Starlette re-raises after its own handler and the server would then log a
traceback, whose messages may hold request data. Here the exception stops: it is logged
by type and route only.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authsvc.routes.context import BadRequestError

log = logging.getLogger("authsvc")


class CatchAllMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            response = unhandled_response(exc, scope["method"], scope["path"])
            if not started:
                await response(scope, receive, send)


def unhandled_response(exc: Exception, method: str, path: str) -> Response:
    """The bare 500 for an exception nothing handled, logged by type and route only."""
    log.error("unhandled %s on %s %s", type(exc).__name__, method, path)
    return JSONResponse({"message": "internal error"}, status_code=500)


def bad_request_response(exc: BadRequestError) -> Response:
    return JSONResponse({"message": exc.message}, status_code=exc.status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BadRequestError)
    async def bad_request(_: Request, exc: BadRequestError) -> Response:
        return bad_request_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"message": "invalid request"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return JSONResponse(
            {"message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    app.add_middleware(CatchAllMiddleware)
