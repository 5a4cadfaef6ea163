"""docs/reliability.md's figures, rendered from one run of the fleet's long form.

    python -m bench.fleet --json bench/results/fleet.json   # the run (~15 minutes)
    python -m bench.fleet_report                            # its figures into the page

The page's figures sit between `<!-- FLEET:BEGIN <results file> -->` and
`<!-- FLEET:END -->`; tests/bench/test_fleet_report.py holds them to the committed file.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from bench.common import ROOT

DOCUMENT = ROOT / "docs" / "reliability.md"
SECTION = re.compile(r"<!-- FLEET:BEGIN (?P<source>\S+) -->\n(?P<body>.*?)<!-- FLEET:END -->", re.S)


def read_section(document: str) -> tuple[str, str]:
    found = SECTION.search(document)
    if found is None:
        raise ValueError("no `<!-- FLEET:BEGIN <results file> -->` … `<!-- FLEET:END -->`")
    return found["source"], found["body"]


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}"  # NaN: nothing of that kind


def _load_row(name: str, load: dict[str, Any], note: str) -> str:
    signins = load["outcomes"].get("signin", {})
    signin_text = ", ".join(f"{v} {k}" for k, v in sorted(signins.items())) or "-"
    return (
        f"| {name} | {load['seconds']} | {load['requests']:,} | {load['get_errors']} | "
        f"{load['denied']} | {load['signed_out']} | {_ms(load['get_p50_ms'])} | "
        f"{_ms(load['get_p99_ms'])} | {_ms(load['get_max_ms'])} | {signin_text} | {note} |"
    )


def render(results: dict[str, Any]) -> str:
    """The figures as Markdown: the run, the claims, the faults under load, the soak."""
    lines: list[str] = []
    before = ", ".join(f"{v:.1f}" for v in results["load_average_before"])
    after = ", ".join(f"{v:.1f}" for v in results["load_average_after"])
    lines += [
        f"Run of {results['started']} on {results['cpus']} cores, shared with other work: "
        f"load average {before} before (1, 5, 15 min), {after} after. "
        f"Capacity (closed loop, 16 clients, polls through nginx, client included): "
        f"{results['capacity']['rate']:,.0f} polls/s; the load ran at half that, "
        f"{results['load_rate']:,.0f}/s.",
        "",
        "| claim | held |",
        "| --- | --- |",
    ]
    verdicts = results["verdicts"].items()
    lines += [f"| {name} | {'yes' if ok else '**no**'} |" for name, ok in verdicts]
    cross = results["cross_replica"]["accepted"]
    throttle = results["throttle"]
    revocation = results["revocation"]
    lines += [
        "",
        "Without load:",
        "",
        f"- sessions across replicas: {sum(cross.values())} of {len(cross)} "
        "(minting replica → reading replica, `/verify` and `/session`) accepted;",
        f"- throttle: {throttle['limit']} wrong passwords through nginx, answered "
        f"{throttle['statuses']}, spread {sorted(throttle['served_by'].values())} over the "
        f"replicas; the next attempt on each replica: {throttle['after_limit']};",
        f"- revocation (cache TTL {revocation['ttl']:.0f} s): `authsvc revoke-sessions` took "
        f"{revocation['command_seconds']} s, then each replica refused the session after "
        f"{revocation['refused_after_seconds']} s.",
        "",
        "Under load (GET: `/csrf`, `/session`, `/verify`; latencies in ms; *denied*: a request "
        "refused with the cookie kept, *signed out*: the cookie cleared):",
        "",
        "| window | s | requests | GET errors | denied | signed out | GET p50 | GET p99 "
        "| GET max | sign-ins | recovery |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines.append(_load_row("capacity (closed loop)", results["capacity"]["load"], ""))
    kill = results["kill_replica"]
    lines.append(
        _load_row(
            f"kill -9 of {kill['victim']}",
            kill["load"],
            f"down {kill['down_seconds']} s; traffic again {kill['rejoined_after_seconds']} s "
            f"after restart; sign-ins in flight: {kill['burst_signins']}; users "
            f"{kill['users_before']} → {kill['users_after']}",
        )
    )
    rotation = results["rotation"]
    lines.append(
        _load_row(
            "rolling rotation, two passes",
            rotation["load"],
            f"cookies under the new secret: {rotation['cookies_under_new_secret']} of "
            f"{rotation['cookies']}; traffic again after each restart: "
            f"{rotation['rejoined_after_seconds']} s",
        )
    )
    if "rotation_in_one_pass" in results:
        lines.append(
            _load_row(
                "rolling rotation, one pass (wrong)",
                results["rotation_in_one_pass"]["load"],
                f"{results['rotation_in_one_pass']['people']} people polling",
            )
        )
    postgres = results["postgres_restart"]
    readiness = "; ".join(
        f"{name} red {seen['red_after_stop_seconds']} s after the stop, green "
        f"{seen['green_after_start_seconds']} s after the start"
        for name, seen in postgres["readiness"].items()
    )
    lines.append(
        _load_row(
            "PostgreSQL restart",
            postgres["load"],
            f"down {postgres['down_seconds']} s; {readiness}; replicas restarted: "
            f"{postgres['replicas_restarted'] or 'none'}",
        )
    )
    lines.append(_load_row("… of which the outage", postgres["outage"], ""))
    redis = results["redis_outage"]
    lines.append(
        _load_row(
            "Redis stopped, then back",
            redis["load"],
            f"sign-ins while stopped: {redis['signins_during']}, after: "
            f"{redis['signins_after']}; fallback logged by {len(redis['fallback_logged_by'])} "
            f"replicas; {redis['redis_keys_after']} throttle keys in Redis after",
        )
    )
    soak = results["soak"]
    lines.append(_load_row(f"soak, {soak['seconds']:.0f} s", soak["load"], ""))
    lines += [
        "",
        "Soak, per replica (RSS: the least seen over a second or more, so an Argon2 hash, "
        "64 MiB for a moment, does not count as growth):",
        "",
        "| replica | RSS first MiB | RSS halfway MiB | RSS last MiB | RSS max MiB | growth "
        "| growth, second half | open fds min-max |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    samples = soak["samples"]
    halfway = next(s for s in samples if s["at"] >= soak["seconds"] / 2)
    for name in soak["rss_first_mib"]:
        least, most = soak["fds_min_max"][name]
        middle, last = halfway["rss_mib"][name], soak["rss_last_mib"][name]
        lines.append(
            f"| {name} | {soak['rss_first_mib'][name]} | {middle} | {last} | "
            f"{soak['rss_max_mib'][name]} | {soak['rss_growth_percent'][name]} % | "
            f"{100 * (last / middle - 1):.1f} % | {least}-{most} |"
        )
    least, most = soak["db_connections_min_max"]
    lines += ["", f"Database connections during the soak: {least} to {most}.", ""]
    return "\n".join(lines)


def publish(source: Path, document: Path = DOCUMENT) -> None:
    results = json.loads(source.read_text())
    text = document.read_text()
    name = source.resolve().relative_to(ROOT).as_posix()
    block = f"<!-- FLEET:BEGIN {name} -->\n{render(results)}<!-- FLEET:END -->"
    if SECTION.search(text) is None:
        raise ValueError(f"{document} has no FLEET:BEGIN … FLEET:END section")
    document.write_text(SECTION.sub(lambda _: block, text, count=1))


def main() -> None:
    source, _ = read_section(DOCUMENT.read_text())
    publish(ROOT / source)


if __name__ == "__main__":
    main()
