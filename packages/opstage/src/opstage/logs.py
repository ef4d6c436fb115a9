"""Process logging: JSON lines when not on a terminal, human lines on one; secrets masked.

``OPSTAGE_LOG_FORMAT=auto`` (the default) picks JSON when stderr is not a terminal (containers,
systemd, files) and text on one. Every line goes through the redaction nets of
``domain.redaction``: raw agent and registration tokens are masked in the message, in string
fields and inside structured fields; secret-named keys lose their values. The access log
(``opstage.access``) writes one line per request carrying its ``request_id``, which is also the
``X-Request-Id`` response header.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opstage.domain.redaction import mask_token_values, redact

SQL_LOGGERS = ("aiosqlite", "asyncpg", "sqlalchemy")
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return mask_token_values(value)
    if isinstance(value, dict | list | tuple):
        return redact(value)  # secret-named keys inside lose their values; tokens masked
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask_token_values(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = _clean(value)
        if record.exc_info:
            out["exc"] = mask_token_values(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        if request_id:
            line += f"  [{request_id}]"
        return mask_token_values(line)


def configure(level: str = "INFO", fmt: str = "auto") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    # Database drivers log every statement *with its parameters* at DEBUG/INFO (session and CSRF
    # tokens among them): they stay at WARNING whatever OPSTAGE_LOG_LEVEL says.
    for chatty in SQL_LOGGERS:
        logging.getLogger(chatty).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").propagate = True
