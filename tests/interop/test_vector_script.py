"""tests/node/make-vectors.cjs regenerates the recorded next-auth v4 vectors.

The script runs the real next-auth@4.24.15 of tests/node on the inputs recorded in
tests/data/vectors/vectors.json. Key derivations are deterministic and must match byte for
byte; tokens carry a random IV and fresh iat/exp/jti, so they are compared by shape and by
what they decode to (and the same decode errors, message for message).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.conftest import DATA
from tests.node_oracle import NODE_DIR
from tests.processes import require_binary

pytestmark = pytest.mark.node

SCRIPT = NODE_DIR / "make-vectors.cjs"
# What a fresh encode changes: when it was made and its id.
FRESH_CLAIMS = {"iat", "exp", "jti"}


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "vectors" / "vectors.json").read_text())
    return data


@pytest.fixture(scope="module")
def regenerated() -> dict[str, Any]:
    node = require_binary("node")
    done = subprocess.run(
        [node, str(SCRIPT)], capture_output=True, text=True, check=True, timeout=120
    )
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def without_fresh_claims(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: item for key, item in value.items() if key not in FRESH_CLAIMS}
    return value


def test_the_script_uses_the_next_auth_the_vectors_came_from(
    recorded: dict[str, Any], regenerated: dict[str, Any]
) -> None:
    for library in ("next-auth", "jose_used_by_next_auth", "@panva/hkdf"):
        assert regenerated["versions"][library] == recorded["versions"][library]


def test_the_key_derivations_are_reproduced_byte_for_byte(
    recorded: dict[str, Any], regenerated: dict[str, Any]
) -> None:
    v4 = [entry for entry in recorded["kdf"] if entry["library"] == "next-auth v4"]
    assert regenerated["kdf"] == v4


def test_every_regenerated_vector_has_the_recorded_fields(
    recorded: dict[str, Any], regenerated: dict[str, Any]
) -> None:
    by_name = {entry["name"]: entry for entry in recorded["vectors"]}
    assert len(regenerated["vectors"]) >= 9
    for entry in regenerated["vectors"]:
        assert sorted(entry) == sorted(by_name[entry["name"]]), entry["name"]


def test_every_regenerated_vector_decodes_as_recorded(
    recorded: dict[str, Any], regenerated: dict[str, Any]
) -> None:
    by_name = {entry["name"]: entry for entry in recorded["vectors"]}
    for entry in regenerated["vectors"]:
        was = by_name[entry["name"]]
        assert entry["decode_error"] == was["decode_error"], entry["name"]
        assert without_fresh_claims(entry["decoded"]) == without_fresh_claims(was["decoded"])


def test_every_regenerated_token_has_the_recorded_shape(
    recorded: dict[str, Any], regenerated: dict[str, Any]
) -> None:
    """Same protected header and number of parts; a new random IV, so never the same bytes."""
    by_name = {entry["name"]: entry for entry in recorded["vectors"]}
    for entry in regenerated["vectors"]:
        token, was = entry["token"], by_name[entry["name"]]["token"]
        if (entry["decoded"] is None and entry["decode_error"] is None) or "." not in was:
            assert token == was  # empty or malformed input, passed through unchanged
            continue
        parts, recorded_parts = token.split("."), was.split(".")
        assert (len(parts), parts[0]) == (len(recorded_parts), recorded_parts[0])
        if len(parts) == 5:
            assert parts[2] != recorded_parts[2]
