"""The recorded `@auth/core` 0.41.3 decodes in tests/data/vectors/vectors.json, as test cases.

Each case is (token, salt, secrets, recorded): what `@auth/core/jwt` `decode` returned for
that token with those secrets and that salt, or None where it threw. test_tokens_v5.py
holds authsvc's codec to them; test_interop_authjs.py holds the real library to them too.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import DATA

RECORDED: dict[str, Any] = json.loads((DATA / "vectors" / "vectors.json").read_text())
SESSION_COOKIE = "authjs.session-token"


def recorded_decodes() -> list[Any]:
    vector = {entry["name"]: entry for entry in RECORDED["vectors"]}
    plain, secure = vector["v5_authjs.session-token"], vector["v5___Secure-authjs.session-token"]
    rotation, kidless = vector["v5_secret_rotation"], vector["v5_kidless_token_rotation"]
    new, old = rotation["secrets"]["NEW"], rotation["secrets"]["OLD"]
    new_token = rotation["token_encoded_with_array_NEW_then_OLD"]
    fixed, cross = vector["v5_deterministic_fixed_iv"], vector["cross_v4_token_decoded_by_v5"]
    cases = {
        "cookie name": (plain["token"], plain["salt"], [plain["secret"]], plain["decoded"]),
        "secure cookie name": (
            secure["token"],
            secure["salt"],
            [secure["secret"]],
            secure["decoded"],
        ),
        "expired": (vector["v5_expired"]["token"], SESSION_COOKIE, [plain["secret"]], None),
        "fixed iv": (fixed["token"], fixed["salt"], [fixed["secret"]], fixed["decoded"]),
        "new secret's token, new and old secrets": (
            new_token,
            rotation["salt"],
            [new, old],
            rotation["decode_tokenNew_with_NEW_OLD"]["payload"],
        ),
        "new secret's token, old secret only": (new_token, rotation["salt"], [old], None),
        "old secret's token, new and old secrets (kid match)": (
            rotation["token_encoded_with_OLD_only"],
            rotation["salt"],
            [new, old],
            rotation["decode_tokenOld_with_NEW_OLD"]["payload"],
        ),
        "no kid, its secret first": (
            kidless["token"],
            kidless["salt"],
            [old],
            kidless["decode_with_OLD"]["payload"],
        ),
        "no kid, its secret second": (kidless["token"], kidless["salt"], [new, old], None),
        "next-auth v4 token": (cross["token"], cross["v5_salt"], [cross["secret"]], None),
    }
    return [pytest.param(*case, id=name) for name, case in cases.items()]
