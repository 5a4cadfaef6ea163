"""docs/migrating-from-next-auth.md, run as written.

Its `dotenv` block is the environment (placeholders `<…>` filled in with this test's
storefront), and its `sh` blocks run in order in one bash script, on a database built by
the storefront's Prisma migrations with a user `bcryptjs` hashed, and a session cookie the
real next-auth minted. Only authsvc's port is swapped for a free one. The Prisma schema must
come out exactly as it went in.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SECRET
from tests.node_oracle import Oracle, oracle_process
from tests.prisma import insert_storefront_user, schema_snapshot, storefront_database
from tests.processes import ROOT, authsvc_environment
from tests.servers import free_port

DOC = ROOT / "docs" / "migrating-from-next-auth.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
DOC_PORT = "8000"
EMAIL = "Ada.Lovelace@Example.com"


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(DOC.read_text()) if lang == language]


@pytest.fixture(scope="module")
def next_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oracle]:
    with oracle_process("oracle.js", "next-auth", tmp_path_factory.mktemp("nextauth")) as p:
        yield Oracle(p, "next-auth")


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oracle]:
    with oracle_process("storefront.cjs", "bcryptjs", tmp_path_factory.mktemp("store")) as p:
        yield Oracle(p, "storefront")


def environment(dsn: str, cookie: str) -> dict[str, str]:
    """The doc's first `dotenv` block, its placeholders filled in for this storefront."""
    ours = {
        "NEXTAUTH_SECRET": SECRET,
        "NEXTAUTH_URL": "http://localhost:3000",
        "DATABASE_URL": dsn + "?schema=public",
    }
    documented: dict[str, str] = {}
    for line in blocks("dotenv")[0].splitlines():
        name, _, value = line.partition("=")
        documented[name] = ours[name] if value.startswith("<") else value
    assert set(ours) <= set(documented), "the doc no longer sets every variable it needs"
    env = authsvc_environment(url=ours["NEXTAUTH_URL"], database_url=documented["DATABASE_URL"])
    env.update(documented)
    env.update(
        SESSION_COOKIE=cookie,
        STOREFRONT_DB=dsn,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def script(port: int) -> str:
    commands = "\n".join(blocks("sh"))
    assert DOC_PORT in commands
    return (
        "set -euo pipefail\n"
        "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + commands.replace(DOC_PORT, str(port))
    )


@pytest.mark.node
async def test_the_switch_runs_as_documented_and_leaves_prismas_schema_as_it_was(
    next_auth: Oracle, storefront: Oracle, tmp_path: Path
) -> None:
    async with storefront_database(migrated=False) as dsn:
        before = await schema_snapshot(dsn)
        password = storefront.call("hash", password="correct horse", cost=10)
        user_id = await insert_storefront_user(dsn, EMAIL, password=password, role="ADMIN")
        # A session the running storefront issued with next-auth (its jwt callback's claims).
        claims = {"name": "Ada", "email": EMAIL, "sub": user_id, "id": user_id, "role": "ADMIN"}
        cookie = next_auth.call("encode", token=claims, secret=SECRET, maxAge=3600, salt="")

        result = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-c", script(free_port())],
            env=environment(dsn, cookie),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        after = await schema_snapshot(dsn)

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "database is up to date" in out
    # The doctor's sample output in the doc is what it prints.
    [sample] = [block for block in blocks("text") if "doctor" in block or "lower(" in block]
    for line in sample.splitlines():
        assert line in out.splitlines(), line
    assert "0 problems, 1 warning" in out
    assert f'"email":"{EMAIL}"' in out and '"role":"ADMIN"' in out and user_id in out
    assert (
        "dry run: users.csv: 1 user read, 1 would be created, 0 already present; "
        "nothing written" in out
    )
    assert "imported users.csv: 1 user read, 1 created, 0 already present" in out
    assert after == before
