"""The fleet test: three `authsvc serve` replicas behind real nginx (deploy/nginx.conf),
over their own PostgreSQL cluster and Redis, under a load of people signing in and polling
`/session` and `/verify`, through every fault a fleet meets.

    python -m bench.fleet                  # the long form: a 10-minute soak, ~15 minutes
    python -m bench.fleet --soak 60        # a shorter soak
    python -m bench.fleet --json out.json  # the figures as JSON too

tests/e2e/test_fleet.py runs the same scenarios in a short form in CI. Each scenario returns
its figures; `verdicts` says which of the issue's claims they uphold:

- cross_replica: a session minted by one replica is accepted by every other;
- throttle: the sign-in throttle counts across replicas (Redis);
- revocation: "sign out everywhere" reaches every replica within the cache TTL;
- kill_replica: kill -9 of a replica under load: no GET fails, sign-ins in flight complete
  or fail cleanly, no user is half-written, the restarted replica gets traffic again;
- rotation: a rolling secret rotation under load signs nobody out, and every cookie ends
  up under the new secret (the long form also measures the rotation done in one pass);
- postgres_restart: token routes keep answering, /readyz goes red then green, no replica
  restarts;
- redis_outage: sign-in works, throttling falls back to each replica's own counts, and
  goes back to Redis once it answers;
- soak: a steady load at half the measured capacity: no error, RSS, open files and
  database connections flat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import argon2

from authsvc.tokens import TokenCodec
from bench.common import new_secret
from bench.fleet_cluster import SETTINGS, Fleet, Replica
from bench.fleet_load import Client, Load, User, capacity, make_http, sign_in_all
from bench.servers import answered

PASSWORD = "fleet-password-0123456789"  # noqa: S105 - the test users' password
REVOCATION_TTL = float(SETTINGS["AUTHSVC_REVOCATION_CACHE_TTL"])
ACCOUNT_LIMIT = 100  # AUTHSVC_RATE_LIMIT_ACCOUNT's default, which the fleet keeps
REDIS_RETRY_SECONDS = 5.0  # authsvc.throttle.REDIS_RETRY_SECONDS

Results = dict[str, Any]


def log(message: str) -> None:
    print(f"[fleet {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- people -------------------------------------------------------------------------------


def people(prefix: str, count: int, first_address: int = 0) -> list[User]:
    """Accounts with the fleet's password, each signing in from an address of its own."""
    users = []
    for i in range(count):
        n = first_address + i
        address = f"10.{n // 62500 % 250}.{n // 250 % 250}.{n % 250 + 1}"
        users.append(User(f"{prefix}-{i}@fleet.example", PASSWORD, address))
    return users


def seed(fleet: Fleet, users: list[User]) -> None:
    """Create the accounts in one `authsvc import-users` (one Argon2 hash for all)."""
    password_hash = argon2.PasswordHasher().hash(PASSWORD)
    lines = [
        json.dumps({"email": user.email, "name": user.email.split("@")[0], "role": "CUSTOMER"})[:-1]
        + f', "password": "{password_hash}"}}'
        for user in users
    ]
    path = fleet.directory / "users.jsonl"
    path.write_text("\n".join(lines) + "\n")
    fleet.cli("import-users", "--file", str(path))


def user_count(fleet: Fleet) -> int:
    return int(fleet.postgres.sql("SELECT count(*) FROM users"))


# --- scenarios without load -----------------------------------------------------------------


async def _cross_replica(fleet: Fleet, users: list[User]) -> Results:
    accepted: dict[str, bool] = {}
    async with make_http() as http:
        client = Client(http, fleet.url, time.monotonic())
        for minter, user in zip(fleet.replicas, users, strict=False):
            signed = await client.sign_in(user, base=minter.url)
            if signed[-1].outcome != "ok":
                accepted[f"{minter.name} signs in"] = False
                continue
            minted = dict(user.cookies)
            for reader in fleet.replicas:
                user.cookies = dict(minted)  # the cookie as the minting replica set it
                verify = await client.verify(user, base=reader.url)
                session = await client.session(user, base=reader.url)
                accepted[f"{minter.name} -> {reader.name}"] = (
                    verify.outcome == session.outcome == "ok"
                )
    return {"accepted": accepted}


def cross_replica(fleet: Fleet, users: list[User]) -> Results:
    """A session minted by each replica, read by each replica (verify and session)."""
    return asyncio.run(_cross_replica(fleet, users))


