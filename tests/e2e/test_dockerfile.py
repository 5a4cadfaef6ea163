"""The Dockerfile: lint-clean (hadolint), multi-stage, non-root, health-checked, migrate then
serve. No Docker engine runs here, so its install step, its command and its health check
run outside Docker, on this checkout, with only the port changed.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest

from authsvc import __version__
from tests.processes import ROOT, authsvc_environment, stop, wait_until_up
from tests.servers import free_port

DOCKERFILE = ROOT / "Dockerfile"
# The documented pattern for running your own callbacks in the image.
USER_DOCKERFILE = ROOT / "examples" / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")
IMAGE_PORT = "8000"


def instructions(stage: int | None = None, dockerfile: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined; one stage if asked."""
    pairs = parse(dockerfile.read_text())
    stages: list[list[tuple[str, str]]] = [[]]  # ARGs before the first FROM
    for pair in pairs:
        if pair[0] == "FROM":
            stages.append([])
        stages[-1].append(pair)
    return pairs if stage is None else stages[1:][stage]


def only(stage: list[tuple[str, str]], name: str) -> str:
    [value] = [args for instruction, args in stage if instruction == name]
    return value


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, USER_DOCKERFILE], ids=["image", "user-code"])
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "style", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "")


def test_the_image_is_built_in_one_stage_and_run_from_another() -> None:
    stages = [args for instruction, args in instructions() if instruction == "FROM"]
    assert len(stages) == 2
    assert "COPY --from=build /opt/authsvc /opt/authsvc" in [
        f"COPY {args}" for instruction, args in instructions(-1) if instruction == "COPY"
    ]


def test_the_final_stage_runs_as_an_unprivileged_user() -> None:
    user = only(instructions(-1), "USER").split(":")[0]
    assert user not in ("root", "0")


def test_the_final_stage_has_a_health_check_on_healthz() -> None:
    assert "/healthz" in only(instructions(-1), "HEALTHCHECK")


def test_the_command_migrates_before_serving_on_all_interfaces() -> None:
    command = json.loads(only(instructions(-1), "CMD"))
    assert command[:2] == ["sh", "-c"]
    assert command[2] == "authsvc migrate && exec authsvc serve --host 0.0.0.0 --port 8000"


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".git", ".venv", ".env", "*.db", "tests"} <= set(ignored)


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build stage's RUN step, in a fresh virtualenv instead of /opt/authsvc."""
    target = tmp_path_factory.mktemp("image") / "venv"
    make_venv, *installs = only(instructions(0), "RUN").split(" && ")
    assert make_venv == "python -m venv /opt/authsvc"
    venv.create(target, with_pip=True)
    # The same pip commands (the locked dependencies, then the wheel built from this
    # checkout), minus --no-cache-dir so repeated runs reuse downloads.
    for install in installs:
        command = install.replace("/opt/authsvc", str(target)).replace(" --no-cache-dir", "")
        subprocess.run(
            [*shlex.split(command), "--quiet", "--disable-pip-version-check"],
            cwd=ROOT,
            check=True,
            timeout=600,
        )
    return target


def test_the_image_installs_only_the_locked_dependencies_with_their_hashes() -> None:
    installs = only(instructions(0), "RUN").split(" && ")[1:]
    assert installs == [
        "/opt/authsvc/bin/pip install --no-cache-dir --require-hashes -r requirements.lock",
        "/opt/authsvc/bin/pip install --no-cache-dir --no-deps .",
    ]


