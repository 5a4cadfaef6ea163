"""docs/performance.md's results section, generated from one run's raw results.

    .venv/bin/python -m bench.publish bench/results/bench-20261130T120000.json

`python -m bench` calls this after a full run (after a smoke run only with `--publish`).
The section names the results file it was rendered from, and tests/bench/test_publish.py
checks that it is exactly what that file renders to, so every figure in it can be traced to
a committed run and re-checked. Everything is rendered from the data: a new target, decoder
or HTTP run in the results shows up here without a change to this module.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from bench.common import ROOT
from bench.report import DISTURBED_CORES, SYMBOL, disturbed_runs, format_number

DOCUMENT = ROOT / "docs" / "performance.md"
BEGIN = "<!-- RESULTS:BEGIN {source} -->"
END = "<!-- RESULTS:END -->"
_SECTION = re.compile(
    r"<!-- RESULTS:BEGIN (?P<source>\S+) -->\n(?P<body>.*?)<!-- RESULTS:END -->", re.S
)
# The in-process decoder the others are compared with (the baseline of targets 2a and 2b).
BASELINE = "python-jose"
TIMES = "\N{MULTIPLICATION SIGN}"


class SectionMissing(ValueError):
    """The document has no generated results section to replace."""


def source_name(path: Path) -> str:
    """How the document names a results file: relative to the repository when inside it."""
    resolved = path.resolve()
    return resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else str(path)


def read_section(document: str) -> tuple[str, str]:
    """The results file a document names, and its generated section's text."""
    match = _SECTION.search(document)
    if match is None:
        raise SectionMissing("no `<!-- RESULTS:BEGIN <results file> -->` … `END` section")
    return match.group("source"), match.group("body")


def replace_section(document: str, source: str, body: str) -> str:
    match = _SECTION.search(document)
    if match is None:
        raise SectionMissing("no `<!-- RESULTS:BEGIN <results file> -->` … `END` section")
    block = f"{BEGIN.format(source=source)}\n{body}{END}"
    return document[: match.start()] + block + document[match.end() :]


def publish(results_path: Path, document_path: Path = DOCUMENT) -> None:
    """Rewrite the document's results section from this results file."""
    source = source_name(results_path)
    body = render(json.loads(results_path.read_text()), source)
    document_path.write_text(replace_section(document_path.read_text(), source, body))


def _measured(value: float, unit: str) -> str:
    return f"{format_number(value)}{TIMES if unit == 'x' else f' {unit}' if unit else ''}"


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _table(header: list[str], align: str, rows: list[list[object]]) -> list[str]:
    """A Markdown table; `align` has one letter per column, `l` or `r`."""
    rule = ["---:" if a == "r" else "---" for a in align]
    return [_row(*header), _row(*rule), *(_row(*row) for row in rows)]


def _heading(results: dict[str, Any], source: str) -> list[str]:
    config, info = results["config"], results["machine"]
    smoke = config["smoke"]
    command = f"python -m bench{' --smoke' if smoke else ''}"
    dirty = info["src_uncommitted_files"]
    lines = []
    if smoke:
        lines += [
            "> **A smoke run: it checks that the suite works, its numbers mean nothing.** Its",
            "> runs last about a second each; the figures below are not to be compared with",
            "> anything. A full run on a quiet machine replaces this section.",
            "",
        ]
    lines += [
        f"From `{command}` on {info['date']} at commit `{info['commit']}`"
        + (f" (`src/` tree `{info['src_tree']}`)" if "src_tree" in info else "")
        + (f", with {dirty} uncommitted files in `src/`" if dirty else "")
        + f", {config['total_seconds']:.0f} s. Raw results: [`{source}`](../{source}); chart: "
        f"[`{Path(source).with_suffix('.png').as_posix()}`]"
        f"(../{Path(source).with_suffix('.png').as_posix()}).",
        "",
        f"**Machine load.** Other work on the machine used "
        f"{config['background_cores_at_start']:.2f} of its {info['nproc']} cores when the run "
        f"started ("
        + (
            f"after waiting up to {config['quiet_wait']:.0f} s for a quiet machine"
            if config["quiet_wait"]
            else "it did not wait for a quiet machine"
        )
        + f") and {config['background_cores_during_run']:.2f} on average during the run.",
    ]
    disturbed = disturbed_runs(results)
    if disturbed:
        lines[-1] += (
            f" **Disturbed:** other processes used over {DISTURBED_CORES:.2f} of a core during "
            + ", ".join(f"`{name}`" for name in disturbed)
            + "; those numbers are not to be relied on."
        )
    return lines


