"""The server process's open-file limit: every connected agent holds a socket (ADR 0020).

An agent's long-poll stays parked for up to 25 s, so a node serving N agents holds about N
sockets at once, plus its database files and the heartbeats in flight. Many systems start a
process with a soft limit of 1,024 and a far higher hard limit; a server left at the soft one
fails its 1,025th connection with ``EMFILE``. ``opstage serve`` raises the soft limit to the
hard one, as Go's runtime and the JVM do, and says what it got.
"""

from __future__ import annotations

import resource

# Sockets and files the server holds besides its agents' long-polls: the database and its
# WAL, the listening socket, the heartbeats and console requests in flight.
HEADROOM = 200
# Below this many parked agents the warning tells the operator how to raise the limit.
WARN_BELOW_AGENTS = 4_000
# A hard limit of "unlimited" still has a kernel ceiling (nr_open, 1,048,576 by default).
CEILING = 1_048_576


def raise_open_files_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = CEILING if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return CEILING if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        # Some kernels cap a process below its hard limit (macOS: kern.maxfilesperproc).
        return soft
    return target


def agents_within(limit: int) -> int:
    """How many agents' long-polls a process with this open-file limit can park."""
    return max(0, limit - HEADROOM)
