"""The peer over HTTP: a plain FastAPI app that checks the session with fastapi-nextauth-jwt.

Served by bench/servers.py with uvicorn and the options `authsvc serve` uses (uvloop,
httptools, one worker, no access log, no proxy headers). Two routes:

- `GET /constant`: a constant JSON answer, FastAPI's own per-request cost (context);
- `GET /session`: the library's documented use, `Depends(NextAuthJWTv4(...))`, answering
  with the identity it decoded, as a backend behind a Next.js storefront would.

The secret comes from `BENCH_PEER_SECRET`.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi_nextauth_jwt import NextAuthJWTv4  # type: ignore[import-untyped]

session_token = NextAuthJWTv4(
    secret=os.environ["BENCH_PEER_SECRET"], secure_cookie=False, csrf_prevention_enabled=False
)
Claims = Annotated[dict[str, Any], Depends(session_token)]

app = FastAPI(title="fastapi-nextauth-jwt peer")


@app.get("/constant")
async def constant() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/session")
async def session(claims: Claims) -> dict[str, Any]:
    return {"id": claims.get("id"), "email": claims.get("email"), "role": claims.get("role")}
