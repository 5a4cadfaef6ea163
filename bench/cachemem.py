"""The token cache's memory under 10^6 distinct tokens: it must stay flat at its bound.

Run in its own process (`python -m bench.cachemem --tokens N`, one JSON object out) so
nothing else the benchmark allocates shows up in its RSS. It fills a `TokenCache` of the
default size with distinct tokens of a real token's length, each with the storefront
claims a real decode returns, and records Python-heap bytes (tracemalloc) and VmRSS at
checkpoints: once the cache first reaches its bound, then at every tenfold up to N.
Distinct real tokens would cost one encryption each (minutes for 10^6) for no difference
the cache can see: it keys by the string and stores the claims.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc
from typing import Any

from authsvc.token_cache import TokenCache
from authsvc.tokens import TokenCodec
from bench.common import new_secret, rss_mib, storefront_token


def measure(tokens: int) -> dict[str, Any]:
    secret = new_secret()
    real = storefront_token(secret)
    claims = TokenCodec([secret]).decode(real)
    if claims is None:
        raise RuntimeError("the token does not decode")
    prefix = real[:-12]  # distinct tokens: the tag's last 12 characters become a counter
    gc.collect()
    tracemalloc.start()
    base_traced = tracemalloc.get_traced_memory()[0]
    base_rss = rss_mib(os.getpid())
    cache = TokenCache()
    bound = cache.max_entries
    checkpoints = sorted({bound, *(10**k for k in range(5, 10) if 10**k <= tokens), tokens})
    samples = []
    started = time.perf_counter()
    inserted = 0
    for checkpoint in checkpoints:
        for i in range(inserted, checkpoint):
            cache.put(f"{prefix}{i:012d}", claims)
        inserted = checkpoint
        samples.append(
            {
                "inserted": inserted,
                "entries": len(cache),
                "traced_mib": (tracemalloc.get_traced_memory()[0] - base_traced) / 2**20,
                "rss_growth_mib": rss_mib(os.getpid()) - base_rss,
            }
        )
    elapsed = time.perf_counter() - started
    tracemalloc.stop()
    full, last = samples[0], samples[-1]
    return {
        "tokens": tokens,
        "bound": bound,
        "token_length": len(real),
        "seconds": elapsed,
        "samples": samples,
        "entries_at_end": len(cache),
        "bytes_per_entry": full["traced_mib"] * 2**20 / bound,
        # 1.0 is perfectly flat: memory after N inserts over memory when first full.
        "traced_growth_ratio": last["traced_mib"] / full["traced_mib"],
        "rss_growth_ratio": max(last["rss_growth_mib"], 0.01) / max(full["rss_growth_mib"], 0.01),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=10**6)
    args = parser.parse_args()
    json.dump(measure(args.tokens), sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
