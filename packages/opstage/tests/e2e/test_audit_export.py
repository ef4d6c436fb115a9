"""The audit trail you can use: every filter, detail, redaction, and a streaming CSV/JSON export."""

from __future__ import annotations

import csv
import io
import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psutil
import pytest
from opstage.domain.timeutil import iso
from opstage_testing.clients import AdminClient
from opstage_testing.server import ServerProcess

from ..conftest import unique
from ..support.sql import audit_row, insert_audit

EVENTS = "/api/admin/audit-events"
EXPORT = f"{EVENTS}/export"
SECRET_VALUE = "hunter2-" + secrets.token_hex(4)
RAW_TOKEN = "opstage_reg_" + secrets.token_urlsafe(24)
TRICKY = 'comma, "quoted" and\nnewline; ünïcødé ✓\r\nCRLF too'


def _plant(server: ServerProcess, n: int = 6) -> tuple[str, list[dict[str, Any]]]:
    """``n`` rows of a fresh target type, one minute apart, alternating actor and result."""
    target_type = unique("T")
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    rows = [
        audit_row(
            base + timedelta(minutes=i),
            actor_type=("USER", "AGENT", "SYSTEM")[i % 3],
            actor_id=f"usr_{i}",
            action=f"test.action.{i % 2}",
            target_type=target_type,
            target_id=f"target-{i}",
            result=("SUCCESS", "FAILURE")[i % 2],
            message=f"row {i}",
            metadata={"i": i},
        )
        for i in range(n)
    ]
    insert_audit(server, rows)
    return target_type, rows


def _ids(admin: AdminClient, **params: Any) -> list[str]:
    data = admin.data("GET", EVENTS, params={"pageSize": 100, **params})
    return [e["id"] for e in data]


def test_every_filter_and_time_range(server: ServerProcess, admin: AdminClient) -> None:
    target_type, rows = _plant(server)
    ids = [r["id"] for r in rows]
    newest_first = list(reversed(ids))
    assert _ids(admin, targetType=target_type) == newest_first
    assert _ids(admin, targetType=target_type, sort="createdAt") == ids
    assert _ids(admin, targetType=target_type, actorType="AGENT") == [ids[4], ids[1]]
    assert _ids(admin, targetType=target_type, result="FAILURE") == [ids[5], ids[3], ids[1]]
    assert _ids(admin, targetType=target_type, action="test.action.0") == [ids[4], ids[2], ids[0]]
    assert _ids(admin, targetType=target_type, targetId="target-3") == [ids[3]]
    assert _ids(admin, targetId="target-3", targetType=target_type, result="SUCCESS") == []
    # from/to are inclusive bounds on createdAt, in any ISO-8601 spelling.
    frm, to = iso(rows[1]["created_at"]), rows[3]["created_at"].isoformat()
    assert _ids(admin, targetType=target_type, **{"from": frm, "to": to}) == [
        ids[3],
        ids[2],
        ids[1],
    ]
    assert _ids(admin, targetType=target_type, **{"from": iso(rows[5]["created_at"])}) == [ids[5]]
    page = admin.get(EVENTS, params={"targetType": target_type, "pageSize": 2, "page": 2}).json()
    assert [e["id"] for e in page["data"]] == newest_first[2:4]
    assert page["pagination"] == {"page": 2, "pageSize": 2, "total": 6}


@pytest.mark.parametrize(
    "params",
    [
        {"from": "yesterday"},
        {"to": "2026-13-01T00:00:00Z"},
        {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"actorType": "ROBOT"},
        {"result": "MAYBE"},
        {"targetId": ""},
        {"sort": "-action"},
    ],
)
def test_invalid_queries_are_422_for_list_and_export(
    admin: AdminClient, params: dict[str, str]
) -> None:
    for path in (EVENTS, EXPORT):
        r = admin.get(path, params=params)
        assert r.status_code == 422, (path, params, r.text)
        assert r.json()["error"]["code"] == "VALIDATION_FAILED"


