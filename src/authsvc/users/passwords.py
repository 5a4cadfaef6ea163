"""Password hashing: Argon2id for everything new; legacy bcrypt (and other Argon2 variants)
verified and upgraded, unless bcrypt must stay readable by a Node app (Prisma mode).

Hashing runs in a small pool of low-priority threads (argon2-cffi and bcrypt release
the GIL, and Linux schedules each thread with its own nice value, which Argon2's lane
threads inherit). A storm of sign-ins therefore queues behind the pool and yields the
CPU to the event loop that answers session checks, instead of starving it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")
# Niceness of the hashing threads (0 is normal, 19 the lowest priority).
HASHING_NICENESS = 10
# Longer inputs are refused before hashing: nobody types this, and it bounds the work.
MAX_PASSWORD_BYTES = 1024
MIN_PASSWORD_LENGTH = 8
# What bcrypt writes (and Node's bcryptjs, PHP's password_hash): version, cost 04-31, then
# 22 characters of salt and 31 of hash in bcrypt's base64.
BCRYPT_PATTERN = r"\$2[aby]\$(?:0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}"
_BCRYPT_HASH = re.compile(BCRYPT_PATTERN)
_ARGON2_PREFIXES = ("$argon2id$", "$argon2i$", "$argon2d$")
# bcrypt only ever covered the first 72 bytes; Node's bcryptjs truncates silently.
_BCRYPT_INPUT_LIMIT = 72


class PasswordPolicyError(ValueError):
    """A new password does not meet the policy; the message is safe to show."""


HashFormat = Literal["bcrypt", "argon2"]


def hash_format(stored_hash: str) -> HashFormat | None:
    """The scheme of a stored hash, or None for anything authsvc cannot verify."""
    if _BCRYPT_HASH.fullmatch(stored_hash):
        return "bcrypt"
    if stored_hash.startswith(_ARGON2_PREFIXES):
        try:
            argon2.extract_parameters(stored_hash)
        except InvalidHashError:
            return None
        return "argon2"
    return None


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    # A fresh Argon2id hash when the stored one is legacy or has weaker parameters.
    upgraded_hash: str | None = None
    # The stored hash is in no format authsvc verifies (a failed sign-in, to be logged).
    unknown_format: bool = False


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

    async def verify(
        self, stored_hash: str, password: str, *, upgrade_bcrypt: bool = True
    ) -> Verification:
        """Check `password`; with `upgrade_bcrypt` False a bcrypt hash is kept as it is (a
        Node app may still `bcrypt.compare` it), while Argon2 ones still get stronger."""
        length = _utf8_length(password)
        if length is None or length > MAX_PASSWORD_BYTES:
            await self.waste_time(password)
            return Verification(ok=False)
        return await self._run(self._verify_sync, stored_hash, password, upgrade_bcrypt)

    async def waste_time(self, password: str) -> None:
        """Spend what a real check costs, so an unknown account is not faster to reject."""
        probe = password[:64].encode("utf-8", "replace").decode("utf-8")
        await self._run(self._verify_argon2, self._dummy_hash, probe)

    def _verify_sync(self, stored_hash: str, password: str, upgrade_bcrypt: bool) -> Verification:
        scheme = hash_format(stored_hash)
        if scheme is None:
            # Costs what a real check costs, like an unknown account.
            self._verify_argon2(self._dummy_hash, password[:64])
            return Verification(ok=False, unknown_format=True)
        if scheme == "bcrypt":
            try:
                ok = bcrypt.checkpw(password.encode()[:_BCRYPT_INPUT_LIMIT], stored_hash.encode())
            except ValueError:  # a corrupt stored hash is a failed sign-in, not a crash
                return Verification(ok=False, unknown_format=True)
            upgraded = self._argon2.hash(password) if ok and upgrade_bcrypt else None
            return Verification(ok=ok, upgraded_hash=upgraded)
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
