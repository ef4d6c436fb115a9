"""The SDK's one logger, and the filter that keeps raw tokens out of it.

The SDK never formats a token into a log line in the first place; the filter is a second line
of defence against a token echoed inside an exception message or a server error. It sits on
the ``opstage_agent`` logger itself, which is why every module logs through ``log`` here
rather than through a child logger of its own (logger filters do not apply to children).
"""

from __future__ import annotations

import logging
import re

TOKEN_PATTERN = re.compile(r"opstage_(reg|agent)_[A-Za-z0-9_\-]+")

log = logging.getLogger("opstage_agent")


def mask_tokens(text: str) -> str:
    """Replace every ``opstage_reg_…``/``opstage_agent_…`` value by its prefix and ``***``."""
    return TOKEN_PATTERN.sub(lambda m: f"opstage_{m.group(1)}_***", text)


class TokenMaskingFilter(logging.Filter):
    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if TOKEN_PATTERN.search(message):
            record.msg = mask_tokens(message)
            record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set, so the traceback is masked once here.
            record.exc_text = mask_tokens(self._formatter.formatException(record.exc_info))
        return True


log.addFilter(TokenMaskingFilter())