async def _throttle(fleet: Fleet, account: User, limit: int) -> Results:
    statuses: Counter[int] = Counter()
    served_by: Counter[str] = Counter()
    gate = asyncio.Semaphore(3)
    async with make_http() as http:
        client = Client(http, fleet.url, time.monotonic())

        async def guess(n: int, base: str | None = None) -> int:
            # Each guess from another address: only the per-account limit can refuse it.
            guesser = User(account.email, "wrong-password", f"10.250.{n // 250}.{n % 250 + 1}")
            async with gate:
                records = await client.sign_in(guesser, base=base)
            served_by[records[-1].upstream] += 1
            return records[-1].status

        for status in await asyncio.gather(*(guess(n) for n in range(limit))):
            statuses[status] += 1
        after = {
            replica.name: await guess(limit + i, base=replica.url)
            for i, replica in enumerate(fleet.replicas)
        }
    served_by.pop("", None)
    return {
        "limit": limit,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "served_by": dict(served_by),
        "after_limit": after,
    }


def throttle(fleet: Fleet, account: User, limit: int = ACCOUNT_LIMIT) -> Results:
    """`limit` wrong passwords for one account through nginx (spread over the replicas),
    then one more on each replica directly: each must be refused with 429."""
    return asyncio.run(_throttle(fleet, account, limit))


async def _revocation(fleet: Fleet, user: User) -> Results:
    async with make_http() as http:
        client = Client(http, fleet.url, time.monotonic())
        signed = await client.sign_in(user)
        if signed[-1].outcome != "ok":
            return {"signed_in": False}
        # Every replica reads the session now, so each has the user's state cached.
        before = {r.name: (await client.verify(user, base=r.url)).outcome for r in fleet.replicas}
        started = time.monotonic()
        await asyncio.to_thread(fleet.cli, "revoke-sessions", "--email", user.email)
        revoked = time.monotonic()
        reached: dict[str, float] = {}
        while (
            len(reached) < len(fleet.replicas) and time.monotonic() - revoked < REVOCATION_TTL + 5
        ):
            for replica in fleet.replicas:
                if replica.name in reached:
                    continue
                if (await client.verify(user, base=replica.url)).status == 401:
                    reached[replica.name] = round(time.monotonic() - revoked, 2)
            await asyncio.sleep(0.2)
    return {
        "ttl": REVOCATION_TTL,
        "accepted_before": before,
        "command_seconds": round(revoked - started, 2),
        "refused_after_seconds": reached,
    }


def revocation(fleet: Fleet, user: User) -> Results:
    """`authsvc revoke-sessions` for a signed-in user whose state every replica has cached:
    seconds until each replica refuses the session (from the command's end)."""
    return asyncio.run(_revocation(fleet, user))


async def _warm(fleet: Fleet, users: list[User]) -> None:
    gate = asyncio.Semaphore(8)
    async with make_http() as http:
        client = Client(http, fleet.url, time.monotonic())

        async def read(user: User, replica: Replica) -> None:
            async with gate:
                await client.verify(user, base=replica.url)

        await asyncio.gather(*(read(u, r) for u in users for r in fleet.replicas))


def warm(fleet: Fleet, users: list[User]) -> None:
    """Every replica reads every person's session once, as a fleet in service has."""
    asyncio.run(_warm(fleet, users))


def measure_capacity(fleet: Fleet, users: list[User], seconds: float) -> Results:
    """Closed-loop polls through nginx: the fleet's rate with this machine's client."""
    rate, summary = asyncio.run(capacity(fleet.url, users, seconds, concurrency=16))
    return {"rate": round(rate, 1), "load": summary.as_dict()}


# --- scenarios under load ------------------------------------------------------------------


def _upstream_of(replica: Replica) -> str:
    return f"127.0.0.1:{replica.port}"


