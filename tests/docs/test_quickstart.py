"""The README's quick start, run as written: a new user's first five minutes.

Its `sh` blocks run literally in a copy of this checkout's tracked files (no `.env`, no
database, nothing beside it): `make run` in the background, then the next block in another
shell. Then headless Chromium opens the sign-in URL `make run` printed, signs in with the
email and password the README created, and the session URL shows the user. Only the port
is swapped for a free one (`make run` takes PORT from the environment).

The copy's `.venv` is the one this suite runs in (a symlink): installing the runtime again
would take half a minute and the network, and `tests/e2e/test_dockerfile.py` already installs
`requirements.lock` into a fresh virtualenv. `make run` must find that install current; if
it would reinstall, the test stops rather than let it repoint this suite's `.venv`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from tests.interop.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.processes import ROOT, wait_until_up
from tests.servers import free_port

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
DOC_PORT = "8000"


def quick_start() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Quick start\n")
    return text[start : text.index("\n## ", start + 1)]


def shell_blocks() -> list[str]:
    return [body for language, body in FENCE.findall(quick_start()) if language == "sh"]


def documented_url(path: str) -> str:
    match = re.search(rf"<(http://[^>]+{re.escape(path)})>", quick_start())
    assert match is not None, f"the quick start no longer links {path}"
    return match.group(1)


def bare_environment(**extra: str) -> dict[str, str]:
    """A new user's shell: none of this suite's settings."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("NEXTAUTH_", "AUTHSVC_", "AUTH_"))
        and name not in ("DATABASE_URL", "VIRTUAL_ENV", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's tracked files as they are now (times kept, so make sees the same
    state), in a directory of their own, with this suite's .venv."""
    target = tmp_path_factory.mktemp("clone") / "authsvc"
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(Path(sys.prefix))
    current = subprocess.run(
        ["make", "--question", ".venv/.runtime"], cwd=target, env=bare_environment(), check=False
    )
    if current.returncode != 0:
        pytest.fail("run `make install` first: .venv is older than requirements.lock")
    return target


@pytest.fixture
def make_run(checkout: Path) -> Iterator[tuple[int, Path]]:
    """The quick start's first block, in the background as in a first shell."""
    first = shell_blocks()[0]
    assert first == "make run\n"
    port = free_port()
    log = checkout / "make-run.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["bash", "-c", first],
            cwd=checkout,
            env=bare_environment(PORT=str(port)),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make and the service it starts, stopped together
        )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", process, log, 60)
        yield port, log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_quick_start_has_the_blocks_this_test_runs() -> None:
    assert shell_blocks()[0] == "make run\n"
    assert shell_blocks()[-1] == "make test\n"
    assert len(shell_blocks()) == 3


async def test_the_quick_start_signs_a_new_user_in_from_chromium(
    checkout: Path, make_run: tuple[int, Path]
) -> None:
    port, log = make_run
    swap = {DOC_PORT: str(port)}
    first_run = log.read_text()
    # `make run` wrote .env on its first start and said so in one line.
    assert "wrote .env (mode 0600)" in first_run
    assert (checkout / ".env").stat().st_mode & 0o777 == 0o600
    printed = re.search(r"sign-in page: (\S+)", first_run)
    assert printed is not None, first_run
    sign_in = documented_url("/api/auth/signin").replace(DOC_PORT, swap[DOC_PORT])
    assert printed.group(1) == sign_in

    second = shell_blocks()[1]
    user = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-euo", "pipefail", "-c", second.replace(DOC_PORT, swap[DOC_PORT])],
        cwd=checkout,
        env=bare_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert user.returncode == 0, user.stderr
    assert re.fullmatch(
        r'created user \S+ <ana@example\.com> role ADMIN\n\{\}\{"csrfToken":"[0-9a-f]{64}"\}',
        user.stdout,
    ), user.stdout
    credentials = re.search(r"--email (\S+) --password '([^']+)'", second)
    assert credentials is not None
    email, password = credentials.groups()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        await page.goto(printed.group(1))
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Sign in with email").click()
        await page.wait_for_load_state()
        await page.goto(documented_url("/api/auth/session").replace(DOC_PORT, swap[DOC_PORT]))
        session = json.loads(await page.inner_text("body"))
        await browser.close()

    assert session["user"]["email"] == email
    assert session["user"]["role"] == "ADMIN"
