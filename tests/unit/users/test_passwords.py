"""Password hashing: Argon2id for new hashes, legacy hashes verified and upgraded."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Literal

import argon2
import bcrypt
import pytest

from authsvc.app import AuthService
from authsvc.providers.credentials import authorize
from authsvc.users.passwords import (
    HASHING_NICENESS,
    MAX_PASSWORD_BYTES,
    PasswordHasher,
    PasswordPolicyError,
    hash_format,
)
from authsvc.users.repository import UserRecord
from tests.conftest import add_user
from tests.fakes import InMemoryUsers

PASSWORD = "correct horse battery staple"
ARGON2ID_DEFAULTS = "$argon2id$v=19$m=65536,t=3,p=4$"
# OWASP Password Storage Cheat Sheet: Argon2id with at least m=19 MiB, t=2, p=1.
OWASP_MIN_MEMORY_KIB = 19 * 1024
OWASP_MIN_TIME_COST = 2
OWASP_MIN_PARALLELISM = 1


def bcrypt_hash(password: str, prefix: str = "$2b$") -> str:
    """A legacy hash as a Node app stored it: bcrypt cost 10, `$2a$` from bcryptjs."""
    made = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    assert made.startswith("$2b$10$")
    return prefix + made[len("$2b$") :]


def assert_current_argon2id(stored_hash: str) -> None:
    assert stored_hash.startswith(ARGON2ID_DEFAULTS), stored_hash


class RecordingHasher(PasswordHasher):
    """A real hasher that remembers every `waste_time` call."""

    def __init__(self) -> None:
        super().__init__()
        self.wasted: list[str] = []

    async def waste_time(self, password: str) -> None:
        self.wasted.append(password)
        await super().waste_time(password)


class Argon2Spy(argon2.PasswordHasher):
    """Real Argon2id with the library defaults that records, for every verification, the
    parameters of the hash checked (what it costs) and the thread it ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.verified: list[tuple[argon2.Parameters, str]] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        text = hash if isinstance(hash, str) else hash.decode()
        self.verified.append((argon2.extract_parameters(text), threading.current_thread().name))
        return super().verify(hash, password)


@pytest.fixture(scope="module")
def recording_hasher() -> RecordingHasher:
    return RecordingHasher()


@pytest.fixture
def fresh_recording_hasher(recording_hasher: RecordingHasher) -> RecordingHasher:
    recording_hasher.wasted.clear()
    return recording_hasher


# --- new hashes -----------------------------------------------------------------------


async def test_a_new_hash_is_argon2id_with_the_library_defaults(hasher: PasswordHasher) -> None:
    assert_current_argon2id(await hasher.hash(PASSWORD))


async def test_a_new_hash_meets_the_owasp_argon2id_minimums(hasher: PasswordHasher) -> None:
    params = argon2.extract_parameters(await hasher.hash(PASSWORD))

    assert params.type is argon2.Type.ID
    assert params.memory_cost >= OWASP_MIN_MEMORY_KIB
    assert params.time_cost >= OWASP_MIN_TIME_COST
    assert params.parallelism >= OWASP_MIN_PARALLELISM


async def test_two_hashes_of_one_password_differ_by_salt(hasher: PasswordHasher) -> None:
    assert await hasher.hash(PASSWORD) != await hasher.hash(PASSWORD)


async def test_the_right_password_verifies(hasher: PasswordHasher) -> None:
    result = await hasher.verify(await hasher.hash(PASSWORD), PASSWORD)

    assert result.ok


async def test_a_current_hash_needs_no_upgrade(hasher: PasswordHasher) -> None:
    result = await hasher.verify(await hasher.hash(PASSWORD), PASSWORD)

    assert result.upgraded_hash is None


async def test_a_wrong_password_does_not_verify(hasher: PasswordHasher) -> None:
    result = await hasher.verify(await hasher.hash(PASSWORD), PASSWORD + "!")

    assert not result.ok
    assert result.upgraded_hash is None


# --- legacy and weaker hashes -----------------------------------------------------------


@pytest.mark.parametrize("prefix", ["$2b$", "$2a$"])
async def test_a_legacy_bcrypt_hash_verifies(hasher: PasswordHasher, prefix: str) -> None:
    result = await hasher.verify(bcrypt_hash(PASSWORD, prefix), PASSWORD)

    assert result.ok


@pytest.mark.parametrize("prefix", ["$2b$", "$2a$"])
async def test_a_legacy_bcrypt_hash_is_upgraded_to_argon2id(
    hasher: PasswordHasher, prefix: str
) -> None:
    result = await hasher.verify(bcrypt_hash(PASSWORD, prefix), PASSWORD)

    assert result.upgraded_hash is not None
    assert_current_argon2id(result.upgraded_hash)
    assert (await hasher.verify(result.upgraded_hash, PASSWORD)).ok


