"""docs/performance.md's results are what the committed results file it names renders to.

bench/publish.py renders the page's results section from one run's raw results
(bench/results/*.json, written by `python -m bench`). These tests hold the page to that
file, the file to what a reader needs to re-check it (commit, versions, machine load), and
the renderer to its data: a target, decoder or HTTP run added to the results appears on the
page with no change to the renderer. tests/bench/test_run.py runs the command end to end.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from bench.publish import DOCUMENT, SectionMissing, read_section, render, replace_section
from tests.processes import ROOT

MEASURED = {"python", "uvicorn", "fastapi", "python-jose", "fastapi-nextauth-jwt", "node"}


def published() -> tuple[str, str]:
    return read_section(DOCUMENT.read_text())


def published_results() -> tuple[str, dict[str, Any]]:
    source, _ = published()
    results: dict[str, Any] = json.loads((ROOT / source).read_text())
    return source, results


def test_the_page_names_a_results_file_and_chart_committed_under_bench_results() -> None:
    source, _ = published()
    assert source.startswith("bench/results/") and source.endswith(".json")
    assert (ROOT / source).is_file()
    assert (ROOT / source).with_suffix(".png").read_bytes().startswith(b"\x89PNG")


def test_the_results_section_is_exactly_what_its_results_file_renders() -> None:
    source, body = published()
    _, results = published_results()
    assert body == render(results, source)


def test_the_results_file_records_the_commit_the_versions_and_the_machine_load() -> None:
    _, results = published_results()
    machine, config = results["machine"], results["config"]
    assert re.fullmatch(r"[0-9a-f]{7,40}", machine["commit"])
    assert re.fullmatch(r"[0-9a-f]{7,40}", machine["src_tree"])
    assert set(machine["versions"]) >= MEASURED
    for load in (config["background_cores_at_start"], config["background_cores_during_run"]):
        assert isinstance(load, float) and load >= 0
    assert all("background_cpu_share" in run for run in results["http"]["runs"])
    assert all("background_cores" in phase for phase in results["storm"]["rounds"])


def with_a_new_peer(results: dict[str, Any]) -> dict[str, Any]:
    """The results as a suite with one more decoder, HTTP run, target and version has them."""
    grown = copy.deepcopy(results)
    grown["inprocess"].append({**grown["inprocess"][0], "case": "auth.js decode (node)"})
    grown["http"]["runs"].append({**grown["http"]["runs"][0], "name": "peer next-auth c=64"})
    grown["targets"].append({**grown["targets"][0], "id": "7", "name": "verify / next-auth"})
    grown["machine"]["versions"]["@auth/core"] = "0.41.3"
    return grown


def test_a_new_decoder_http_run_target_and_version_appear_without_changing_the_renderer() -> None:
    source, results = published_results()
    page = render(with_a_new_peer(results), source)
    assert "| auth.js decode (node) |" in page
    assert "| peer next-auth c=64 |" in page
    assert "| 7 | verify / next-auth |" in page
    assert "@auth/core 0.41.3" in page


@pytest.mark.parametrize("smoke", [True, False])
def test_a_smoke_run_is_marked_as_one(smoke: bool) -> None:
    source, results = published_results()
    results["config"]["smoke"] = smoke
    page = render(results, source)
    assert ("its numbers mean nothing" in page) is smoke
    assert ("`python -m bench --smoke`" in page) is smoke


def test_a_measurement_disturbed_by_other_work_is_named() -> None:
    source, results = published_results()
    for run in results["http"]["runs"]:
        run["background_cpu_share"] = 0.0
    for phase in results["storm"]["rounds"]:
        phase["background_cores"] = 0.0
    assert "Disturbed" not in render(results, source)
    disturbed = results["http"]["runs"][1]
    disturbed["background_cpu_share"] = 0.5
    page = render(results, source)
    assert (
        f"**Disturbed:** other processes used over 0.20 of a core during `{disturbed['name']}`;"
        in (page)
    )


def test_replacing_the_section_leaves_the_rest_of_the_page_as_it_was() -> None:
    page = "# Title\n\n<!-- RESULTS:BEGIN a.json -->\nold\n<!-- RESULTS:END -->\n\n## Next\n"
    assert replace_section(page, "b.json", "new\n") == (
        "# Title\n\n<!-- RESULTS:BEGIN b.json -->\nnew\n<!-- RESULTS:END -->\n\n## Next\n"
    )


def test_a_page_without_a_results_section_is_refused() -> None:
    with pytest.raises(SectionMissing):
        replace_section("# Title\n", "a.json", "new\n")
