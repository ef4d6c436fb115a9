"""Long CLI operations say what they are doing: backup, restore, audit export and prune."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from opstage_testing.server import ServerProcess

from ..support.cli import json_out
from ..support.sql import audit_row, insert_audit
from .conftest import Run


def _plant(env: dict[str, str], n: int, age: timedelta) -> None:
    """``n`` audit rows ``age`` old, written straight into the test's database."""
    where = ServerProcess(Path(env["OPSTAGE_DATA_DIR"]), env.get("DATABASE_URL"))
    start = datetime.now(UTC) - age
    rows = [
        audit_row(start + timedelta(milliseconds=i), action="test.planted", target_id=f"t{i}")
        for i in range(n)
    ]
    insert_audit(where, rows)


def _progress(stderr: str, what: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{what}: ")]


@pytest.mark.sqlite_only
def test_backup_and_restore_report_their_steps(run: Run, tmp_path: Path) -> None:
    assert run("migrate").returncode == 0
    made = run("backup", "-o", str(tmp_path / "b.db"))
    assert made.returncode == 0, made.stderr
    steps = _progress(made.stderr, "backup")
    assert re.match(r"backup: copying .*opstage\.db \(about [\d.]+ \w+\) to .*b\.db$", steps[0])
    assert re.match(r"backup: backup of .*: \d+ bytes, sha256 [0-9a-f]{64} in [\d.]+ s$", steps[-1])

    fresh = {"OPSTAGE_DATA_DIR": str(tmp_path / "fresh")}
    assert run("migrate", **fresh).returncode == 0
    restored = run("restore", "--force", str(tmp_path / "b.db"), **fresh)
    assert restored.returncode == 0, restored.stderr
    steps = _progress(restored.stderr, "restore")
    assert [s.split(" ")[1] for s in steps] == ["checking", "copying", "moved", "put", "restored"]
    assert "pre-restore-" in steps[2] and steps[-1].endswith(" s")
    shown = json_out(run("restore", "--force", str(tmp_path / "b.db"), "--json", **fresh))
    assert shown["path"].endswith("opstage.db") and shown["previous"]


def test_audit_prune_reports_batches_and_is_audited(run: Run, env: dict[str, str]) -> None:
    assert run("migrate").returncode == 0
    _plant(env, 2500, timedelta(days=40))
    _plant(env, 30, timedelta(days=1))
    refused = run("audit", "prune", "--older-than-days", "30", stdin="")
    assert refused.returncode == 2 and "--yes" in refused.stderr  # a script must say --yes

    pruned = run("audit", "prune", "--older-than-days", "30", "--yes", "--json")
    result = json_out(pruned)
    assert result == {"retentionDays": 30, "deleted": 2500}
    steps = _progress(pruned.stderr, "prune")
    assert steps[0] == "prune: deleting audit rows older than 30 days"
    assert steps[1] == "prune: 1000 rows deleted"  # the first batch is always reported
    assert re.fullmatch(r"prune: deleted 2500 rows in [\d.]+ s", steps[-1])

    # The retention in force (90 days by default) leaves the 1-day-old rows alone.
    again = json_out(run("audit", "prune", "--yes", "--json"))
    assert again == {"retentionDays": 90, "deleted": 0}
    kept = json_out(run("audit", "prune", "--yes", "--json", OPSTAGE_AUDIT_RETENTION_DAYS="0"))
    assert kept == {"retentionDays": 0, "deleted": 0}

    out = run("audit", "export", "-o", "-", "--action", "audit.pruned")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["metadata"]["deleted"] for r in rows] == [2500, 0]
    assert all(r["actorId"].startswith("cli:") for r in rows)


def test_audit_export_reports_rows_and_writes_json_lines(
    run: Run, env: dict[str, str], tmp_path: Path
) -> None:
    assert run("migrate").returncode == 0
    _plant(env, 2300, timedelta(hours=2))
    target = tmp_path / "out" / "audit.jsonl"
    done = run("audit", "export", "-o", str(target), "--action", "test.planted", "--json")
    assert json_out(done) == {"path": str(target), "rows": 2300}
    steps = _progress(done.stderr, "export")
    assert steps[0] == "export: 1000 rows"
    assert re.fullmatch(r"export: exported 2300 rows to .*audit\.jsonl in [\d.]+ s", steps[-1])
    lines = target.read_text().splitlines()
    assert len(lines) == 2300
    first, last = json.loads(lines[0]), json.loads(lines[-1])
    assert first["action"] == "test.planted" and first["targetId"] == "t0"  # oldest first
    assert last["targetId"] == "t2299"
    assert set(first) >= {"id", "actorType", "action", "metadata", "createdAt"}
    assert not list(target.parent.glob("*.partial"))
    exists = run("audit", "export", "-o", str(target))
    assert exists.returncode == 2 and "already exists" in exists.stderr

    since = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    none = run("audit", "export", "-o", str(tmp_path / "none.jsonl"), "--since", since)
    assert none.returncode == 0 and (tmp_path / "none.jsonl").read_text() == ""
    bad = run("audit", "export", "-o", "-", "--since", "yesterday")
    assert bad.returncode == 2 and "ISO-8601" in bad.stderr