@pytest.mark.parametrize("prefix", ["$2b$", "$2a$"])
async def test_a_wrong_password_against_bcrypt_is_refused_without_upgrade(
    hasher: PasswordHasher, prefix: str
) -> None:
    result = await hasher.verify(bcrypt_hash(PASSWORD, prefix), "not the password")

    assert not result.ok
    assert result.upgraded_hash is None


async def test_a_2y_bcrypt_hash_from_php_verifies(hasher: PasswordHasher) -> None:
    stored = "$2y$" + bcrypt_hash(PASSWORD, "$2b$")[4:]

    assert (await hasher.verify(stored, PASSWORD)).ok


@pytest.mark.parametrize("prefix", ["$2b$", "$2a$"])
async def test_a_bcrypt_hash_is_kept_when_upgrading_bcrypt_is_off(
    hasher: PasswordHasher, prefix: str
) -> None:
    result = await hasher.verify(bcrypt_hash(PASSWORD, prefix), PASSWORD, upgrade_bcrypt=False)

    assert result.ok
    assert result.upgraded_hash is None


async def test_a_weaker_argon2_hash_is_upgraded_even_when_upgrading_bcrypt_is_off(
    hasher: PasswordHasher,
) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)

    result = await hasher.verify(weak, PASSWORD, upgrade_bcrypt=False)

    assert result.upgraded_hash is not None


@pytest.mark.parametrize("kind", [argon2.Type.I, argon2.Type.D])
async def test_an_argon2i_or_argon2d_hash_verifies_and_becomes_argon2id(
    hasher: PasswordHasher, kind: argon2.Type
) -> None:
    other = argon2.PasswordHasher(type=kind).hash(PASSWORD)

    result = await hasher.verify(other, PASSWORD)

    assert result.ok
    assert result.upgraded_hash is not None
    assert_current_argon2id(result.upgraded_hash)


@pytest.mark.parametrize(
    ("stored", "scheme"),
    [
        ("$2a$10$" + "a" * 53, "bcrypt"),
        ("$2b$12$" + "./A9" * 13 + "z", "bcrypt"),
        ("$2y$04$" + "a" * 53, "bcrypt"),
        ("$2x$10$" + "a" * 53, None),
        ("$2b$10$" + "a" * 52, None),
        ("$2b$03$" + "a" * 53, None),
        ("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$" + "A" * 43, "argon2"),
        ("$argon2i$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$" + "A" * 43, "argon2"),
        ("$argon2id$v=19$m=65536,t=3,p=4$broken", None),
        ("pbkdf2_sha256$600000$salt$hash", None),
        ("plain text", None),
        ("", None),
    ],
)
def test_hash_format_names_the_schemes_authsvc_verifies(stored: str, scheme: str | None) -> None:
    assert hash_format(stored) == scheme


async def test_an_unknown_format_is_a_failed_check_that_says_so(hasher: PasswordHasher) -> None:
    result = await hasher.verify("pbkdf2_sha256$600000$salt$hash", PASSWORD)

    assert (result.ok, result.upgraded_hash, result.unknown_format) == (False, None, True)


async def test_a_weaker_argon2_hash_verifies_and_is_upgraded(hasher: PasswordHasher) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)

    result = await hasher.verify(weak, PASSWORD)

    assert result.ok
    assert result.upgraded_hash is not None
    assert_current_argon2id(result.upgraded_hash)


async def test_a_wrong_password_against_a_weaker_argon2_hash_is_not_upgraded(
    hasher: PasswordHasher,
) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)

    result = await hasher.verify(weak, "not the password")

    assert not result.ok
    assert result.upgraded_hash is None


@pytest.mark.parametrize(
    "stored_hash",
    [
        "",
        "garbage",
        "$2b$10$corrupt",
        "$2a$99$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
        "$argon2id$v=19$m=65536,t=3,p=4$bad",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$" + "A" * 10,
    ],
)
async def test_a_corrupt_stored_hash_is_a_failed_check_not_an_error(
    hasher: PasswordHasher, stored_hash: str
) -> None:
    result = await hasher.verify(stored_hash, PASSWORD)

    assert not result.ok
    assert result.upgraded_hash is None


# --- policy ---------------------------------------------------------------------------


async def test_verify_refuses_a_password_over_the_byte_limit_even_when_it_matches(
    hasher: PasswordHasher,
) -> None:
    too_long = "x" * (MAX_PASSWORD_BYTES + 1)
    stored = argon2.PasswordHasher().hash(too_long)

    result = await hasher.verify(stored, too_long)

    assert not result.ok


