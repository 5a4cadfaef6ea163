"""The benchmark command runs end to end (its --smoke mode: one second per run)."""

from __future__ import annotations

import subprocess
import sys

from tests.processes import ROOT, require_binary


def test_the_benchmark_prints_both_endpoints_and_their_ratio() -> None:
    require_binary("wrk")
    result = subprocess.run(
        [sys.executable, "-m", "bench.verify", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    rows = [line.split() for line in result.stdout.splitlines()]
    measured = {
        (row[0], row[1]) for row in rows if row and row[0] in ("/healthz", "/api/auth/verify")
    }
    assert measured == {
        ("/healthz", "1"),
        ("/healthz", "64"),
        ("/api/auth/verify", "1"),
        ("/api/auth/verify", "64"),
    }
    assert all(row[-1] == "0" for row in rows if row and row[0].startswith("/"))  # no non-2xx
    assert "ratio verify/healthz at concurrency 64:" in result.stdout
