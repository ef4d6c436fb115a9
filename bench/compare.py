"""Before/after, interleaved in one run: `make bench` and `make bench-bus` phases of a base
revision and of this tree, alternately, then medians per phase and head/base.

These machines' speed drifts by up to 40% between runs (bench/README.md), so two separate runs
say little about a change; alternating the two servers in one run puts both under the same
drift. The base revision is checked out in a temporary git worktree; its server runs from that
tree (``PYTHONPATH`` = its ``packages/*/src``, ahead of this venv's editable install), on this
venv's dependencies. The load (bench/run.py, bench/bus_ingest.py) is this tree's for both sides,
so only the server differs. Round order alternates (base, head; then head, base; ...) so that a
steady drift favours neither side.

    .venv/bin/python bench/compare.py --base main [--rounds 3] [--duration 5] [--warmup 1]
    make bench-compare BASE=main

Writes bench/results/compare-latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SRC_DIRS = ("packages/opstage/src", "packages/opstage-agent/src")

Metric = tuple[str, Callable[[dict[str, Any]], float], bool]  # name, getter, higher is better


def _cpu_us(phase: dict[str, Any]) -> float:
    """The server's CPU time per request in a load phase, in µs."""
    return float(phase["server_cpu_pct"]) * 1e4 / float(phase["rps"])


AGENT_METRICS: list[Metric] = [
    ("bare req/s", lambda r: r["phases"]["bare"]["rps"], True),
    ("version req/s", lambda r: r["phases"]["version"]["rps"], True),
    ("heartbeat req/s", lambda r: r["phases"]["heartbeat"]["rps"], True),
    ("poll req/s", lambda r: r["phases"]["poll"]["rps"], True),
    ("heartbeat / bare", lambda r: r["ratios"]["heartbeat_vs_bare"], True),
    ("poll / bare", lambda r: r["ratios"]["poll_vs_bare"], True),
    ("heartbeat p99 ms", lambda r: r["phases"]["heartbeat"]["p99_ms"], False),
    # Server CPU per request: less at the mercy of other work on a shared machine than rates.
    ("heartbeat server µs/req", lambda r: _cpu_us(r["phases"]["heartbeat"]), False),
    ("poll server µs/req", lambda r: _cpu_us(r["phases"]["poll"]), False),
    ("submit->agent p50 ms", lambda r: r["submit_to_agent"]["p50_ms"], False),
]
BUS_METRICS: list[Metric] = [
    ("bus bare req/s", lambda r: r["rows"][0]["bare"]["rps"], True),
    ("bus ingest ev/s", lambda r: r["rows"][0]["bus"]["rps"], True),
    ("bus ingest / bare", lambda r: r["rows"][0]["ratio_pct"] / 100, True),
    ("bus ingest p99 ms", lambda r: r["rows"][0]["bus"]["p99_ms"], False),
    ("bus server µs/event", lambda r: _cpu_us(r["rows"][0]["bus"]), False),
]


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def side_env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(tree / d) for d in SRC_DIRS]
    env["PYTHONPATH"] = os.pathsep.join(
        [*paths, env["PYTHONPATH"]] if env.get("PYTHONPATH") else paths
    )
    return env


def check_side(name: str, tree: Path) -> None:
    """The server this side starts imports its own tree's code, not the venv's install."""
    found = subprocess.run(
        [sys.executable, "-c", "import opstage; print(opstage.__file__)"],
        env=side_env(tree),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not Path(found).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"{name}: opstage imports from {found}, not from {tree}")


