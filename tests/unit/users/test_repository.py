"""The SQLAlchemy user store, on a fresh SQLite file and on PostgreSQL."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from authsvc.db import Database
from authsvc.users.models import Role
from authsvc.users.repository import SqlAlchemyUserRepository, UserExistsError

CUID2 = re.compile(r"[a-z][a-z0-9]{24}")


def unique_email() -> str:
    """A fresh address, so tests sharing the PostgreSQL database never collide."""
    return f"user-{uuid.uuid4().hex}@example.com"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    yield db
    await db.dispose()


@pytest.fixture
def users(database: Database) -> SqlAlchemyUserRepository:
    return SqlAlchemyUserRepository(database.sessions)


async def test_a_created_user_is_found_by_email(users: SqlAlchemyUserRepository) -> None:
    email = unique_email()
    created = await users.create(
        email=email,
        name="Ada",
        password_hash="$argon2id$stub",
        role=Role.STAFF,
        image="https://example.com/ada.png",
        fundraiser_id="fund-1",
    )

    assert await users.get_by_email(email) == created


async def test_a_created_user_is_found_by_id(users: SqlAlchemyUserRepository) -> None:
    created = await users.create(email=unique_email(), name="Ada")

    assert await users.get_by_id(created.id) == created


async def test_a_created_user_keeps_every_field(users: SqlAlchemyUserRepository) -> None:
    email = unique_email()
    created = await users.create(
        email=email,
        name="Ada",
        password_hash="$argon2id$stub",
        role=Role.WHOLESALE,
        image="https://example.com/ada.png",
        fundraiser_id="fund-1",
    )

    found = await users.get_by_id(created.id)

    assert found is not None
    assert (found.email, found.name, found.password_hash) == (email, "Ada", "$argon2id$stub")
    assert (found.role, found.image, found.fundraiser_id) == (
        Role.WHOLESALE,
        "https://example.com/ada.png",
        "fund-1",
    )


async def test_an_unknown_email_is_not_found(users: SqlAlchemyUserRepository) -> None:
    assert await users.get_by_email(unique_email()) is None


async def test_an_unknown_id_is_not_found(users: SqlAlchemyUserRepository) -> None:
    assert await users.get_by_id("nosuchuserid0000000000000") is None


async def test_a_new_user_is_a_customer_by_default(users: SqlAlchemyUserRepository) -> None:
    created = await users.create(email=unique_email())

    found = await users.get_by_id(created.id)

    assert created.role is Role.CUSTOMER
    assert found is not None
    assert found.role is Role.CUSTOMER


async def test_a_row_inserted_without_a_role_gets_customer_from_the_database(
    database: Database, users: SqlAlchemyUserRepository
) -> None:
    user_id = f"raw{uuid.uuid4().hex[:22]}"
    async with database.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO users (id, email) VALUES (:id, :email)"),
            {"id": user_id, "email": unique_email()},
        )

    found = await users.get_by_id(user_id)

    assert found is not None
    assert found.role is Role.CUSTOMER


async def test_a_new_user_id_looks_like_a_cuid2(users: SqlAlchemyUserRepository) -> None:
    created = await users.create(email=unique_email())

    assert CUID2.fullmatch(created.id), created.id


async def test_new_user_ids_are_distinct(users: SqlAlchemyUserRepository) -> None:
    ids = {(await users.create(email=unique_email())).id for _ in range(5)}

    assert len(ids) == 5


async def test_a_duplicate_email_raises_user_exists(users: SqlAlchemyUserRepository) -> None:
    email = unique_email()
    await users.create(email=email)

    with pytest.raises(UserExistsError):
        await users.create(email=email, name="Someone else")


async def test_a_failed_duplicate_leaves_the_first_user_untouched(
    users: SqlAlchemyUserRepository,
) -> None:
    email = unique_email()
    first = await users.create(email=email, name="First")
    with pytest.raises(UserExistsError):
        await users.create(email=email, name="Second")

    assert await users.get_by_email(email) == first


async def test_set_role_returns_the_user_with_the_new_role(
    users: SqlAlchemyUserRepository,
) -> None:
    email = unique_email()
    created = await users.create(email=email)

    updated = await users.set_role(email, Role.ADMIN)

    assert updated is not None
    assert (updated.id, updated.role) == (created.id, Role.ADMIN)


async def test_set_role_persists_the_new_role(users: SqlAlchemyUserRepository) -> None:
    email = unique_email()
    await users.create(email=email)

    await users.set_role(email, Role.FUNDRAISER)
    found = await users.get_by_email(email)

    assert found is not None
    assert found.role is Role.FUNDRAISER


async def test_set_role_returns_none_for_an_unknown_email(
    users: SqlAlchemyUserRepository,
) -> None:
    assert await users.set_role(unique_email(), Role.ADMIN) is None


async def test_set_password_hash_persists(users: SqlAlchemyUserRepository) -> None:
    created = await users.create(email=unique_email(), password_hash="$2b$10$old")

    await users.set_password_hash(created.id, "$argon2id$new")
    found = await users.get_by_id(created.id)

    assert found is not None
    assert found.password_hash == "$argon2id$new"


async def test_set_password_hash_changes_only_that_user(
    users: SqlAlchemyUserRepository,
) -> None:
    target = await users.create(email=unique_email(), password_hash="$2b$10$old")
    bystander = await users.create(email=unique_email(), password_hash="$2b$10$keep")

    await users.set_password_hash(target.id, "$argon2id$new")

    assert await users.get_by_id(bystander.id) == bystander
