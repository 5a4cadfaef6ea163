"""A storm of credentials sign-ins, for the "hashing never blocks the event loop" target.

    python -m bench.storm --url U --email E --password P --clients 8 --seconds 12

Each client is a browser: it fetches a CSRF token once (its own cookie jar keeps the
csrf cookie), then posts `/api/auth/callback/credentials` as next-auth/react does (form
body, `json=true`) in a loop until the time is up. Every fourth attempt of each client
uses a wrong password. One JSON object on stdout: attempts, successes, rejections and
anything unexpected.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import httpx

SIGNIN = "/api/auth/callback/credentials"


async def _client(
    number: int, url: str, email: str, password: str, end: float, wrong_every: int
) -> dict[str, int]:
    counts = {"attempts": 0, "succeeded": 0, "rejected": 0, "unexpected": 0}
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        csrf = (await http.get("/api/auth/csrf")).json()["csrfToken"]
        while time.perf_counter() < end:
            wrong = (counts["attempts"] + number) % wrong_every == 0
            form = {
                "csrfToken": csrf,
                "email": email,
                "password": password + "-wrong" if wrong else password,
                "json": "true",
            }
            answer = await http.post(SIGNIN, data=form)
            counts["attempts"] += 1
            if answer.status_code == (401 if wrong else 200):
                counts["rejected" if wrong else "succeeded"] += 1
            else:
                counts["unexpected"] += 1
    return counts


async def storm(
    url: str, email: str, password: str, clients: int, seconds: float, wrong_every: int
) -> dict[str, Any]:
    started = time.perf_counter()
    end = started + seconds
    results = await asyncio.gather(
        *(_client(n, url, email, password, end, wrong_every) for n in range(clients))
    )
    elapsed = time.perf_counter() - started
    total = {key: sum(r[key] for r in results) for key in results[0]}
    return {
        "clients": clients,
        "seconds": elapsed,
        **total,
        "attempts_per_second": total["attempts"] / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--wrong-every", type=int, default=4)
    args = parser.parse_args()
    result = asyncio.run(
        storm(args.url, args.email, args.password, args.clients, args.seconds, args.wrong_every)
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