def _machine(results: dict[str, Any]) -> list[str]:
    info = results["machine"]
    versions = info.get("versions") or {
        name: info[name] for name in ("python", "uvicorn", "fastapi", "starlette") if name in info
    }
    return [
        f"**Machine**: {info['nproc']} cores of `{info['cpu']}`, {info['memory_gib']} GiB, "
        f"Linux {info['kernel']}. **Versions**: "
        + ", ".join(f"{name} {version}" for name, version in versions.items())
        + "."
    ]


def _targets(results: dict[str, Any]) -> list[str]:
    judged = results["targets"]
    passed = sum(t["passed"] for t in judged)
    missed = [t["id"] for t in judged if not t["passed"]]
    summary = f"**{passed} of {len(judged)} targets met**"
    if missed:
        summary += f" (not met: {', '.join(missed)})"
    rows: list[list[object]] = [
        [
            t["id"],
            t["name"],
            _measured(t["measured"], t["unit"]),
            f"{SYMBOL[t['op']]} {_measured(t['bound'], t['unit'])}",
            "**PASS**" if t["passed"] else "**FAIL**",
            t["detail"],
        ]
        for t in judged
    ]
    table = _table(["#", "Target", "Measured", "Bound", "Result", "Detail"], "llrrll", rows)
    return [summary + ".", "", *table]


def _inprocess(results: dict[str, Any]) -> list[str]:
    config = results["config"]
    timings = results["inprocess"]
    baseline = next((t for t in timings if t["case"] == BASELINE), None)
    header = ["Decoder", "decodes/s", "µs each"]
    if baseline:
        header.append(f"vs {BASELINE}")
    rows: list[list[object]] = []
    for t in timings:
        row: list[object] = [t["case"], f"{t['ops_per_second']:,.0f}", f"{t['microseconds']:.2f}"]
        if baseline:
            row.append(f"{t['ops_per_second'] / baseline['ops_per_second']:.2f}{TIMES}")
        rows.append(row)
    return [
        f"**Token validation in one process** (the same {results['token_length']}-character "
        f"token, best of {config['repeats']} loops of ≥ {config['min_time']:g} s):",
        "",
        *_table(header, "lrrr"[: len(header)], rows),
    ]


def _cache(results: dict[str, Any]) -> list[str]:
    cache = results["cache_memory"]
    rows: list[list[object]] = [
        [
            f"{s['inserted']:,}",
            f"{s['entries']:,}",
            f"{s['traced_mib']:.2f} MiB",
            f"{s['rss_growth_mib']:.2f} MiB",
        ]
        for s in cache["samples"]
    ]
    return [
        f"**Token cache** (bound {cache['bound']:,}; {cache['tokens']:,} distinct tokens "
        f"inserted in {cache['seconds']:.1f} s, {cache['bytes_per_entry']:.0f} bytes an entry):",
        "",
        *_table(
            ["Tokens inserted", "Entries", "Python heap (tracemalloc)", "RSS growth"], "rrrr", rows
        ),
        "",
        f"An unbounded cache would have held "
        f"{cache['bytes_per_entry'] * cache['tokens'] / 2**20:,.0f} MiB by then.",
    ]


def _http(results: dict[str, Any]) -> list[str]:
    config = results["config"]
    rows: list[list[object]] = []
    for run in results["http"]["runs"]:
        seconds = run["seconds"]
        per_cpu = run["requests"] / run["server_cpu_seconds"] if run["server_cpu_seconds"] else 0
        rows.append(
            [
                run["name"],
                f"{run['requests_per_second']:,.0f}",
                f"{run['p50_ms']:.2f}",
                f"{run['p99_ms']:.2f}",
                run["non_2xx"] + run["socket_errors"],
                f"{run['server_cpu_seconds'] / seconds:.2f}",
                f"{run['wrk_cpu_seconds'] / seconds:.2f}",
                f"{per_cpu:,.0f}",
                f"{run['background_cpu_share']:.2f}",
            ]
        )
    header = ["Run", "req/s", "p50 ms", "p99 ms", "errors", "server CPU", "wrk CPU"]
    header += ["req per server CPU-s", "other CPU"]
    return [
        f"**HTTP on loopback** (wrk, {config['rounds']} round(s) of {config['seconds']:g} s, "
        "the best round; CPU in cores; *other CPU*: what other processes used meanwhile):",
        "",
        *_table(header, "lrrrrrrrr", rows),
    ]


def _storm(results: dict[str, Any]) -> list[str]:
    storm = results["storm"]
    rows: list[list[object]] = [
        [
            phase["phase"],
            f"{phase['p50_ms']:.2f}",
            f"{phase['p90_ms']:.2f}",
            f"{phase['p99_ms']:.2f}",
            f"{phase['max_ms']:.2f}",
            f"{phase['signins_per_second']:.1f}" if "signins_per_second" in phase else "—",
            f"{phase['background_cores']:.2f}",
        ]
        for phase in storm["rounds"]
    ]
    header = ["Phase", "p50 ms", "p90 ms", "p99 ms", "max ms", "sign-ins/s", "other CPU"]
    return [
        f"**Storm** (verify at a fixed {storm['rate']:,.0f} requests/s over "
        f"{storm['connections']} connections, open loop; {storm['clients']} sign-in clients):",
        "",
        *_table(header, "lrrrrrr", rows),
    ]


