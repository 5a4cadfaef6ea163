"""Why the sign-in storm moves verify's p99, and what would not: hashing placements compared.

    .venv/bin/python -m bench.storm_variants                  # every variant, ~6 minutes
    .venv/bin/python -m bench.storm_variants --variants as-shipped,process-pinned

An experiment, not part of `python -m bench`: each variant starts `authsvc serve` with the
password hasher placed differently (patched in at start-up by this module, src/ is not
changed), then measures verify's p99 at the fixed rate of the main suite, idle and during
the same sign-in storm, `--rounds` times each. The load generator is pinned to CPU 0, so a
variant that keeps hashing off that CPU keeps it off the client too. Each variant first
waits for an idle machine; the busy cores printed for each phase (the whole machine's)
show whether anything else ran meanwhile.

Variants:
- `as-shipped`: src/ as it is (a pool of 2 threads at nice 10, in the server process);
- `no-cpu`: the hash replaced by a 250 ms sleep: the storm's own event-loop work only;
- `nice19`: the same threads at nice 19;
- `sched-idle`: the same threads under SCHED_IDLE;
- `process`: the hashes in a pool of 2 processes at nice 10 (no shared GIL or memory);
- `process-pinned`: that pool pinned to the last CPU, the server to the others.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import servers
from bench.common import (
    PYTHON,
    ROOT,
    SESSION_COOKIE,
    free_port,
    machine_busy_seconds,
    new_secret,
    storefront_token,
    wait_for_quiet,
)

VARIANTS = ("as-shipped", "no-cpu", "nice19", "sched-idle", "process", "process-pinned")
EMAIL = "storm@example.com"

# --- the server side: patch the hasher, then run `authsvc serve` ---------------------------

_process_hasher: Any = None


def _process_init(niceness: int, cpu: int | None) -> None:
    global _process_hasher
    import argon2

    os.nice(niceness)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    _process_hasher = argon2.PasswordHasher()


def _process_verify(stored_hash: str, password: str) -> bool:
    try:
        return bool(_process_hasher.verify(stored_hash, password))
    except Exception:  # a wrong password, or a hash that is not Argon2
        return False


def _patch(variant: str) -> None:
    from authsvc.users import passwords

    hasher = passwords.PasswordHasher
    if variant == "no-cpu":

        def sleeping(self: Any, stored_hash: str, password: str) -> passwords.Verification:
            time.sleep(0.25)
            return passwords.Verification(ok=self._verify_argon2(stored_hash, password))

        # Still a correct answer, computed once per password and remembered: the storm
        # repeats two passwords, so after the first two checks no CPU goes to hashing.
        remembered: dict[tuple[str, str], bool] = {}
        original = hasher._verify_argon2

        def remembering(self: Any, stored_hash: str, password: str) -> bool:
            key = (stored_hash, password)
            if key not in remembered:
                remembered[key] = original(self, stored_hash, password)
            return remembered[key]

        setattr(hasher, "_verify_sync", sleeping)  # noqa: B010 - a runtime patch
        setattr(hasher, "_verify_argon2", remembering)  # noqa: B010
    elif variant == "nice19":
        setattr(passwords, "HASHING_NICENESS", 19)  # noqa: B010
    elif variant == "sched-idle":

        def idle_policy() -> None:
            with contextlib.suppress(OSError):
                os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))

        setattr(passwords, "_lower_priority", idle_policy)  # noqa: B010
    elif variant in ("process", "process-pinned"):
        cpus = os.sched_getaffinity(0)
        hashing_cpu = max(cpus) if variant == "process-pinned" else None
        if hashing_cpu is not None:
            os.sched_setaffinity(0, cpus - {hashing_cpu})
        pool = concurrent.futures.ProcessPoolExecutor(
            2,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_process_init,
            initargs=(passwords.HASHING_NICENESS, hashing_cpu),
        )
        pool.submit(int, 0).result()  # fork now, before the server starts its threads

        async def verify(self: Any, stored_hash: str, password: str) -> passwords.Verification:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(pool, _process_verify, stored_hash, password)
            return passwords.Verification(ok=ok)

        async def waste_time(self: Any, password: str) -> None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(pool, _process_verify, self._dummy_hash, password)

        setattr(hasher, "verify", verify)  # noqa: B010
        setattr(hasher, "waste_time", waste_time)  # noqa: B010
    elif variant != "as-shipped":
        raise SystemExit(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")


def serve(variant: str, argv: list[str]) -> None:
    from authsvc.cli import run

    _patch(variant)
    sys.exit(run(argv))


# --- the driver ------------------------------------------------------------------------------


def _loadgen(port: int, cookie: str, rate: float, seconds: float) -> dict[str, Any]:
    command = [PYTHON, "-m", "bench.loadgen", f"--port={port}", f"--cookie={cookie}"]
    command += [f"--rate={rate}", f"--seconds={seconds}", "--cpus=0"]
    result = subprocess.run(  # noqa: S603 - fixed argv: this interpreter, our module
        command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def measure(
    variant: str, directory: Path, secret: str, password: str, args: argparse.Namespace
) -> dict[str, Any]:
    cookie = f"{SESSION_COOKIE}={storefront_token(secret)}"
    port = free_port()
    env = servers.authsvc_environment(directory, secret, port)
    command = [PYTHON, "-m", "bench.storm_variants", "--serve", variant, "--"]
    command += ["serve", "--host", "127.0.0.1", "--port", str(port)]
    env["PYTHONPATH"] = str(ROOT)
    # Its own process group, so the hashing processes of a variant end with it.
    process = subprocess.Popen(  # noqa: S603 - fixed argv: this interpreter, this module
        command, env=env, cwd=directory, stderr=subprocess.DEVNULL, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    rounds: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 30
        while not servers.answered(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"variant {variant} did not start")
            time.sleep(0.05)
        _loadgen(port, cookie, args.rate, 2)  # warm-up
        for _ in range(args.rounds):
            busy = machine_busy_seconds()
            started = time.perf_counter()
            idle = _loadgen(port, cookie, args.rate, args.seconds)
            idle["machine_cores"] = (machine_busy_seconds() - busy) / (
                time.perf_counter() - started
            )
            clients = [PYTHON, "-m", "bench.storm", f"--url={url}", f"--email={EMAIL}"]
            clients += [f"--password={password}", f"--seconds={args.seconds + 3}"]
            storm = subprocess.Popen(  # noqa: S603 - fixed argv: this interpreter, our module
                clients,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(1.5)
            busy = machine_busy_seconds()
            started = time.perf_counter()
            stormy = _loadgen(port, cookie, args.rate, args.seconds)
            stormy["machine_cores"] = (machine_busy_seconds() - busy) / (
                time.perf_counter() - started
            )
            signins = json.loads(storm.communicate(timeout=120)[0])
            rounds.append({"idle": idle, "storm": stormy, "signins": signins})
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # any hashing process left behind
    idle_p99 = statistics.median(r["idle"]["p99_ms"] for r in rounds)
    storm_p99 = statistics.median(r["storm"]["p99_ms"] for r in rounds)
    return {
        "variant": variant,
        "rounds": rounds,
        "idle_p99_ms": idle_p99,
        "storm_p99_ms": storm_p99,
        "ratio": storm_p99 / idle_p99,
        "signins_per_second": statistics.median(
            r["signins"]["attempts_per_second"] for r in rounds
        ),
        # The whole machine's busy cores: the server, the clients and anything else.
        "idle_machine_cores": statistics.median(r["idle"]["machine_cores"] for r in rounds),
        "storm_machine_cores": statistics.median(r["storm"]["machine_cores"] for r in rounds),
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[4:] if sys.argv[3:4] == ["--"] else sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--quiet-wait", type=float, default=60.0, help="wait for an idle machine (s)"
    )
    args = parser.parse_args()
    secret, password = new_secret(), new_secret()
    results = []
    print(
        f"{'variant':<16} {'idle p99':>9} {'storm p99':>10} {'ratio':>6} {'sign-ins/s':>11} "
        f"{'busy cores idle/storm':>22}"
    )
    with tempfile.TemporaryDirectory(prefix="authsvc-storm-") as tmp:
        directory = Path(tmp)
        servers.create_user(directory, secret, EMAIL, password)
        for variant in args.variants.split(","):
            # Pinned variants leave the server one CPU: other work there shows at once.
            wait_for_quiet(args.quiet_wait)
            result = measure(variant, directory, secret, password, args)
            results.append(result)
            print(
                f"{variant:<16} {result['idle_p99_ms']:>7.2f}ms {result['storm_p99_ms']:>8.2f}ms "
                f"{result['ratio']:>6.2f} {result['signins_per_second']:>11.1f} "
                f"{result['idle_machine_cores']:>11.2f}/{result['storm_machine_cores']:.2f}",
                flush=True,
            )
    out = ROOT / "bench" / "results" / f"storm-variants-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