def test_check_policy_refuses_a_password_over_the_byte_limit(hasher: PasswordHasher) -> None:
    with pytest.raises(PasswordPolicyError):
        hasher.check_policy("x" * (MAX_PASSWORD_BYTES + 1))


def test_check_policy_counts_the_limit_in_utf8_bytes_not_characters(
    hasher: PasswordHasher,
) -> None:
    two_byte_chars = "é" * (MAX_PASSWORD_BYTES // 2 + 1)
    assert len(two_byte_chars) < MAX_PASSWORD_BYTES

    with pytest.raises(PasswordPolicyError):
        hasher.check_policy(two_byte_chars)


def test_check_policy_accepts_a_password_of_exactly_the_byte_limit(
    hasher: PasswordHasher,
) -> None:
    hasher.check_policy("x" * MAX_PASSWORD_BYTES)


async def test_hash_refuses_a_short_password(hasher: PasswordHasher) -> None:
    with pytest.raises(PasswordPolicyError, match="at least 8"):
        await hasher.hash("seven77")


async def test_hash_accepts_an_eight_character_password(hasher: PasswordHasher) -> None:
    assert_current_argon2id(await hasher.hash("eight888"))


async def test_a_64_character_unicode_password_round_trips(hasher: PasswordHasher) -> None:
    password = ("pässwörd-🔑-Ωμέγα-密码-" * 4)[:64]
    assert len(password) == 64
    assert len(password.encode()) > 64

    result = await hasher.verify(await hasher.hash(password), password)

    assert result.ok


async def test_a_64_character_unicode_password_differing_in_the_last_character_fails(
    hasher: PasswordHasher,
) -> None:
    password = ("pässwörd-🔑-Ωμέγα-密码-" * 4)[:64]
    stored = await hasher.hash(password)

    result = await hasher.verify(stored, password[:-1] + "x")

    assert not result.ok


async def test_waste_time_does_not_raise(hasher: PasswordHasher) -> None:
    await hasher.waste_time(PASSWORD)


@pytest.mark.parametrize(
    "password", [PASSWORD, "x" * (MAX_PASSWORD_BYTES * 4)], ids=["typical", "oversized"]
)
async def test_waste_time_runs_one_argon2_check_as_costly_as_a_real_one_in_the_pool(
    password: str,
) -> None:
    spy = Argon2Spy()
    hasher = PasswordHasher(spy)
    real_cost = argon2.extract_parameters(await hasher.hash(PASSWORD))

    await hasher.waste_time(password)

    assert [
        (parameters, thread.startswith("authsvc-hash")) for parameters, thread in spy.verified
    ] == [(real_cost, True)]


async def test_verifying_an_oversized_password_still_runs_an_argon2_check() -> None:
    spy = Argon2Spy()
    hasher = PasswordHasher(spy)
    stored = await hasher.hash(PASSWORD)

    result = await hasher.verify(stored, "x" * (MAX_PASSWORD_BYTES + 1))

    assert not result.ok
    assert len(spy.verified) == 1


async def test_waste_time_does_not_raise_for_an_oversized_password(
    hasher: PasswordHasher,
) -> None:
    await hasher.waste_time("x" * (MAX_PASSWORD_BYTES * 4))


async def test_a_password_with_a_lone_surrogate_is_refused_not_raised(
    hasher: PasswordHasher,
) -> None:
    result = await hasher.verify(await hasher.hash(PASSWORD), "\ud800" + PASSWORD)

    assert not result.ok


# --- authorize: unknown email and wrong password look the same ---------------------------


@pytest.fixture(scope="module")
async def known_user(recording_hasher: RecordingHasher) -> UserRecord:
    return UserRecord(
        id="ckuser00000000000000000001",
        email="known@example.com",
        password_hash=await recording_hasher.hash(PASSWORD),
    )


async def test_authorize_with_an_unknown_email_wastes_one_password_check(
    fresh_recording_hasher: RecordingHasher, known_user: UserRecord
) -> None:
    users = InMemoryUsers(known_user)

    await authorize(
        {"email": "nobody@example.com", "password": PASSWORD},
        users=users,
        hasher=fresh_recording_hasher,
    )

    assert fresh_recording_hasher.wasted == [PASSWORD]


async def test_authorize_with_an_unknown_email_runs_a_real_argon2_check(
    known_user: UserRecord,
) -> None:
    spy = Argon2Spy()

    result = await authorize(
        {"email": "nobody@example.com", "password": PASSWORD},
        users=InMemoryUsers(known_user),
        hasher=PasswordHasher(spy),
    )

    assert result is None
    assert [parameters for parameters, _ in spy.verified] == [
        argon2.extract_parameters(known_user.password_hash or "")
    ]


async def test_authorize_with_an_invalid_email_still_wastes_a_password_check(
    fresh_recording_hasher: RecordingHasher, known_user: UserRecord
) -> None:
    await authorize(
        {"email": "not an email", "password": PASSWORD},
        users=InMemoryUsers(known_user),
        hasher=fresh_recording_hasher,
    )

    assert fresh_recording_hasher.wasted == [PASSWORD]


async def test_authorize_for_a_user_without_a_password_wastes_a_password_check(
    fresh_recording_hasher: RecordingHasher,
) -> None:
    oauth_only = UserRecord(id="ckuser00000000000000000002", email="oauth@example.com")

    result = await authorize(
        {"email": "oauth@example.com", "password": PASSWORD},
        users=InMemoryUsers(oauth_only),
        hasher=fresh_recording_hasher,
    )

    assert result is None
    assert fresh_recording_hasher.wasted == [PASSWORD]


async def test_authorize_with_a_wrong_password_does_a_real_check_not_a_wasted_one(
    fresh_recording_hasher: RecordingHasher, known_user: UserRecord
) -> None:
    await authorize(
        {"email": "known@example.com", "password": "not the password"},
        users=InMemoryUsers(known_user),
        hasher=fresh_recording_hasher,
    )

    assert fresh_recording_hasher.wasted == []


async def test_authorize_gives_the_same_none_for_unknown_email_and_wrong_password(
    fresh_recording_hasher: RecordingHasher, known_user: UserRecord
) -> None:
    users = InMemoryUsers(known_user)

    unknown = await authorize(
        {"email": "nobody@example.com", "password": PASSWORD},
        users=users,
        hasher=fresh_recording_hasher,
    )
    wrong = await authorize(
        {"email": "known@example.com", "password": "not the password"},
        users=users,
        hasher=fresh_recording_hasher,
    )

    assert unknown is None
    assert wrong is None


async def test_authorize_returns_the_user_for_the_right_password(
    fresh_recording_hasher: RecordingHasher, known_user: UserRecord
) -> None:
    result = await authorize(
        {"email": "KNOWN@example.com", "password": PASSWORD},
        users=InMemoryUsers(known_user),
        hasher=fresh_recording_hasher,
    )

    assert result == known_user


async def test_authorize_stores_the_upgraded_hash_of_a_legacy_user(
    fresh_recording_hasher: RecordingHasher,
) -> None:
    legacy = UserRecord(
        id="ckuser00000000000000000003",
        email="legacy@example.com",
        password_hash=bcrypt_hash(PASSWORD, "$2a$"),
    )
    users = InMemoryUsers(legacy)

    await authorize(
        {"email": "legacy@example.com", "password": PASSWORD},
        users=users,
        hasher=fresh_recording_hasher,
    )

    assert [user_id for user_id, _ in users.password_updates] == [legacy.id]
    assert_current_argon2id(users.password_updates[0][1])


async def test_authorize_with_a_lone_surrogate_password_returns_none(
    fresh_recording_hasher: RecordingHasher, known_user: UserRecord
) -> None:
    result = await authorize(
        {"email": "nobody@example.com", "password": "\ud800"},
        users=InMemoryUsers(known_user),
        hasher=fresh_recording_hasher,
    )

    assert result is None


async def test_hashing_runs_in_low_priority_threads(hasher: PasswordHasher) -> None:
    def own_niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert await hasher._run(own_niceness) == HASHING_NICENESS
    assert own_niceness() == 0  # the event loop's thread keeps its normal priority


async def test_the_event_loop_keeps_running_while_a_password_is_hashed(
    hasher: PasswordHasher,
) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await hasher.hash("a long enough password")
    task.cancel()
    assert ticks > 10


# --- addresses stored before IDNA 2008 ----------------------------------------------------
# Before authsvc mapped domains with UTS #46 / IDNA 2008, `ada@straße.de` was stored as
# `ada@strasse.de` (IDNA 2003). Under IDNA 2008 these are two domains, possibly with two
# owners, so nothing maps one onto the other: the stored form keeps signing in as it is.


async def test_an_address_stored_in_its_idna_2003_form_still_signs_in_as_stored(
    app: AuthService,
) -> None:
    user = await add_user(app, "ada@strasse.de", PASSWORD)

    result = await authorize(
        {"email": "Ada@Strasse.de", "password": PASSWORD},
        users=app.services.users,
        hasher=app.services.hasher,
    )

    assert result is not None and result.id == user.id


async def test_the_sharp_s_domain_does_not_sign_in_to_the_ss_domain_account(
    app: AuthService,
) -> None:
    await add_user(app, "ada@strasse.de", PASSWORD)

    result = await authorize(
        {"email": "ada@straße.de", "password": PASSWORD},
        users=app.services.users,
        hasher=app.services.hasher,
    )

    assert result is None