def _frontend(results: dict[str, Any]) -> list[str]:
    front = results.get("frontend")
    if front is None:
        return []
    config, pinning = results["config"], front["pinning"]
    median = {(m["server"], m["route"]): m for m in front["medians"]}
    peers = [
        name for name in ("next-auth core", "next-auth in Next.js") if name in front["servers"]
    ]
    rows: list[list[object]] = []
    for m in front["medians"]:
        row: list[object] = [
            m["server"],
            m["route"],
            f"{m['requests_per_second']:,.0f}",
            f"{m['p50_ms']:.2f}",
            f"{m['p99_ms']:.2f}",
            f"{1e3 * m['cpu_ms_per_request']:.1f}",
        ]
        for peer in peers:
            theirs = median.get((peer, m["route"]))
            row.append(
                f"{m['cpu_ms_per_request'] / theirs['cpu_ms_per_request']:.2f}{TIMES}"
                if theirs and m["server"] == "authsvc"
                else ""
            )
        row.append(f"{m['background_cpu_share']:.2f}")
        rows.append(row)
    header = ["Server", "Route", "req/s", "p50 ms", "p99 ms", "CPU µs / request"]
    header += [f"vs {peer}" for peer in peers] + ["other CPU"]
    constant_rows: list[list[object]] = [
        [
            c["server"],
            f"{c['rate']:,.0f}",
            f"{c['p50_ms']:.2f}",
            f"{c['p90_ms']:.2f}",
            f"{c['p99_ms']:.2f}",
            f"{c['max_ms']:.2f}",
            f"{c['background_cores']:.2f}",
        ]
        for c in front["constant_rate"]
    ]
    check = front["check"]
    return [
        f"**The frontend's path** (bench/frontend.py; wrk -t1 -c{front['concurrency']} on CPU "
        f"{pinning['client_cpu']}, each server alone on CPU {pinning['server_cpu']}; medians of "
        f"{config['rounds']} round(s) of {config['seconds']:g} s; the browser's cookies as "
        f"next-auth set them; *other CPU*: the most other processes used in a round). Before "
        f"timing, {', '.join(check['servers'])} answered the same session "
        f"(`{json.dumps(check['session'], separators=(',', ':'))}` plus `expires`), the same "
        "providers and CSRF token, and re-issued the session cookie:",
        "",
        *_table(header, "llrrrr" + "r" * len(peers) + "r", rows),
        "",
        f"**`/session` at a constant rate** ({front['constant_rate'][0]['share_of_capacity']:.0%}"
        " of each server's measured capacity, open loop, bench/loadgen.py pinned like wrk):",
        "",
        *_table(
            ["Server", "req/s offered", "p50 ms", "p90 ms", "p99 ms", "max ms", "other CPU"],
            "lrrrrrr",
            constant_rows,
        ),
    ]


def _memory(results: dict[str, Any]) -> list[str]:
    memory, cold, sql = results["memory"], results["cold_start"], results["sql"]
    workers = " and ".join(f"{m:.1f}" for m in memory["two_worker_rss_mib"])
    return [
        f"**Memory and start-up**: worker RSS {memory['worker_rss_mib']:.1f} MiB after "
        f"warm-up, {memory['worker_rss_after_storm_mib']:.1f} MiB after the storm; each of two "
        f"workers {workers} MiB. Cold start "
        + ", ".join(f"{s:.2f}" for s in cold["seconds"])
        + f" s (first start, creating the schema: {cold['first_start_seconds']:.2f} s). SQL: "
        f"{sql['statements']} statements in {sql['requests']} requests with a role; "
        f"{sql['control_without_role_statements_per_request']:.0f} per request without one."
    ]


def render(results: dict[str, Any], source: str) -> str:
    """The results section (between its markers) for one run's results."""
    parts = [
        _heading(results, source),
        _targets(results),
        _machine(results),
        _inprocess(results),
        _cache(results),
        _http(results),
        _storm(results),
        _frontend(results),
        _memory(results),
    ]
    notice = [
        "<!-- Generated by `python -m bench.publish` from the results file named above: "
        "change bench/publish.py, not this text. -->"
    ]
    return "\n\n".join("\n".join(part) for part in [notice, *parts] if part) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.publish", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("results", type=Path, help="a results JSON written by `python -m bench`")
    parser.add_argument("--document", type=Path, default=DOCUMENT, help="the page to update")
    args = parser.parse_args(argv)
    publish(args.results, args.document)
    print(f"{args.document}: results section rendered from {source_name(args.results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
