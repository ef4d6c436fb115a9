"""The topic bus's pure rules: names, partitioning, header caps, SSE ids."""

from __future__ import annotations

import pytest
from opstage.domain.topics import (
    TopicName,
    header_problems,
    name_problems,
    parse_event_id,
    parse_wire,
    partition_for,
    reserved_headers,
)


def test_wire_names_round_trip_and_dots_are_reserved() -> None:
    name = TopicName("agents", "demo", "inbox-xyz_1")
    assert name.wire == "agents.demo.inbox-xyz_1"
    assert parse_wire(name.wire) == name
    for bad in ("a.b", "a.b.c.d", "a..c", ".b.c", "a.b.", "a.b c.d", "a.ü.c", "a.b." + "c" * 81):
        assert parse_wire(bad) is None, bad
    assert parse_wire("a.b." + "c" * 80) is not None


@pytest.mark.parametrize("value", ["", "a.b", "x" * 81, "sp ace", "ünï", None, 5, "a/b"])
def test_bad_fragments_are_named(value: object) -> None:
    issues = name_problems("ns", value, "n")
    assert [i["path"] for i in issues] == ["tenant"]


def test_partitioning_is_pinned_so_it_never_changes_between_versions() -> None:
    # CRC-32 of the UTF-8 key: these values must stay, or keys would move partitions on upgrade.
    assert partition_for("order-42", 3) == 1
    assert partition_for("order-42", 64) == 30
    assert partition_for("a", 3) == 0
    assert partition_for("é", 3) == 2
    assert all(partition_for(f"k{i}", 7) in range(7) for i in range(500))


def test_header_caps_at_their_edges() -> None:
    assert header_problems({f"h{i:02d}": "v" * 100 for i in range(20)}) == []
    assert header_problems({f"h{i}": "" for i in range(21)})[0]["path"] == "headers"
    assert header_problems({"k": "é" * 128}) == []  # 256 bytes exactly
    assert header_problems({"k": "é" * 128 + "x"})[0]["path"] == "headers.k"
    assert header_problems({"": "v"})[0]["path"] == "headers."
    total = {f"h{i:02d}": "v" * 200 for i in range(20)}  # 20 * 203 = 4,060 bytes
    assert header_problems(total) == []
    total["h00"] += "v" * 40
    assert [i["path"] for i in header_problems(total)] == ["headers"]


def test_reserved_prefix_is_case_insensitive() -> None:
    assert reserved_headers({"Opstage.X": "1", "opstage.y": "2", "x-opstage.z": "3"}) == [
        "Opstage.X",
        "opstage.y",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0:0", (0, 0)), ("2:17", (2, 17)), (" 1:5 ", (1, 5))],
)
def test_event_ids_parse(value: str, expected: tuple[int, int]) -> None:
    point = parse_event_id(value)
    assert point is not None and (point.partition, point.offset) == expected


@pytest.mark.parametrize("value", ["", "1", "a:1", "1:a", "-1:1", "1:-1", "1:2:3", "1:" + "9" * 19])
def test_bad_event_ids_are_refused(value: str) -> None:
    assert parse_event_id(value) is None
