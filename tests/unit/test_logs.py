"""Log configuration: JSON lines, and nothing token-, secret- or credential-shaped survives."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from authsvc.logs import REDACTED, JsonFormatter, RedactingFilter, redact
from authsvc.tokens import TokenCodec
from tests.conftest import SECRET
from tests.processes import ROOT

TOKEN = TokenCodec([SECRET]).encode({"sub": "u1"}, 600)


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"bad {TOKEN}")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("authsvc.test", logging.INFO, __file__, 1, message, args, exc_info)


def test_a_session_token_is_redacted() -> None:
    assert redact(f"cookie={TOKEN}; x") == f"cookie={REDACTED}; x"


def test_a_bearer_credential_is_redacted() -> None:
    assert redact("Authorization: Bearer abc.def-123") == f"Authorization: Bearer {REDACTED}"


def test_a_configured_secret_is_redacted() -> None:
    assert redact(f"secret is {SECRET}!", [SECRET]) == f"secret is {REDACTED}!"


def test_the_filter_cleans_the_formatted_message() -> None:
    entry = record("user %s sent %s", "u1", TOKEN)
    RedactingFilter([SECRET]).filter(entry)
    assert entry.getMessage() == f"user u1 sent {REDACTED}"


def test_the_filter_keeps_only_the_type_of_an_exception() -> None:
    entry = record("lookup failed", exc=True)
    RedactingFilter().filter(entry)
    formatted = logging.Formatter().format(entry)
    assert formatted == "lookup failed (ValueError)"


def test_the_json_formatter_writes_one_object_with_the_fields() -> None:
    entry = record("GET /x 200")
    entry.fields = {"status": 200, "path": "/x"}
    line = JsonFormatter().format(entry)
    assert "\n" not in line
    payload = json.loads(line)
    assert (payload["level"], payload["logger"], payload["message"]) == (
        "info",
        "authsvc.test",
        "GET /x 200",
    )
    assert (payload["status"], payload["path"]) == (200, "/x")


def test_the_serve_configuration_logs_json_without_secrets() -> None:
    script = f"""
import logging, logging.config
from authsvc.logs import log_config
from tests.conftest import make_settings
logging.config.dictConfig(log_config(make_settings(log_format="json")))
logging.getLogger("uvicorn.error").warning("leak %s and {SECRET}", "{TOKEN}")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    payload = json.loads(result.stderr)
    assert payload["message"] == f"leak {REDACTED} and {REDACTED}"
    assert payload["logger"] == "uvicorn.error"