def _wait_for_traffic(load: Load, replica: Replica, since: float, seconds: float) -> float | None:
    """Seconds from `since` until nginx sent the replica a request that it answered."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for record in list(load.records):
            if record.at >= since and record.upstream.endswith(_upstream_of(replica)):
                return round(record.at - since, 2)
        time.sleep(0.1)
    return None


def kill_replica(fleet: Fleet, load: Load, burst: list[User], down: float = 3.0) -> Results:
    """kill -9 of a replica while sign-ins are in flight, then its restart."""
    victim = fleet.replicas[1]
    users_before = user_count(fleet)
    time.sleep(2)
    started = load.now()
    outcomes: list[str] = []
    signing = threading.Thread(
        target=lambda: outcomes.extend(
            r.outcome for r in load.sign_in_now(burst) if r.kind == "signin"
        )
    )
    signing.start()
    time.sleep(0.15)  # the burst's POSTs are in the replicas' Argon2 now
    victim.kill()
    killed = load.now()
    signing.join()
    time.sleep(down)
    restarted_at = load.now()
    victim.start(victim.env)
    back = _wait_for_traffic(load, victim, load.now(), 30)
    time.sleep(2)
    window = load.window(started)
    after = asyncio.run(
        sign_in_all(fleet.url, [User(u.email, u.password, u.address) for u in burst])
    )
    return {
        "victim": victim.name,
        "killed_at": round(killed - started, 2),
        "down_seconds": round(restarted_at - killed, 2),
        "load": window.as_dict(),
        "burst_signins": dict(Counter(outcomes)),
        "users_before": users_before,
        "users_after": user_count(fleet),
        "burst_sign_in_again": dict(Counter(r.outcome for r in after if r.kind == "signin")),
        "rejoined_after_seconds": back,
    }


def rotation(fleet: Fleet, load: Load) -> Results:
    """A rolling rotation in two passes, replica by replica. First every replica learns the
    new secret (NEXTAUTH_SECRET=old, NEXTAUTH_SECRET_PREVIOUS=new), then every replica
    encrypts with it (NEXTAUTH_SECRET=new, NEXTAUTH_SECRET_PREVIOUS=old). In one pass a
    replica not yet restarted would refuse the cookies the restarted ones re-issue.

    Each replica is restarted (SIGTERM: it finishes what it has in flight) only once nginx
    sends the previous one traffic again: nginx marks a replica that refused a connection
    as failed for fail_timeout (5 s), and with every replica marked so it has nowhere to
    send a request."""
    old, new = fleet.secret, new_secret()
    started = load.now()
    rejoined: list[float | None] = []
    for secret, previous in ((old, new), (new, old)):
        for replica in fleet.replicas:
            fleet.restart(replica, secret, previous)
            rejoined.append(_wait_for_traffic(load, replica, load.now(), 30))
    fleet.secret, fleet.previous = new, old
    window = load.window(started)
    time.sleep(max(3.0, 3 * len(load.users) / load.rate))  # everyone polls /session again
    only_new = TokenCodec([new])
    under_new = sum(1 for u in load.users if u.session_token and only_new.decode(u.session_token))
    return {
        "load": window.as_dict(),
        "seconds": round(window.seconds, 1),
        "rejoined_after_seconds": rejoined,
        "cookies": len(load.users),
        "cookies_under_new_secret": under_new,
    }


def rotation_in_one_pass(fleet: Fleet, load: Load) -> Results:
    """The rotation done wrong, for comparison (the long form only): replica by replica
    straight to NEXTAUTH_SECRET=new, NEXTAUTH_SECRET_PREVIOUS=old. Until the last replica
    is restarted, the others refuse (and clear) every cookie the restarted ones re-issue."""
    old, new = fleet.secret, new_secret()
    started = load.now()
    for replica in fleet.replicas:
        fleet.restart(replica, new, old)
        _wait_for_traffic(load, replica, load.now(), 30)
    fleet.secret, fleet.previous = new, old
    return {"load": load.window(started).as_dict(), "people": len(load.users)}


@contextmanager
def readiness_watch(fleet: Fleet) -> Iterator[dict[str, list[tuple[float, bool]]]]:
    """Each replica's /readyz, polled every 0.1 s: (time, ready) per replica."""
    seen: dict[str, list[tuple[float, bool]]] = {r.name: [] for r in fleet.replicas}
    running = True

    def watch() -> None:
        while running:
            for replica in fleet.replicas:
                seen[replica.name].append((time.monotonic(), answered(replica.port, "/readyz")))
            time.sleep(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        running = False
        thread.join()


def postgres_restart(fleet: Fleet, load: Load, down: float = 2.0) -> Results:
    """PostgreSQL stopped (fast: sessions cut), `down` seconds, started again."""
    pids = {r.name: r.pid for r in fleet.replicas}
    time.sleep(2)
    started = load.now()
    with readiness_watch(fleet) as seen:
        time.sleep(1)
        stop_at, stopped = time.monotonic(), load.now()
        fleet.postgres.stop()
        time.sleep(down)
        fleet.postgres.start()
        up_at = time.monotonic()
        deadline = up_at + 30
        while time.monotonic() < deadline and not all(
            polls and polls[-1][1] for polls in seen.values()
        ):
            time.sleep(0.1)
        recovered = load.now()
        time.sleep(1)
    window = load.window(started)
    readiness: dict[str, Any] = {}
    for name, polls in seen.items():
        red = [t for t, ok in polls if not ok and t >= stop_at]
        green = [t for t, ok in polls if ok and red and t > red[0]]
        readiness[name] = {
            "ready_before": any(ok for t, ok in polls if t < stop_at),
            "red_after_stop_seconds": round(red[0] - stop_at, 2) if red else None,
            "green_after_start_seconds": round(green[0] - up_at, 2) if green else None,
        }
    return {
        "down_seconds": round(up_at - stop_at, 2),
        "load": window.as_dict(),
        "outage": load.window(stopped, recovered).as_dict(),
        "readiness": readiness,
        "replicas_restarted": [r.name for r in fleet.replicas if r.pid != pids[r.name]],
        "signin_unavailable": window.count(kinds=("signin",), outcome="refused"),
    }


def redis_outage(fleet: Fleet, load: Load, signers: list[User]) -> Results:
    """Redis stopped: people sign in (counted by each replica alone), then Redis is back."""
    half = len(signers) // 2
    fleet.redis.stop()
    started = load.now()
    during = load.sign_in_now(signers[:half])
    logged = [
        r.name
        for r in fleet.replicas
        if any(
            str(line.get("message", "")).startswith("rate-limit storage unavailable")
            for line in r.log_lines()
        )
    ]
    fleet.redis.start()
    time.sleep(REDIS_RETRY_SECONDS + 1)
    after = load.sign_in_now(signers[half:])
    return {
        "load": load.window(started).as_dict(),
        "signins_during": dict(Counter(r.outcome for r in during if r.kind == "signin")),
        "fallback_logged_by": logged,
        "signins_after": dict(Counter(r.outcome for r in after if r.kind == "signin")),
        "redis_keys_after": len(fleet.redis.keys("*authsvc-signin*")),
    }


def soak(fleet: Fleet, load: Load, seconds: float, every: float = 5.0) -> Results:
    """A steady load: memory, open files and database connections sampled every `every` s
    (the first sample after a warm-up, so start-up allocations are not counted as growth)."""
    time.sleep(min(10.0, seconds / 4))
    started = load.now()
    samples: list[dict[str, Any]] = []
    end = time.monotonic() + seconds
    while True:
        samples.append(
            {
                "at": round(load.now() - started, 1),
                "rss_mib": {r.name: round(r.rss_mib(), 1) for r in fleet.replicas},
                "fds": {r.name: r.open_fds() for r in fleet.replicas},
                "db_connections": fleet.postgres.connections(),
            }
        )
        if time.monotonic() >= end:
            break
        time.sleep(min(every, max(0.0, end - time.monotonic())))
    first, last = samples[0], samples[-1]
    growth = {
        name: round(100 * (last["rss_mib"][name] / first["rss_mib"][name] - 1), 1)
        for name in first["rss_mib"]
    }
    fds = {name: [s["fds"][name] for s in samples] for name in first["fds"]}
    connections = [s["db_connections"] for s in samples]
    return {
        "seconds": seconds,
        "load": load.window(started).as_dict(),
        "rss_first_mib": first["rss_mib"],
        "rss_last_mib": last["rss_mib"],
        "rss_max_mib": {n: max(s["rss_mib"][n] for s in samples) for n in first["rss_mib"]},
        "rss_growth_percent": growth,
        "fds_min_max": {name: [min(v), max(v)] for name, v in fds.items()},
        "db_connections_min_max": [min(connections), max(connections)],
        "samples": samples,
    }


# --- verdicts -----------------------------------------------------------------------------


def verdicts(results: Results) -> dict[str, bool]:
    """Which of the issue's claims the figures uphold."""
    checks: dict[str, Callable[[Results], bool]] = {
        "cross_replica": lambda r: all(r["accepted"].values()),
        "capacity": lambda r: r["load"]["get_errors"] == 0 and r["load"]["signed_out"] == 0,
        "throttle": lambda r: (
            r["statuses"] == {"401": r["limit"]}
            and len(r["served_by"]) > 1
            and max(r["served_by"].values()) < r["limit"]
            and set(r["after_limit"].values()) == {429}
        ),
        "revocation": lambda r: (
            set(r["accepted_before"].values()) == {"ok"}
            and len(r["refused_after_seconds"]) == len(r["accepted_before"])
            and max(r["refused_after_seconds"].values()) <= r["ttl"] + 1
        ),
        "kill_replica": lambda r: (
            r["load"]["get_errors"] == 0
            and r["load"]["signed_out"] == 0
            and set(r["burst_signins"]) <= {"ok", "refused"}
            and r["users_after"] == r["users_before"]
            and r["burst_sign_in_again"] == {"ok": sum(r["burst_signins"].values())}
            and r["rejoined_after_seconds"] is not None
        ),
        "rotation": lambda r: (
            r["load"]["get_errors"] == 0
            and r["load"]["signed_out"] == 0
            and r["cookies_under_new_secret"] == r["cookies"]
            and None not in r["rejoined_after_seconds"]
        ),
        "postgres_restart": lambda r: (
            r["load"]["get_errors"] == 0
            and not r["replicas_restarted"]
            and all(
                v["ready_before"]
                and v["red_after_stop_seconds"] is not None
                and v["green_after_start_seconds"] is not None
                for v in r["readiness"].values()
            )
        ),
        "redis_outage": lambda r: (
            set(r["signins_during"]) == {"ok"}
            and set(r["signins_after"]) == {"ok"}
            and r["fallback_logged_by"]
            and r["redis_keys_after"] > 0
        ),
        "soak": lambda r: (
            r["load"]["get_errors"] == 0
            and r["load"]["signed_out"] == 0
            and r["load"]["denied"] == 0
            and max(r["rss_growth_percent"].values()) < 10
        ),
    }
    return {name: bool(check(results[name])) for name, check in checks.items() if name in results}


# --- the long form --------------------------------------------------------------------------


def run(soak_seconds: float, population: int, directory: Path) -> Results:
    results: Results = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average_before": os.getloadavg(),
        "cpus": os.cpu_count(),
        "settings": SETTINGS,
    }
    fleet = Fleet(directory, new_secret())
    try:
        log(f"starting PostgreSQL, Redis, {len(fleet.replicas)} replicas and nginx in {directory}")
        fleet.start()
        users = people("load", population)
        extra = people("extra", 40, first_address=population)
        throttled = User("throttled@fleet.example", PASSWORD, "10.249.0.1")
        revoked = User("revoked@fleet.example", PASSWORD, "10.249.0.2")
        seed(fleet, [*users, *extra, throttled, revoked])
        log(f"signing {population} people in")
        asyncio.run(sign_in_all(fleet.url, users))
        log("sessions across replicas")
        results["cross_replica"] = cross_replica(fleet, extra[:3])
        log("throttle across replicas")
        results["throttle"] = throttle(fleet, throttled)
        log("revocation")
        results["revocation"] = revocation(fleet, revoked)
        log("capacity")
        warm(fleet, users)
        results["capacity"] = measure_capacity(fleet, users, 10)
        rate = results["capacity"]["rate"]
        results["load_rate"] = round(rate / 2, 1)
        load = Load(fleet.url, users, rate=rate / 2)
        with load.running():
            log(f"load at {rate / 2:.0f}/s: kill -9 of a replica")
            results["kill_replica"] = kill_replica(fleet, load, extra[3:11])
            log("rolling secret rotation")
            results["rotation"] = rotation(fleet, load)
            log("the same rotation in one pass (for comparison)")
            results["rotation_in_one_pass"] = rotation_in_one_pass(fleet, load)
            log("PostgreSQL restart")
            results["postgres_restart"] = postgres_restart(fleet, load)
            log("Redis outage")
            results["redis_outage"] = redis_outage(fleet, load, extra[11:19])
            log(f"soak, {soak_seconds:.0f} s")
            results["soak"] = soak(fleet, load, soak_seconds, every=10.0)
            results["whole_run"] = load.window(0.0).as_dict()
    finally:
        fleet.close()
    results["load_average_after"] = os.getloadavg()
    results["verdicts"] = verdicts(results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--soak", type=float, default=600.0, help="soak seconds (600)")
    parser.add_argument("--users", type=int, default=60, help="people polling (60)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="authsvc-fleet-") as directory:
        results = run(args.soak, args.users, Path(directory))
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    failed = [name for name, ok in results["verdicts"].items() if not ok]
    log("all claims hold" if not failed else f"claims that did not hold: {', '.join(failed)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
