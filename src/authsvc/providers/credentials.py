"""Email + password sign-in (next-auth's Credentials provider with `authorize`).

Unknown email and wrong password are the same answer (None) and cost the same time:
an unknown account still pays for one Argon2 verification against a dummy hash.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from authsvc.callbacks import Account
from authsvc.users.emails import normalize_email
from authsvc.users.passwords import PasswordHasher
from authsvc.users.repository import UserRecord, UserRepository

log = logging.getLogger("authsvc.credentials")

PROVIDER_ID = "credentials"
PROVIDER_NAME = "Credentials"


async def authorize(
    credentials: Mapping[str, Any],
    *,
    users: UserRepository,
    hasher: PasswordHasher,
    rehash_bcrypt: bool = True,
) -> UserRecord | None:
    """The user these credentials belong to, or None. A bcrypt hash is rewritten as
    Argon2id after a success only with `rehash_bcrypt` (AUTHSVC_PASSWORD_REHASH)."""
    password = credentials.get("password")
    if not isinstance(password, str):
        password = ""
    email = normalize_email(credentials.get("email"))
    user = await users.get_by_email(email) if email else None
    if user is None or not user.password_hash:
        await hasher.waste_time(password)
        return None
    result = await hasher.verify(user.password_hash, password, upgrade_bcrypt=rehash_bcrypt)
    if result.unknown_format:
        # The same answer as a wrong password; the operator learns why (never the hash).
        log.warning("user %s has a password hash authsvc cannot verify: sign-in refused", user.id)
    if not result.ok:
        return None
    if result.upgraded_hash is not None:
        await users.set_password_hash(user.id, result.upgraded_hash)
        log.info("password hash upgraded to argon2id for user %s", user.id)
    return user


def account_for(user: UserRecord) -> Account:
    return Account(provider=PROVIDER_ID, type="credentials", provider_account_id=user.id)
