"""bench/verify_paths.py: every case it times is a working /verify, and
docs/performance.md's section on it is exactly what its committed results file renders."""

from __future__ import annotations

import json
import re

import pytest

from bench.common import new_secret, storefront_token
from bench.verify_paths import CASES, DOCUMENT, build_app, render, time_case
from tests.processes import ROOT

SECTION = re.compile(
    r"<!-- VERIFY-PATHS:BEGIN (?P<source>\S+) -->\n(?P<body>.*?)<!-- VERIFY-PATHS:END -->", re.S
)


@pytest.mark.parametrize("case", [case for case in CASES if case != "before"])
async def test_each_case_times_a_verify_that_answers_200(case: str) -> None:
    secret = new_secret()
    app = build_app(case, secret)
    timing = await time_case(app, storefront_token(secret), min_time=0.001, repeats=1)
    assert timing["microseconds"] > 0
    await app.services.aclose()


def test_the_performance_page_shows_what_its_verify_paths_results_render() -> None:
    match = SECTION.search(DOCUMENT.read_text())
    assert match is not None
    source = match.group("source")
    assert source.startswith("bench/results/verify-paths-")
    results = json.loads((ROOT / source).read_text())
    assert match.group("body") == render(results, source)
