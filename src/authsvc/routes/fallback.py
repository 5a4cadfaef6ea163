"""Anything under /api/auth that no other route took: next-auth's 400 text answer.

Its own router, included last, so that it never shadows a real route.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from authsvc.routes.responses import unsupported

router = APIRouter()


@router.api_route("/{action:path}", methods=["GET", "POST"], include_in_schema=False)
async def unsupported_action(request: Request) -> Response:
    return unsupported(request.method)
