"""`opstage serve` on a SO_REUSEPORT socket, so that several processes share one port and the
kernel spreads connections over them (`bench/topics.py --servers N`). Bench only: Opstage has no
multi-process mode (on SQLite, cross-process wake-ups are missing, ADR 0005; several nodes are
a PostgreSQL deployment). The first process migrates; the others start once it answers.

    .venv/bin/python bench/reuseport_serve.py PORT [--migrate]
"""

from __future__ import annotations

import socket
import sys

import uvicorn
from opstage import logs
from opstage.api.http_protocol import DeadlineHttpProtocol
from opstage.cli.common import load_settings, refuse_without_first_owner
from opstage.server import create_server_app
from opstage.store.migrate import upgrade


def main() -> None:
    port = int(sys.argv[1])
    settings = load_settings(host="127.0.0.1", port=port, dev_mode=None).resolve_secrets()
    refuse_without_first_owner(settings)
    logs.configure(settings.log_level, settings.log_format)
    if "--migrate" in sys.argv[2:]:
        upgrade(settings.database_url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        create_server_app(settings),
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=5,
        http=DeadlineHttpProtocol.with_deadlines(
            settings.http_header_timeout_seconds, settings.http_body_timeout_seconds
        ),
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
