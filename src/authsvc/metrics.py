"""Prometheus metrics and the access log, from one small ASGI middleware.

Each app has its own registry (so several apps in one process, as in the tests, never
share counters). Labels are bounded: the route *template* (never the raw path), the
method, the status, and fixed outcome names.

With `authsvc serve --workers N`, a scrape lands on one worker, yet must show the whole
process group, as Prometheus' multiprocess mode does. That mode keeps every value in a
memory-mapped file behind a lock, the per-update cost this module exists to avoid, and its
histograms take single observations while ours are kept as bucket counts. So the group is
shared the same way, at a coarser grain: with a metrics directory (AUTHSVC_METRICS_DIR,
which `serve --workers N` sets to a fresh one), each process writes a snapshot of its
counts there within `FLUSH_SECONDS` of a change (and at shutdown), and a scrape adds up
every snapshot, its own live counts included. A process that ended keeps its counts in
the sum (counters never go down); one killed outright loses at most its last second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path
from typing import Any, Literal, get_args

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authsvc.proxy_trust import Network, client_address

access_log = logging.getLogger("authsvc.access")

VerifyOutcome = Literal["allow", "unauthenticated", "forbidden", "bad_request", "error"]
VERIFY_OUTCOMES: tuple[VerifyOutcome, ...] = get_args(VerifyOutcome)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SignInOutcome = Literal["success", "failure", "csrf", "denied", "throttled", "unavailable"]
# Latency buckets (seconds) around the forward-auth budget: Envoy's ext_authz default
# timeout is 200 ms, and the target p99 is under 50 ms.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5)
UNMATCHED = "unmatched"
FLUSH_SECONDS = 1.0
SNAPSHOT_PREFIX = "authsvc-metrics-"


class Metrics:
    """The service's counters, kept as plain numbers and exported at scrape time.

    prometheus-client's Counter and Histogram take a lock and walk label children on
    every update, which cost a quarter of the forward-auth check. All updates happen on
    the event loop's thread, so plain dictionaries suffice; `collect` turns them into the
    Prometheus families when `/metrics` is read.
    """

    def __init__(self, *, group_directory: Path | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests: dict[tuple[str, str, int], int] = {}
        # Per (method, route): a count per bucket and for +Inf, then the sum and the count.
        self._latency: dict[tuple[str, str], list[float]] = {}
        self._verify: dict[str, int] = dict.fromkeys(VERIFY_OUTCOMES, 0)
        self._signins: dict[tuple[str, str], int] = {}
        # A process group's shared directory (see the module docstring), or None.
        self._group = group_directory
        self._flush_pending = False
        self.registry.register(self)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """One finished request. Unknown methods count as OTHER (labels stay bounded)."""
        if self._group is not None and not self._flush_pending:
            self._schedule_flush()
        method = method if method in METHODS else "OTHER"
        key = (method, route, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        series = self._latency.get((method, route))
        if series is None:
            series = self._latency[(method, route)] = [0.0] * (len(BUCKETS) + 3)
        series[bisect_left(BUCKETS, seconds)] += 1
        series[-2] += seconds
        series[-1] += 1

    def verify_outcome(self, outcome: VerifyOutcome) -> None:
        self._verify[outcome] += 1

    def observe_verify(
        self, method: str, route: str, status: int, outcome: VerifyOutcome, seconds: float
    ) -> None:
        self.observe(method, route, status, seconds)
        self._verify[outcome] += 1

    def signin_outcome(self, provider: str, outcome: SignInOutcome) -> None:
        key = (provider, outcome)
        self._signins[key] = self._signins.get(key, 0) + 1

    # -- a process group ------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._flush_pending = True
        loop.call_later(FLUSH_SECONDS, self.flush)

    def _snapshot(self) -> dict[str, Any]:
        return {
            "requests": [[*key, count] for key, count in self._requests.items()],
            "latency": [[*key, series] for key, series in self._latency.items()],
            "verify": self._verify,
            "signins": [[*key, count] for key, count in self._signins.items()],
        }

    def flush(self) -> None:
        """Write this process's counts to the group directory (atomically)."""
        self._flush_pending = False
        if self._group is None:
            return
        target = self._group / f"{SNAPSHOT_PREFIX}{os.getpid()}.json"
        partial = target.with_suffix(".tmp")
        try:
            partial.write_text(json.dumps(self._snapshot()))
            partial.replace(target)
        except OSError as exc:
            logging.getLogger("authsvc.metrics").warning("metrics snapshot not written: %s", exc)

    def _group_counts(self) -> tuple[Metrics, int]:
        """Every process's counts added up (this one's live), and how many processes."""
        if self._group is None:
            return self, 1
        total = Metrics()
        total._merge(self._snapshot())
        processes = 1
        own = f"{SNAPSHOT_PREFIX}{os.getpid()}.json"
        for path in self._group.glob(f"{SNAPSHOT_PREFIX}*.json"):
            if path.name == own:
                continue
            with contextlib.suppress(OSError, ValueError):
                total._merge(json.loads(path.read_text()))
                processes += 1
        return total, processes

    def _merge(self, snapshot: dict[str, Any]) -> None:
        for method, route, status, count in snapshot["requests"]:
            key = (method, route, status)
            self._requests[key] = self._requests.get(key, 0) + count
        for method, route, series in snapshot["latency"]:
            mine = self._latency.setdefault((method, route), [0.0] * (len(BUCKETS) + 3))
            for index, value in enumerate(series):
                mine[index] += value
        for outcome, count in snapshot["verify"].items():
            self._verify[outcome] = self._verify.get(outcome, 0) + count
        for provider, outcome, count in snapshot["signins"]:
            self._signins[(provider, outcome)] = self._signins.get((provider, outcome), 0) + count

    # -- exposition -----------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        counts, processes = self._group_counts()
        yield from counts._families()
        group = GaugeMetricFamily(
            "authsvc_metrics_processes",
            "Processes whose counts this scrape adds up (the workers of `serve --workers N`).",
        )
        group.add_metric([], processes)
        yield group

    def _families(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "authsvc_http_requests",
            "HTTP requests by method, route template and status.",
            labels=["method", "route", "status"],
        )
        for (method, route, status), count in self._requests.items():
            requests.add_metric([method, route, str(status)], count)
        yield requests
        latency = HistogramMetricFamily(
            "authsvc_http_request_duration_seconds",
            "Time to the end of the response, by method and route template.",
            labels=["method", "route"],
        )
        for (method, route), series in self._latency.items():
            cumulative = list(accumulate(series[: len(BUCKETS) + 1]))
            bounds = [*(str(bound) for bound in BUCKETS), "+Inf"]
            latency.add_metric(
                [method, route], list(zip(bounds, cumulative, strict=True)), series[-2]
            )
        yield latency
        verify = CounterMetricFamily(
            "authsvc_verify_outcomes", "Forward-auth decisions by outcome.", labels=["outcome"]
        )
        for outcome, count in self._verify.items():
            verify.add_metric([outcome], count)
        yield verify
        signins = CounterMetricFamily(
            "authsvc_signin_outcomes",
            "Sign-in attempts by provider and outcome.",
            labels=["provider", "outcome"],
        )
        for (provider, outcome), count in self._signins.items():
            signins.add_metric([provider, outcome], count)
        yield signins

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def route_template(scope: Scope, prefix: str) -> str:
    """The matched route's path template, router prefix included; never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    # Routes included under the base path may report their path without it.
    if scope.get("path", "").startswith(prefix + "/") and not path.startswith(prefix + "/"):
        return prefix + path
    return path


class ObservabilityMiddleware:
    """Counts and times every HTTP request and writes one access-log line for it.

    The line has the method, the path without its query string (which may carry anything),
    the status, the duration and the client address (X-Forwarded-For believed only from a
    trusted proxy).
    """

    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, trusted: tuple[Network, ...], prefix: str
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.trusted = trusted
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"]
            self.metrics.observe(method, route_template(scope, self.prefix), status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                log_access(scope, method, status, elapsed, self.trusted)


def log_access(
    scope: Scope, method: str, status: int, elapsed: float, trusted: tuple[Network, ...]
) -> None:
    """The access-log line of a finished request (callers check that INFO is enabled)."""
    peer = scope.get("client")
    forwarded = None
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            forwarded = value.decode("latin-1")
            break
    client = client_address(peer[0] if peer else None, forwarded, trusted)
    access_log.info(
        "%s %s %d %.1fms client=%s",
        method,
        scope.get("path", ""),
        status,
        elapsed * 1000,
        client,
        extra={
            "fields": {
                "method": method,
                "path": scope.get("path", ""),
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "client": client,
            }
        },
    )
