"""Logging for `authsvc serve`: text or JSON lines, never a token, a secret or a password.

authsvc's own code logs no token, secret or password in the first place (the tests check
it); the redacting filter is the second line, for text from elsewhere (a library's
message, an exception text): anything shaped like a JWT/JWE, a `Bearer` credential, or
one of the configured secrets becomes `[redacted]`. It sits on the handler, so it sees
every record from every logger, uvicorn's included.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from authsvc.settings import Settings

REDACTED = "[redacted]"
# Compact JWS/JWE: base64url segments separated by dots, starting with a JSON header.
_COMPACT_TOKEN = re.compile(r"eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){2,4}")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s,;\"']+")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _COMPACT_TOKEN.sub(REDACTED, text)
    return _BEARER.sub(rf"\1 {REDACTED}", text)


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted((s for s in secrets if s), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info or record.exc_text:
            # A traceback repeats messages and source lines; keep the exception type only.
            exc_type = record.exc_info[0] if record.exc_info else None
            record.msg = f"{record.getMessage()} ({getattr(exc_type, '__name__', 'error')})"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update({k: v for k, v in fields.items() if k not in payload})
        return json.dumps(payload, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` for uvicorn and authsvc (uvicorn applies it per worker)."""
    formatter: dict[str, Any] = {"format": TEXT_FORMAT}
    if settings.log_format == "json":
        formatter = {"()": "authsvc.logs.JsonFormatter"}
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact": {"()": "authsvc.logs.RedactingFilter", "secrets": settings.all_secrets}
        },
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["redact"],
            }
        },
        "loggers": {
            "authsvc": {"level": level},
            "uvicorn": {"level": level},
            # authsvc writes its own access log (authsvc.access), with the trusted client.
            "uvicorn.access": {"level": "WARNING"},
            # `serve` migrates SQLite at each start; only a problem is worth a line.
            "alembic": {"level": "WARNING"},
        },
        "root": {"handlers": ["stderr"], "level": level},
    }
