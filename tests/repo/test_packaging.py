"""What the published packages hold: the code and its type information, no local state.

A SQLite database in WAL mode keeps recent writes (users' emails and password hashes) in
`*.db-wal` beside `*.db` until a checkpoint; an sdist built while `make run` was running
once shipped one. The sdist and the wheel are built here with the project's own build
backend (hatchling), from a copy of the checkout that has such files in it.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import ROOT

# What a developer's checkout has that is not the project's: never copied into the build.
LOCAL = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".venv-*",
    "node_modules",
    "dist",
    "build",
    "*_cache",
    ".hypothesis",
    "__pycache__",
)
DATABASE_FILES = ("authsvc.db", "authsvc.db-wal", "authsvc.db-shm", "authsvc.db-journal")


@pytest.fixture(scope="module")
def checkout_while_serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the checkout with a live WAL-mode database (and a rollback journal) in it."""
    checkout = tmp_path_factory.mktemp("checkout") / "authsvc"
    shutil.copytree(ROOT, checkout, ignore=LOCAL)
    for name in DATABASE_FILES:
        (checkout / name).unlink(missing_ok=True)
    database = sqlite3.connect(checkout / "authsvc.db")
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("PRAGMA wal_autocheckpoint=0")
    database.execute("CREATE TABLE users (email TEXT, password_hash TEXT)")
    database.execute("INSERT INTO users VALUES ('ada@example.com', '$argon2id$v=19$...')")
    database.commit()
    (checkout / "authsvc.db-journal").write_bytes(b"rollback journal of another database")
    assert all((checkout / name).exists() for name in DATABASE_FILES)
    yield checkout
    database.close()


def build(checkout: Path, target: str, out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "--target", target, "--directory", str(out)],
        cwd=checkout,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (artifact,) = out.iterdir()
    return artifact


@pytest.fixture(scope="module")
def sdist_names(checkout_while_serving: Path, tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    artifact = build(checkout_while_serving, "sdist", tmp_path_factory.mktemp("sdist"))
    with tarfile.open(artifact) as archive:
        return {Path(name).name for name in archive.getnames()}


@pytest.fixture(scope="module")
def wheel_names(checkout_while_serving: Path, tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    artifact = build(checkout_while_serving, "wheel", tmp_path_factory.mktemp("wheel"))
    with zipfile.ZipFile(artifact) as archive:
        return set(archive.namelist())


def test_the_sdist_holds_the_source(sdist_names: set[str]) -> None:
    assert {"pyproject.toml", "app.py", "cli.py"} <= sdist_names


def test_an_sdist_built_while_the_service_runs_holds_no_database_file(
    sdist_names: set[str],
) -> None:
    assert sorted(set(DATABASE_FILES) & sdist_names) == []


def test_the_wheel_says_the_package_is_typed(wheel_names: set[str]) -> None:
    assert "authsvc/py.typed" in wheel_names


def test_the_wheel_holds_no_database_file(wheel_names: set[str]) -> None:
    assert [name for name in wheel_names if Path(name).name in DATABASE_FILES] == []


def test_git_ignores_every_sqlite_side_file() -> None:
    ignored = set((ROOT / ".gitignore").read_text().splitlines())
    assert {"*.db", "*.db-wal", "*.db-shm", "*.db-journal"} <= ignored


def test_the_docker_build_context_leaves_out_every_sqlite_side_file() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().splitlines())
    assert {"**/*.db", "**/*.db-wal", "**/*.db-shm", "**/*.db-journal"} <= ignored
