"""The ``opstage`` command run in this process, answering as the process would (ADR 0013).

``run_cli(args, env, stdin)`` returns the ``subprocess.CompletedProcess`` that
``subprocess.run(["opstage", *args], env=env, input=stdin, capture_output=True, text=True)``
would: the same arguments, an environment that is exactly ``env``, standard input that is no
terminal, stdout and stderr apart, and the exit status. What it saves is a process per command
(an interpreter start and the server's imports: seconds each on a loaded machine), and the CLI's
code is measured by coverage.

What the process would print that click does not see is printed here too: an exception that
escapes the command (``opstage --debug …``) is the interpreter's traceback on stderr and exit
status 1, and a log record of level WARNING or above from the command's own threads is the line
``logging.lastResort`` would write to stderr (the one-off commands configure no logging). So
"one line on stderr, no traceback" is checked as strictly as on a process.

A test that needs a process keeps one: signals, a terminal on stdin, a lock held by another
process, ``make demo``, the installed console script.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping, Sequence


class _LastResort(logging.Handler):
    """``logging.lastResort`` for the command: WARNING and above, the bare message, on the
    stderr of the moment (click's capture while the command runs). Records of threads that
    were running before the command (an in-process server's) are not the command's."""

    def __init__(self, foreign: set[int]) -> None:
        super().__init__(logging.WARNING)
        self.foreign = foreign

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread in self.foreign:
            return
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def run_cli(
    args: Sequence[str], env: Mapping[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    from click.testing import CliRunner
    from opstage.cli.main import cli

    # The command sees exactly ``env``: what it sets, and nothing of this process's own.
    changes: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    changes.update(env)
    me = threading.get_ident()
    handler = _LastResort({t.ident for t in threading.enumerate() if t.ident not in (None, me)})
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        result = CliRunner(env=changes, catch_exceptions=True).invoke(
            cli, list(args), input=stdin, prog_name="opstage"
        )
    finally:
        root.removeHandler(handler)
    stderr = result.stderr
    code = result.exit_code
    if result.exc_info is not None and not isinstance(result.exc_info[1], SystemExit):
        # Uncaught: the interpreter prints the traceback and exits with status 1.
        stderr += "".join(traceback.format_exception(*result.exc_info))
        code = 1
    return subprocess.CompletedProcess(["opstage", *args], code, result.stdout, stderr)
