"""The benchmark command runs end to end in its --smoke mode, reports every target and
publishes its results into (a copy of) docs/performance.md.

Structure, not speed: the smoke mode's runs are far too short for numbers that mean
anything, so nothing here looks at whether a target passed. It does check that every
target of issue 5 is judged in the printed table and in the JSON, that the peers were
all measured, that no HTTP run saw an error, and that the chart was written.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.publish import DOCUMENT, read_section, render, replace_section
from bench.report import FRONTEND_ROUTES, NEXTJS_TARGET_IDS, TARGET_IDS
from tests.processes import ROOT, require_binary
from tests.servers import NODE_DIR

PEERS = {
    "python-jose",
    "raw aes-gcm decode",
    "aes-gcm primitive",
    "fastapi-nextauth-jwt",
    "authsvc first-seen",
    "authsvc cached",
    "next-auth decode (node)",
}
HTTP_RUNS = {
    "healthz c=1",
    "verify c=1",
    "healthz c=64",
    "verify c=64",
    "peer constant c=64",
    "peer fastapi-nextauth-jwt c=64",
    "verify c=64, 2 workers",
    "verify c=64, revocation + role freshness",
}
# The smoke mode skips next-auth inside Next.js (its build takes minutes), and its targets.
SMOKE_TARGET_IDS = [t for t in TARGET_IDS if t not in NEXTJS_TARGET_IDS]
FRONTEND_SERVERS = ["authsvc", "next-auth core", "bare uvicorn"]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of docs/performance.md for the smoke run to publish into."""
    copy = tmp_path_factory.mktemp("docs") / "performance.md"
    copy.write_text(DOCUMENT.read_text())
    return copy


@pytest.fixture(scope="module")
def smoke(
    tmp_path_factory: pytest.TempPathFactory, page: Path
) -> tuple[str, dict[str, object], Path]:
    require_binary("wrk")
    require_binary("node")
    if not (NODE_DIR / "node_modules" / "next-auth").is_dir():
        pytest.fail("tests/node/node_modules is missing: run `make install`")
    results = tmp_path_factory.mktemp("bench")
    result = subprocess.run(
        [
            *(sys.executable, "-m", "bench", "--smoke", "--results-dir", str(results)),
            *("--publish", "--document", str(page)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [document] = results.glob("bench-smoke-*.json")
    return result.stdout, json.loads(document.read_text()), document.with_suffix(".png")


def test_the_table_judges_every_target(smoke: tuple[str, dict[str, object], Path]) -> None:
    stdout, _, _ = smoke
    judged = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^(\S+)\s.*\s(PASS|FAIL)\s", stdout, re.MULTILINE)
    }
    assert set(judged) == set(SMOKE_TARGET_IDS)
    assert re.search(rf"^\d+ of {len(SMOKE_TARGET_IDS)} targets met$", stdout, re.MULTILINE)


def test_the_json_has_every_target_and_peer(smoke: tuple[str, dict[str, object], Path]) -> None:
    _, document, _ = smoke
    targets = document["targets"]
    assert isinstance(targets, list)
    assert [t["id"] for t in targets] == SMOKE_TARGET_IDS
    for target in targets:
        assert isinstance(target["measured"], float | int), target
        assert math.isfinite(target["measured"]), target
        assert isinstance(target["passed"], bool)
    inprocess = document["inprocess"]
    assert isinstance(inprocess, list)
    assert {t["case"] for t in inprocess} == PEERS
    assert all(t["ops_per_second"] > 0 for t in inprocess)
    http = document["http"]
    assert isinstance(http, dict)
    assert {run["name"] for run in http["runs"]} == HTTP_RUNS
    assert all(run["requests"] > 0 for run in http["runs"])
    # The opt-in modes' run may record non-2xx answers (a finding it reports); no other may.
    assert all(run["non_2xx"] == 0 for run in http["runs"] if "revocation" not in run["name"])
    storm = document["storm"]
    assert isinstance(storm, dict)
    assert {phase["phase"] for phase in storm["rounds"]} == {"idle", "storm"}
    assert all(phase["non_200"] == 0 for phase in storm["rounds"])
    assert all(p["signins"]["attempts"] > 0 for p in storm["rounds"] if p["phase"] == "storm")


def test_the_frontend_path_is_measured_on_every_server_after_they_answered_alike(
    smoke: tuple[str, dict[str, object], Path],
) -> None:
    _, document, _ = smoke
    front = document["frontend"]
    assert isinstance(front, dict)
    assert front["servers"] == FRONTEND_SERVERS
    assert front["check"]["servers"] == ["authsvc", "next-auth core"]
    assert front["check"]["session"]["user"]["id"] == "ckv1user0000000000000001"
    measured = {(m["server"], m["route"]) for m in front["medians"]}
    assert measured == {
        *((server, route) for server in FRONTEND_SERVERS[:2] for route in FRONTEND_ROUTES),
        ("authsvc", "healthz"),
        ("authsvc", "verify"),
        ("bare uvicorn", "constant"),
    }
    assert all(run["requests"] > 0 and run["non_2xx"] == 0 for run in front["runs"])
    assert all(m["cpu_ms_per_request"] > 0 for m in front["medians"])
    constant = {c["server"]: c for c in front["constant_rate"]}
    assert set(constant) == {"authsvc", "next-auth core"}
    assert all(c["statuses"] == {"200": c["requests"]} for c in constant.values())


def test_the_chart_is_a_png(smoke: tuple[str, dict[str, object], Path]) -> None:
    _, _, chart = smoke
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_run_publishes_its_results_into_the_page_and_nothing_else(
    smoke: tuple[str, dict[str, object], Path], page: Path
) -> None:
    _, results, chart = smoke
    source, body = read_section(page.read_text())
    assert source == str(chart.with_suffix(".json"))
    assert body == render(results, source)
    assert page.read_text() == replace_section(DOCUMENT.read_text(), source, body)
