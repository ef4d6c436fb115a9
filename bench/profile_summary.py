"""Summarise a py-spy ``--format raw`` (collapsed stacks) profile: top self and inclusive frames.

    python bench/profile_summary.py bench/results/heartbeat-profile.txt [--top 25] [--match opstage]

Frames are "function (file)" with line numbers dropped, so one function is one row. Inclusive
counts a function once per sample however deep it recurs. ``--match`` keeps only inclusive rows
whose frame contains that text (e.g. ``opstage/`` for the project's own code).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")
# Frames under which every sample of a thread sits: left out of the inclusive list.
_ROOTS = ("click/", "opstage/cli/", "uvicorn/main.py", "uvicorn/server.py", "uvicorn/_compat.py",
          "asyncio/runners.py", "threading.py", "<module>")  # fmt: skip
_SITE = re.compile(r"^.*/(site-packages|lib/python3\.\d+|src)/")


def frame_name(frame: str) -> str:
    """`handle (/x/site-packages/fastapi/routing.py:1373)` -> `handle (fastapi/routing.py)`."""
    name, _, where = frame.partition(" (")
    where = _SITE.sub("", _LINE.sub(")", "(" + where)[1:])
    return f"{name} ({where}" if where else name


def package(frame: str) -> str:
    """`handle (fastapi/routing.py)` -> `fastapi`; `wait (threading.py)` -> `threading`."""
    where = frame.rpartition(" (")[2].rstrip(")")
    return where.split("/", 1)[0].removesuffix(".py") if where else "?"


def summarise(path: Path, top: int = 25, match: str | None = None) -> str:
    self_counts: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        if frames and frames[0].startswith("thread ("):  # py-spy --threads: "thread (id): name"
            threads[frames.pop(0).partition("): ")[2] or "?"] += n
        frames = [frame_name(f) for f in frames]
        if not frames:
            continue
        self_counts[frames[-1]] += n
        packages[package(frames[-1])] += n
        for f in set(frames):
            incl_counts[f] += n
    if not total:
        return "no samples"
    out = [f"{total} samples"]
    if threads:
        out += [f"  {100 * n / total:5.1f}%  thread {t}" for t, n in threads.most_common()]
    out += ["", "self, by package:"]
    out += [f"  {100 * n / total:5.1f}%  {p}" for p, n in packages.most_common(12)]
    out += ["", "self (where the time is spent):"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in self_counts.most_common(top)]
    out += ["", "inclusive (time under a frame):"]
    rows = [
        (f, n)
        for f, n in incl_counts.most_common()
        if (match is None or match in f) and not any(r in f for r in _ROOTS)
    ]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in rows[:top]]
    return "\n".join(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default=None)
    args = parser.parse_args()
    print(summarise(args.profile, args.top, args.match))