def test_detail(server: ServerProcess, admin: AdminClient) -> None:
    _, rows = _plant(server, 1)
    got = admin.data("GET", f"{EVENTS}/{rows[0]['id']}")
    assert got["id"] == rows[0]["id"]
    assert got["createdAt"] == iso(rows[0]["created_at"])
    assert (got["actorType"], got["action"], got["message"]) == ("USER", "test.action.0", "row 0")
    assert got["metadata"] == {"i": 0}
    missing = admin.get(f"{EVENTS}/aud_{'0' * 26}")
    assert missing.status_code == 404


def _plant_tricky(server: ServerProcess) -> tuple[str, dict[str, Any]]:
    target_type = unique("Tricky")
    row = audit_row(
        datetime.now(UTC) - timedelta(minutes=1),
        target_type=target_type,
        target_id='=HYPERLINK("http://evil.example","x")',
        message=TRICKY + " " + RAW_TOKEN,
        metadata={
            "password": SECRET_VALUE,
            "nested": {"apiKey": SECRET_VALUE, "note": f"leaked {RAW_TOKEN}"},
            "list": [{"clientSecret": SECRET_VALUE}],
            "text": TRICKY,
        },
    )
    insert_audit(server, [row])
    return target_type, row


def test_csv_quoting_round_trips_and_neutralises_formulas(
    server: ServerProcess, admin: AdminClient
) -> None:
    target_type, row = _plant_tricky(server)
    r = admin.get(EXPORT, params={"format": "csv", "targetType": target_type})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert ".csv" in r.headers["content-disposition"]
    assert r.content.endswith(b"\r\n")
    records = list(csv.reader(io.StringIO(r.content.decode("utf-8"), newline="")))
    header, body = records[0], records[1:]
    assert header[:3] == ["id", "createdAt", "actorType"]
    assert header[-1] == "metadata"
    assert len(body) == 1
    record = dict(zip(header, body[0], strict=True))
    assert record["id"] == row["id"]
    assert record["message"].startswith(TRICKY + " opstage_reg_")  # quotes, commas, newlines intact
    assert record["targetId"] == "'" + row["target_id"]  # a spreadsheet must not run it
    meta = json.loads(record["metadata"])
    assert meta["text"] == TRICKY
    assert meta["password"] == "[REDACTED]"


def test_metadata_is_redacted_in_every_output(server: ServerProcess, admin: AdminClient) -> None:
    target_type, row = _plant_tricky(server)
    outputs = {
        "list": admin.get(EVENTS, params={"targetType": target_type}).text,
        "detail": admin.get(f"{EVENTS}/{row['id']}").text,
        "csv": admin.get(EXPORT, params={"format": "csv", "targetType": target_type}).text,
        "json": admin.get(EXPORT, params={"format": "json", "targetType": target_type}).text,
    }
    for name, text in outputs.items():
        assert row["id"] in text, name
        assert SECRET_VALUE not in text, f"{name} leaks a secret-named value"
        assert RAW_TOKEN not in text, f"{name} leaks a raw token"
        assert "[REDACTED]" in text, name


