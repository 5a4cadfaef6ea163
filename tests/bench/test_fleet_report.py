"""docs/reliability.md's figures are what the committed long-form run renders to
(bench/fleet_report.py), so the page cannot drift from the run it reports."""

from __future__ import annotations

import json

from bench.fleet_report import DOCUMENT, read_section, render
from tests.processes import ROOT


def test_the_reliability_page_names_a_committed_fleet_run() -> None:
    source, _ = read_section(DOCUMENT.read_text())
    assert source.startswith("bench/results/") and (ROOT / source).is_file()


def test_the_reliability_pages_figures_are_the_committed_runs() -> None:
    source, body = read_section(DOCUMENT.read_text())
    assert body == render(json.loads((ROOT / source).read_text()))


def test_the_committed_run_is_a_long_form_run_with_a_ten_minute_soak() -> None:
    source, _ = read_section(DOCUMENT.read_text())
    results = json.loads((ROOT / source).read_text())
    assert results["soak"]["seconds"] >= 600
    assert set(results["verdicts"]) >= {
        "cross_replica",
        "throttle",
        "revocation",
        "kill_replica",
        "rotation",
        "postgres_restart",
        "redis_outage",
        "soak",
    }
