"""``opstage demo``: what ``make demo`` does, for those who installed the wheel."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from opstage.cli.common import json_option, wants_json


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data-demo"),
    show_default=True,
    help="Where the demo keeps its database, log and agent token.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@json_option
def demo(data_dir: Path, host: str, port: int) -> None:
    """Start Opstage (dev mode) and the demo Capsule Service; print the URL and the login.

    Ctrl-C, SIGTERM or SIGHUP stop both. Needs the Python agent SDK (`opstage-agent`).
    With --json the start-up summary (URL, login, process ids) is one JSON line.
    """
    from opstage.demo.launch import run

    sys.exit(run(data_dir, host, port, as_json=wants_json()))


COMMANDS = [demo]