def test_json_export_is_the_filtered_set_in_list_order(
    server: ServerProcess, admin: AdminClient
) -> None:
    target_type, rows = _plant(server)
    r = admin.get(EXPORT, params={"targetType": target_type, "result": "SUCCESS"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert "attachment" in r.headers["content-disposition"]
    body = r.json()
    assert body["success"] is True
    exported = body["data"]
    assert [e["id"] for e in exported] == _ids(admin, targetType=target_type, result="SUCCESS")
    assert exported[0]["metadata"] == {"i": 4}
    oldest_first = admin.get(EXPORT, params={"targetType": target_type, "sort": "createdAt"})
    assert [e["id"] for e in oldest_first.json()["data"]] == [r["id"] for r in rows]
    empty = admin.get(EXPORT, params={"targetType": unique("none"), "format": "json"}).json()
    assert empty == {"success": True, "data": []}
    empty_csv = admin.get(EXPORT, params={"targetType": unique("none"), "format": "csv"})
    assert len(list(csv.reader(io.StringIO(empty_csv.text)))) == 1  # the header alone


def test_export_needs_the_export_permission_and_is_audited(
    server: ServerProcess, admin: AdminClient
) -> None:
    assert httpx.get(server.url + EXPORT).status_code == 401
    for role, allowed in (("viewer", False), ("operator", True)):
        username, password = admin.create_user(role)
        with AdminClient(server.url) as c:
            c.login(username, password)
            me = c.data("GET", "/api/admin/auth/me")["user"]
            r = c.get(EXPORT, params={"format": "csv", "actorType": "AGENT"})
            assert r.status_code == (200 if allowed else 403), (role, r.text)
            if allowed:
                trail = admin.data(
                    "GET", EVENTS, params={"action": "audit.exported", "pageSize": 100}
                )
                mine = [e for e in trail if e["actorId"] == me["id"]]
                assert mine, trail
                assert mine[0]["metadata"]["format"] == "csv"
                assert mine[0]["metadata"]["filters"] == {"actor_types": ["AGENT"]}


class PeakRss:
    """Samples a process's resident set size in a thread; ``peak`` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _export_growth(
    srv: ServerProcess, admin: AdminClient, action: str, fmt: str
) -> tuple[int, int]:
    """(rows exported, peak RSS growth in bytes) of one export read slowly-ish to the end."""
    assert srv.proc is not None
    before = psutil.Process(srv.proc.pid).memory_info().rss
    marker = b"\r\n" if fmt == "csv" else b'"id":'
    rows, tail = 0, b""
    with (
        PeakRss(srv.proc.pid) as rss,
        admin.stream("GET", EXPORT, params={"format": fmt, "action": action}) as r,
    ):
        assert r.status_code == 200
        for chunk in r.iter_bytes(1 << 16):
            # A marker may straddle two chunks; one counted before cannot fit in the carry.
            window = tail + chunk
            rows += window.count(marker)
            tail = window[-(len(marker) - 1) :]
    if fmt == "csv":
        rows -= 1  # the header
    return rows, rss.peak - before


@pytest.mark.slow
def test_export_memory_stays_flat_as_the_row_count_grows(make_server_process: Any) -> None:
    srv = make_server_process(OPSTAGE_MAINTENANCE_INTERVAL_SECONDS="0")
    now = datetime.now(UTC)
    small, large = unique("small"), unique("large")
    filler = "x" * 300  # ~0.5 KB per row on the wire, so 50k rows would be ~25 MB held at once
    insert_audit(
        srv,
        [audit_row(now - timedelta(seconds=i), action=small, message=filler) for i in range(5_000)],
    )
    for start in range(0, 50_000, 10_000):
        insert_audit(
            srv,
            [
                audit_row(
                    now - timedelta(seconds=i),
                    action=large,
                    message=filler,
                    metadata={"n": i, "note": filler},
                )
                for i in range(start, start + 10_000)
            ],
        )
    with AdminClient(srv.url) as admin:
        admin.login()
        _export_growth(srv, admin, small, "csv")  # warm up: imports, pools, caches
        for fmt in ("csv", "json"):
            n_small, grew_small = _export_growth(srv, admin, small, fmt)
            n_large, grew_large = _export_growth(srv, admin, large, fmt)
            assert (n_small, n_large) == (5_000, 50_000), (fmt, n_small, n_large)
            mib = 1 << 20
            print(
                f"{fmt}: 5k rows +{grew_small / mib:.1f} MiB, 50k rows +{grew_large / mib:.1f} MiB"
            )
            # Ten times the rows, and the peak may not grow by more than a few MiB more.
            assert grew_large <= grew_small + 8 * mib, (
                f"{fmt}: peak RSS grew {grew_large / mib:.1f} MiB for 50k rows "
                f"vs {grew_small / mib:.1f} MiB for 5k"
            )
