"""The fleet test's short form (the long form is `python -m bench.fleet`): three `authsvc
serve` replicas behind real nginx running deploy/nginx.conf, over their own PostgreSQL
cluster and Redis, under a load of people signing in and polling /session and /verify.

Each fault runs once (a module-scoped fixture, in the order of the tests) and the tests
read its figures; bench/fleet.py says how each scenario works. Never the shared PostgreSQL
or Redis: the fleet initdb's its own cluster and starts its own Redis on free ports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import fleet as scenarios
from bench.common import new_secret
from bench.fleet_cluster import SETTINGS, Fleet
from bench.fleet_load import Load, User, sign_in_all
from tests.processes import require_binary

pytestmark = pytest.mark.fleet

LOAD = scenarios.people("load", 12)
EXTRA = scenarios.people("extra", 30, first_address=100)
THROTTLED = User("throttled@fleet.example", scenarios.PASSWORD, "10.249.0.1")
REVOKED = User("revoked@fleet.example", scenarios.PASSWORD, "10.249.0.2")
SOAK_SECONDS = 20.0


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    for binary in ("nginx", "redis-server"):
        require_binary(binary)
    running = Fleet(Path(tmp_path_factory.mktemp("fleet")), new_secret())
    try:
        running.start()
        scenarios.seed(running, [*LOAD, *EXTRA, THROTTLED, REVOKED])
        asyncio.run(sign_in_all(running.url, LOAD))
        scenarios.warm(running, LOAD)
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def capacity(fleet: Fleet) -> dict[str, Any]:
    return scenarios.measure_capacity(fleet, LOAD, 4)


@pytest.fixture(scope="module")
def killed(fleet: Fleet, capacity: dict[str, Any]) -> dict[str, Any]:
    with Load(fleet.url, LOAD, rate=capacity["rate"] / 2).running() as load:
        return scenarios.kill_replica(fleet, load, EXTRA[3:9])


@pytest.fixture(scope="module")
def rotated(fleet: Fleet, capacity: dict[str, Any]) -> dict[str, Any]:
    with Load(fleet.url, LOAD, rate=capacity["rate"] / 2).running() as load:
        return scenarios.rotation(fleet, load)


@pytest.fixture(scope="module")
def postgres_restarted(fleet: Fleet, capacity: dict[str, Any]) -> dict[str, Any]:
    with Load(fleet.url, LOAD, rate=capacity["rate"] / 2).running() as load:
        return scenarios.postgres_restart(fleet, load)


@pytest.fixture(scope="module")
def redis_stopped(fleet: Fleet, capacity: dict[str, Any]) -> dict[str, Any]:
    with Load(fleet.url, LOAD, rate=capacity["rate"] / 2).running() as load:
        return scenarios.redis_outage(fleet, load, EXTRA[9:13])


@pytest.fixture(scope="module")
def soaked(fleet: Fleet, capacity: dict[str, Any]) -> dict[str, Any]:
    with Load(fleet.url, LOAD, rate=capacity["rate"] / 2).running() as load:
        return scenarios.soak(fleet, load, SOAK_SECONDS, every=2.0)


def test_a_session_minted_by_any_replica_is_accepted_by_every_replica(fleet: Fleet) -> None:
    accepted = scenarios.cross_replica(fleet, EXTRA[:3])["accepted"]
    assert len(accepted) == 9
    assert all(accepted.values()), accepted


def test_the_sign_in_throttle_counts_attempts_made_on_every_replica(fleet: Fleet) -> None:
    result = scenarios.throttle(fleet, THROTTLED)
    # 100 wrong passwords spread over the replicas (no replica saw 100), all counted ...
    assert result["statuses"] == {"401": 100}
    assert len(result["served_by"]) == 3
    assert max(result["served_by"].values()) < 100
    # ... so the next attempt is refused on every replica.
    assert set(result["after_limit"].values()) == {429}, result


def test_a_revocation_reaches_every_replica_within_the_revocation_cache_ttl(fleet: Fleet) -> None:
    result = scenarios.revocation(fleet, REVOKED)
    assert set(result["accepted_before"].values()) == {"ok"}
    assert len(result["refused_after_seconds"]) == 3, result
    assert max(result["refused_after_seconds"].values()) <= scenarios.REVOCATION_TTL + 1


def test_the_fleet_answers_polls_at_full_speed_without_an_error(capacity: dict[str, Any]) -> None:
    assert capacity["load"]["get_errors"] == 0, capacity
    assert capacity["load"]["signed_out"] == 0, capacity


def test_killing_a_replica_mid_load_fails_no_get_and_signs_nobody_out(
    killed: dict[str, Any],
) -> None:
    assert killed["load"]["get_errors"] == 0, killed
    assert killed["load"]["signed_out"] == 0, killed
    # The restarted replica knows no one's revocation state yet: on a loaded machine its
    # first lookup for a person can miss the 0.1 s deadline (that request is refused, the
    # cookie kept, the state read in the background), at most once per person.
    assert killed["load"]["denied"] <= len(LOAD), killed


def test_sign_ins_in_flight_on_a_killed_replica_complete_or_fail_cleanly(
    killed: dict[str, Any],
) -> None:
    assert set(killed["burst_signins"]) <= {"ok", "refused"}, killed
    assert sum(killed["burst_signins"].values()) == 6
    # Nobody half-written: the same accounts, and each of them signs in again.
    assert killed["users_after"] == killed["users_before"]
    assert killed["burst_sign_in_again"] == {"ok": 6}


def test_a_killed_replica_gets_traffic_again_once_restarted(killed: dict[str, Any]) -> None:
    assert killed["rejoined_after_seconds"] is not None, killed


def test_a_rolling_secret_rotation_under_load_signs_nobody_out(rotated: dict[str, Any]) -> None:
    assert rotated["load"]["get_errors"] == 0, rotated
    assert rotated["load"]["signed_out"] == 0, rotated


def test_after_a_rolling_rotation_every_cookie_is_under_the_new_secret(
    rotated: dict[str, Any],
) -> None:
    assert rotated["cookies_under_new_secret"] == rotated["cookies"] == len(LOAD)


def test_token_routes_keep_answering_through_a_postgresql_restart(
    postgres_restarted: dict[str, Any],
) -> None:
    assert postgres_restarted["load"]["get_errors"] == 0, postgres_restarted
    assert postgres_restarted["load"]["signed_out"] == 0, postgres_restarted


def test_readyz_goes_red_then_green_through_a_postgresql_restart(
    postgres_restarted: dict[str, Any],
) -> None:
    for replica, seen in postgres_restarted["readiness"].items():
        assert seen["ready_before"], replica
        assert seen["red_after_stop_seconds"] is not None, (replica, seen)
        assert seen["green_after_start_seconds"] is not None, (replica, seen)


def test_no_replica_is_restarted_by_a_postgresql_restart(
    postgres_restarted: dict[str, Any],
) -> None:
    assert postgres_restarted["replicas_restarted"] == []


def test_sign_in_works_while_redis_is_stopped(redis_stopped: dict[str, Any]) -> None:
    assert redis_stopped["signins_during"] == {"ok": 2}, redis_stopped
    assert redis_stopped["load"]["get_errors"] == 0


def test_throttling_falls_back_to_each_replica_and_returns_to_redis(
    redis_stopped: dict[str, Any],
) -> None:
    assert redis_stopped["fallback_logged_by"], redis_stopped
    assert redis_stopped["signins_after"] == {"ok": 2}
    assert redis_stopped["redis_keys_after"] > 0


def test_a_soak_at_half_capacity_sees_no_error(soaked: dict[str, Any]) -> None:
    assert soaked["load"]["get_errors"] == 0, soaked["load"]
    assert soaked["load"]["signed_out"] == soaked["load"]["denied"] == 0, soaked["load"]
    assert set(soaked["load"]["outcomes"].get("signin", {"ok": 0})) == {"ok"}


def test_a_soak_grows_no_replicas_memory_by_a_tenth(soaked: dict[str, Any]) -> None:
    assert max(soaked["rss_growth_percent"].values()) < 10, soaked["rss_growth_percent"]


def test_a_soak_keeps_open_files_and_database_connections_flat(soaked: dict[str, Any]) -> None:
    # A replica's descriptors move with the connections nginx keeps to it (up to 32 idle
    # ones across the replicas, deploy/nginx.conf) and its database pool (10): within
    # those they are flat; a leak, at this many requests, grows far past them.
    for replica, (least, most) in soaked["fds_min_max"].items():
        assert most - least <= 32 + 10, (replica, least, most)
    least, most = soaked["db_connections_min_max"]
    assert most <= 3 * int(SETTINGS["AUTHSVC_DB_POOL_SIZE"]), (least, most)
