"""`make compat`: the differential suite, then our SDK against the reference.

    python -m compat.run --ref-repo /path/to/built/xtrape-capsule-ce   (or REF_REPO=...)
    python -m compat.run --ref-url http://127.0.0.1:8090               (a running reference)

Prints each failing comparison, then `N passed, M failed` on its own line; exits 1 on failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from .engine import Outcome, Side, run_both
from .node_agent_check import demo_entry, run_node_agent_checks
from .scenarios import SCENARIOS
from .sdk_check import run_sdk_checks
from .servers import Server, start_ours, start_reference


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ref-repo", default=os.environ.get("REF_REPO"))
    ap.add_argument("--ref-url", default=os.environ.get("REF_URL"))
    ap.add_argument("--verbose", "-v", action="store_true", help="list allowed differences too")
    args = ap.parse_args(argv)
    if not args.ref_repo and not args.ref_url:
        ap.error("set REF_REPO (a built reference checkout) or REF_URL (a running reference)")

    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="opstage-compat-") as tmp:
        work = Path(tmp)
        try:
            ours_srv = start_ours(work)
            servers.append(ours_srv)
            if args.ref_url:
                ref_srv = Server("reference", args.ref_url.rstrip("/"))
            else:
                ref_srv = start_reference(args.ref_repo, work)
                servers.append(ref_srv)
            print(f"ours: {ours_srv.url}   reference: {ref_srv.url}")
            return run(ours_srv, ref_srv, args.verbose, demo_entry(args.ref_repo))
        finally:
            for srv in servers:
                srv.stop()


def run(ours_srv: Server, ref_srv: Server, verbose: bool, node_demo: Path | None = None) -> int:
    ours, ref = Side("ours", ours_srv.url), Side("reference", ref_srv.url)
    passed = failed = allowed = 0
    try:
        ours.login()
        ref.login()
        for name, fn in SCENARIOS:
            outcomes, errors = run_both(name, fn, ours, ref)
            bad = [o for o in outcomes if not o.passed]
            passed += len(outcomes) - len(bad)
            failed += len(bad)
            allowed += sum(1 for o in outcomes if o.passed and o.allowed)
            print(f"[{name}] {len(outcomes) - len(bad)}/{len(outcomes)} match")
            for err in errors:
                print(f"  ! scenario broke on {err}")
            for o in outcomes:
                report(o, verbose)
        for label, ok, detail in run_sdk_checks(ref_srv.url):
            if ok:
                passed += 1
            else:
                failed += 1
            print(f"  {'ok ' if ok else 'FAIL'} sdk: {label}{'' if ok else ' — ' + detail}")
        # The reference's Node agent against both servers: a check failing on the reference
        # too is the harness's; one failing on ours alone is ours to fix.
        if node_demo is None:
            print("  (node agent: skipped; REF_REPO has no built apps/demo-capsule-service)")
        sides = () if node_demo is None else (ours_srv, ref_srv)
        for srv in sides:
            assert node_demo is not None
            for label, ok, detail in run_node_agent_checks(srv.name, srv.url, node_demo):
                if ok:
                    passed += 1
                else:
                    failed += 1
                print(
                    f"  {'ok ' if ok else 'FAIL'} node agent: {label}{'' if ok else ' — ' + detail}"
                )
    finally:
        ours.close()
        ref.close()
    print(f"({allowed} comparisons passed through documented differences)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def report(o: Outcome, verbose: bool) -> None:
    if not o.passed:
        print(f"  FAIL {o.scenario}: {o.label}: {'; '.join(o.problems)}")
    if verbose:
        for diff, rule in o.allowed:
            print(f"  allowed {o.scenario}: {o.label}: {diff}  [{rule.docs_row}]")


if __name__ == "__main__":
    sys.exit(main())