def test_the_image_holds_the_runtime_dependencies_and_no_development_tools(
    image_venv: Path,
) -> None:
    listed = subprocess.run(
        [str(image_venv / "bin" / "pip"), "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert {"authsvc", "fastapi", "uvicorn", "sqlalchemy"} <= installed
    assert not installed & {"pytest", "mypy", "ruff", "playwright", "matplotlib", "uv"}


def test_the_installed_package_migrates_serves_and_passes_its_health_check(
    image_venv: Path, tmp_path: Path
) -> None:
    port = str(free_port())
    command = json.loads(only(instructions(-1), "CMD"))[2].replace(IMAGE_PORT, port)
    health = json.loads(only(instructions(-1), "HEALTHCHECK").split("CMD", 1)[1])
    health_script = health[2].replace(IMAGE_PORT, port)
    env = authsvc_environment(
        url="https://shop.example.com",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'image.db'}",
        PATH=f"{image_venv / 'bin'}:/usr/bin:/bin",
    )
    log = tmp_path / "container.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["sh", "-c", command], cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", process, log, 60)
        check = subprocess.run(
            [str(image_venv / "bin" / "python"), "-c", health_script], check=False, timeout=10
        )
        assert check.returncode == 0
        assert "database is up to date" in log.read_text()
    finally:
        stop(process)


# --- your own code in the image: examples/Dockerfile ----------------------------------------

ANA = ["--email", "ana@example.com", "--password", "correct-horse"]


def user_image() -> list[tuple[str, str]]:
    return instructions(-1, USER_DOCKERFILE)


def test_the_user_code_image_is_built_on_this_version_of_the_authsvc_image() -> None:
    [(_, arg)] = instructions(dockerfile=USER_DOCKERFILE)[:1]
    assert arg == f"AUTHSVC_IMAGE=authsvc:{__version__}"
    assert only(user_image(), "FROM") == "${AUTHSVC_IMAGE}"


def test_the_user_code_image_runs_as_the_images_unprivileged_user() -> None:
    users = [args for instruction, args in user_image() if instruction == "USER"]
    assert users[-1] == only(instructions(-1), "USER")


def test_the_user_code_image_keeps_the_images_command() -> None:
    assert {"CMD", "ENTRYPOINT"}.isdisjoint(name for name, _ in user_image())


def test_the_user_code_image_installs_the_package_and_serves_its_app(
    image_venv: Path, tmp_path: Path
) -> None:
    source, target = only(user_image(), "COPY").split()
    assert only(user_image(), "RUN") == f"pip install --no-cache-dir {target} && rm -rf {target}"
    subprocess.run(
        [
            str(image_venv / "bin" / "pip"),
            "install",
            "--quiet",
            str(USER_DOCKERFILE.parent / source),
        ],
        check=True,
        timeout=600,
    )
    name, app = only(user_image(), "ENV").split("=", 1)
    port = str(free_port())
    command = json.loads(only(instructions(-1), "CMD"))[2].replace(IMAGE_PORT, port)
    env = authsvc_environment(
        url="http://localhost:3000",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'image.db'}",
        PATH=f"{image_venv / 'bin'}:/usr/bin:/bin",
        **{name: app},
    )
    log = tmp_path / "container.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["sh", "-c", command], cwd=tmp_path, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base}/healthz", process, log, 60)
        subprocess.run(
            [str(image_venv / "bin" / "authsvc"), "create-user", "--role", "STAFF", *ANA],
            env=env,
            check=True,
            timeout=60,
        )
        with httpx.Client(base_url=base) as client:
            csrf = client.get("/api/auth/csrf").json()["csrfToken"]
            form = {"csrfToken": csrf, "email": "ana@example.com", "password": "correct-horse"}
            signed_in = client.post("/api/auth/callback/credentials", data=form)
    finally:
        stop(process)
    # The storefront's signIn rule: staff use the company's single sign-on, never a password.
    assert "error=AccessDenied" in signed_in.headers["location"]


def test_the_deployment_page_shows_the_user_code_image_as_it_is() -> None:
    page = (ROOT / "docs" / "deployment.md").read_text()
    [block] = re.findall(r"```dockerfile\n(.*?)```", page, re.DOTALL)
    assert instructions(dockerfile=USER_DOCKERFILE) == parse(block)


def parse(text: str) -> list[tuple[str, str]]:
    text = text.replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), " ".join(line.split()[1:]))
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
