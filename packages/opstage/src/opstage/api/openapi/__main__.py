"""``python -m opstage.api.openapi [PATH] [--check]``: write the committed OpenAPI document.

``--check`` writes nothing and exits 1 when PATH differs from what the code declares (ADR 0012).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from opstage.api.openapi.dump import DEFAULT_PATH, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opstage.api.openapi")
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="fail when PATH is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not args.path.exists() or args.path.read_text() != text:
            print(
                f"{args.path} is out of date: run `python -m opstage.api.openapi`", file=sys.stderr
            )
            return 1
        return 0
    args.path.write_text(text)
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
