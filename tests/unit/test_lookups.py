"""`BoundedLookups`: deadlines without cancelling, one flight per key, a bounded number."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from authsvc.lookups import BoundedLookups, LookupsBusyError, LookupsUnavailableError


def lookups(slots: int = 2) -> BoundedLookups:
    return BoundedLookups(timeout=0.05, slots=slots, background_limit=5)


async def test_a_read_within_the_deadline_gives_its_result() -> None:
    async def read() -> str:
        return "ok"

    assert await lookups().run("k", read) == "ok"


async def test_a_read_error_reaches_the_caller() -> None:
    async def read() -> str:
        raise OSError("refused")

    with pytest.raises(OSError, match="refused"):
        await lookups().run("k", read)


async def test_a_late_read_times_out_for_the_caller_but_finishes_in_the_background() -> None:
    finished = asyncio.Event()

    async def read() -> str:
        await asyncio.sleep(0.2)
        finished.set()
        return "late"

    reads = lookups()
    with pytest.raises(TimeoutError):
        await reads.run("k", read)
    # The slot is given back by the task's done callback, a loop turn or two after `read`
    # returns (how many differs between Python versions), so wait for that, not the event.
    async with asyncio.timeout(2):
        while reads.running:  # noqa: ASYNC110 - a counter, nothing signals it
            await asyncio.sleep(0.01)
    assert finished.is_set()


async def test_concurrent_reads_of_one_key_share_one_flight() -> None:
    calls = 0

    async def read() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return calls

    reads = lookups()
    results = await asyncio.gather(*(reads.run("k", read) for _ in range(20)))
    assert (calls, set(results)) == (1, {1})


async def test_past_the_slots_a_caller_is_refused_at_once_without_reading() -> None:
    started: list[str] = []

    def slow(key: str) -> Callable[[], Awaitable[None]]:
        async def read() -> None:
            started.append(key)
            await asyncio.sleep(0.3)

        return read

    reads = lookups(slots=2)
    first = [asyncio.ensure_future(reads.run(key, slow(key))) for key in ("a", "b")]
    await asyncio.sleep(0)
    with pytest.raises(LookupsBusyError):
        await reads.run("c", slow("c"))
    await asyncio.gather(*first, return_exceptions=True)
    assert started == ["a", "b"]


async def test_a_read_that_hangs_is_ended_by_the_background_limit() -> None:
    reads = BoundedLookups(timeout=0.01, slots=1, background_limit=0.1)

    async def hang() -> None:
        await asyncio.sleep(60)

    with pytest.raises(TimeoutError):
        await reads.run("k", hang)
    await asyncio.sleep(0.2)
    assert reads.running == 0


def refused_connection() -> Callable[[], Awaitable[str]]:
    async def read() -> str:
        raise ConnectionRefusedError("database down")

    return read


async def test_after_a_database_error_reads_are_refused_without_being_sent() -> None:
    reads = lookups()
    with pytest.raises(ConnectionRefusedError):
        await reads.run("a", refused_connection())
    sent = False

    async def read() -> str:
        nonlocal sent
        sent = True
        return "ok"

    with pytest.raises(LookupsUnavailableError):
        await reads.run("b", read)
    assert not sent


async def test_a_refused_read_is_a_timeout_to_callers_that_fall_back_on_deadlines() -> None:
    reads = lookups()
    with pytest.raises(ConnectionRefusedError):
        await reads.run("a", refused_connection())
    with pytest.raises(TimeoutError):
        await reads.run("b", refused_connection())


async def test_once_the_retry_window_passes_one_read_probes_while_others_are_refused() -> None:
    reads = BoundedLookups(timeout=1, slots=4, background_limit=5, retry_after=0.05)
    with pytest.raises(ConnectionRefusedError):
        await reads.run("a", refused_connection())
    await asyncio.sleep(0.06)
    release = asyncio.Event()

    async def slow_ok() -> str:
        await release.wait()
        return "ok"

    probe = asyncio.ensure_future(reads.run("b", slow_ok))
    await asyncio.sleep(0)
    with pytest.raises(LookupsUnavailableError):
        await reads.run("c", slow_ok)
    release.set()
    assert await probe == "ok"


async def test_a_successful_probe_lets_every_read_through_again() -> None:
    reads = BoundedLookups(timeout=1, slots=4, background_limit=5, retry_after=0.05)
    with pytest.raises(ConnectionRefusedError):
        await reads.run("a", refused_connection())
    await asyncio.sleep(0.06)

    async def ok() -> str:
        return "ok"

    assert await reads.run("b", ok) == "ok"
    assert [await reads.run(key, ok) for key in "cde"] == ["ok", "ok", "ok"]


async def test_a_failed_probe_holds_reads_back_for_another_window() -> None:
    reads = BoundedLookups(timeout=1, slots=4, background_limit=5, retry_after=0.05)
    with pytest.raises(ConnectionRefusedError):
        await reads.run("a", refused_connection())
    await asyncio.sleep(0.06)
    with pytest.raises(ConnectionRefusedError):
        await reads.run("b", refused_connection())
    with pytest.raises(LookupsUnavailableError):
        await reads.run("c", refused_connection())


async def test_an_error_that_is_not_the_databases_holds_no_other_read_back() -> None:
    reads = lookups()

    async def broken() -> str:
        raise ValueError("the application's own bug")

    async def ok() -> str:
        return "ok"

    with pytest.raises(ValueError, match="own bug"):
        await reads.run("a", broken)
    assert await reads.run("b", ok) == "ok"
