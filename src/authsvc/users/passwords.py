"""Password hashing: Argon2id for everything new; legacy bcrypt verified and upgraded.

Hashing runs in a small pool of low-priority threads (argon2-cffi and bcrypt release
the GIL, and Linux schedules each thread with its own nice value, which Argon2's lane
threads inherit). A storm of sign-ins therefore queues behind the pool and yields the
CPU to the event loop that answers session checks, instead of starving it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")
# Niceness of the hashing threads (0 is normal, 19 the lowest priority).
HASHING_NICENESS = 10
# Longer inputs are refused before hashing: nobody types this, and it bounds the work.
MAX_PASSWORD_BYTES = 1024
MIN_PASSWORD_LENGTH = 8
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
# bcrypt only ever covered the first 72 bytes; Node's bcryptjs truncates silently.
_BCRYPT_INPUT_LIMIT = 72


class PasswordPolicyError(ValueError):
    """A new password does not meet the policy; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    # A fresh Argon2id hash when the stored one is legacy or has weaker parameters.
    upgraded_hash: str | None = None


def _lower_priority() -> None:
    """Thread initializer: let anything else on the machine run first."""
    with contextlib.suppress(OSError):  # not permitted, or not Linux: keep the default
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


class PasswordHasher:
    def __init__(self, hasher: argon2.PasswordHasher | None = None, *, threads: int = 2) -> None:
        self._argon2 = hasher or argon2.PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4
        self._dummy_hash = self._argon2.hash("authsvc-dummy-password")
        self._pool = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="authsvc-hash", initializer=_lower_priority
        )

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    def check_policy(self, password: str) -> None:
        if _utf8_length(password) is None:
            raise PasswordPolicyError("password must be valid Unicode text")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise PasswordPolicyError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            raise PasswordPolicyError(f"password must be at most {MAX_PASSWORD_BYTES} bytes")

    async def hash(self, password: str) -> str:
        self.check_policy(password)
        return await self._run(self._argon2.hash, password)

    async def verify(self, stored_hash: str, password: str) -> Verification:
        length = _utf8_length(password)
        if length is None or length > MAX_PASSWORD_BYTES:
            await self.waste_time(password)
            return Verification(ok=False)
        return await self._run(self._verify_sync, stored_hash, password)

    async def waste_time(self, password: str) -> None:
        """Spend what a real check costs, so an unknown account is not faster to reject."""
        probe = password[:64].encode("utf-8", "replace").decode("utf-8")
        await self._run(self._verify_argon2, self._dummy_hash, probe)

    def _verify_sync(self, stored_hash: str, password: str) -> Verification:
        if stored_hash.startswith(_BCRYPT_PREFIXES):
            try:
                ok = bcrypt.checkpw(password.encode()[:_BCRYPT_INPUT_LIMIT], stored_hash.encode())
            except ValueError:  # a corrupt stored hash is a failed sign-in, not a crash
                return Verification(ok=False)
            return Verification(ok=ok, upgraded_hash=self._argon2.hash(password) if ok else None)
        if not self._verify_argon2(stored_hash, password):
            return Verification(ok=False)
        if self._argon2.check_needs_rehash(stored_hash):
            return Verification(ok=True, upgraded_hash=self._argon2.hash(password))
        return Verification(ok=True)

    def _verify_argon2(self, stored_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def _utf8_length(password: str) -> int | None:
    """Bytes in UTF-8, or None for text that has no UTF-8 form (lone surrogates)."""
    try:
        return len(password.encode("utf-8"))
    except UnicodeEncodeError:
        return None
