"""The serving stack's own floor: a bare ASGI app that answers every request with a constant.

    python -m uvicorn bench.bare_app:app --loop uvloop --http httptools --lifespan off

Served by bench/frontend.py on a plain uvicorn (the version `authsvc serve` runs, with its
options, but none of authsvc's: no head-size limit, no metrics), pinned like the others.
Its answer is `/healthz`'s, byte for byte, so the two compare the stack and nothing else.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from authsvc.routes.health import HEALTHZ_BODY, HEALTHZ_HEADERS

_START = {"type": "http.response.start", "status": 200, "headers": HEALTHZ_HEADERS}
_BODY = {"type": "http.response.body", "body": HEALTHZ_BODY}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    await send(_START)
    await send(_BODY)