def run_bench(tree: Path, script: str, extra: list[str], output: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(BENCH / script), *extra, "--output", str(output)]
    done = subprocess.run(cmd, env=side_env(tree), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    result: dict[str, Any] = json.loads(output.read_text())
    return result


def summarise(runs: dict[str, list[dict[str, Any]]], metrics: list[Metric]) -> list[dict[str, Any]]:
    rows = []
    for name, get, higher in metrics:
        values = {side: [get(r) for r in runs[side]] for side in ("base", "head")}
        base, head = (statistics.median(values[s]) for s in ("base", "head"))
        rows.append(
            {
                "metric": name,
                "higher_is_better": higher,
                "base": values["base"],
                "head": values["head"],
                "base_median": base,
                "head_median": head,
                "head_vs_base": head / base if base else float("nan"),
            }
        )
    return rows


def _fmt(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.0f}"


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'phase':<24}{'base':>9}{'head':>9}{'head/base':>11}   base runs | head runs",
    ]
    for r in rows:
        runs = " ".join(_fmt(v) for v in r["base"]) + " | " + " ".join(_fmt(v) for v in r["head"])
        lines.append(
            f"{r['metric']:<24}{_fmt(r['base_median']):>9}{_fmt(r['head_median']):>9}"
            f"{r['head_vs_base']:>10.3f}{'' if r['higher_is_better'] else '*'}   {runs}"
        )
    lines.append("(* lower is better)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured phase")
    parser.add_argument("--warmup", type=int, default=1, help="seconds discarded per phase")
    parser.add_argument("--skip-agents", action="store_true", help="no bench/run.py phases")
    parser.add_argument("--skip-bus", action="store_true", help="no bench/bus_ingest.py phases")
    parser.add_argument("--output", type=Path, default=BENCH / "results" / "compare-latest.json")
    args = parser.parse_args()
    base_rev = git("rev-parse", "--verify", f"{args.base}^{{commit}}")
    head_rev = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"bench compare  {started}  base {args.base} ({base_rev[:10]})  head {head_rev[:10]}"
          f"{' + uncommitted changes' if dirty else ''}")  # fmt: skip
    print(f"{args.rounds} rounds, {args.duration:g}s phases after {args.warmup:g}s warm-up; "
          f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")  # fmt: skip
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        "agents": {"base": [], "head": []},
        "bus": {"base": [], "head": []},
    }
    timing = ["--duration", f"{args.duration:g}", "--warmup", f"{args.warmup:g}"]
    with tempfile.TemporaryDirectory(prefix="opstage-bench-compare-") as tmp:
        base_tree = Path(tmp) / "base"
        git("worktree", "add", "--detach", str(base_tree), base_rev)
        try:
            trees = {"base": base_tree, "head": ROOT}
            for name, tree in trees.items():
                check_side(name, tree)
            order: list[str] = []
            for n in range(args.rounds):
                for side in ("base", "head") if n % 2 == 0 else ("head", "base"):
                    order.append(side)
                    tree = trees[side]
                    out = Path(tmp) / f"{n}-{side}"
                    if not args.skip_agents:
                        result = run_bench(tree, "run.py", timing, out.with_suffix(".agents.json"))
                        runs["agents"][side].append(result)
                        hb = result["phases"]["heartbeat"]["rps"]
                        print(f"  round {n + 1} {side}: heartbeat {hb:.0f} req/s", flush=True)
                    if not args.skip_bus:
                        bus_args = [*timing, "--sizes", "0", "--repeat", "1"]
                        result = run_bench(
                            tree, "bus_ingest.py", bus_args, out.with_suffix(".bus.json")
                        )
                        runs["bus"][side].append(result)
                        eps = result["rows"][0]["bus"]["rps"]
                        print(f"  round {n + 1} {side}: bus ingest {eps:.0f} ev/s", flush=True)
        finally:
            git("worktree", "remove", "--force", str(base_tree))
    rows: list[dict[str, Any]] = []
    if not args.skip_agents:
        rows += summarise(runs["agents"], AGENT_METRICS)
    if not args.skip_bus:
        rows += summarise(runs["bus"], BUS_METRICS)
    print(f"\norder: {' '.join(order)}  (medians of {args.rounds} runs per side)\n")
    print(render(rows))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "started": started,
                "base": {"rev": args.base, "commit": base_rev},
                "head": {"commit": head_rev, "uncommitted_changes": dirty},
                "rounds": args.rounds,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "order": order,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
