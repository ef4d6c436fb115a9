"""The token file: private from its first byte, replaced atomically, corruption detected."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from opstage_agent.token_store import FileTokenStore, StoredCredentials, TokenFileError

CREDS = StoredCredentials("agt_1", "opstage_agent_secret", "billing", "http://opstage.test")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "agent.json"
    store = FileTokenStore(path)
    assert store.load() is None
    store.save(CREDS)
    assert mode(path) == 0o600
    assert store.load() == CREDS
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_private_even_under_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        FileTokenStore(tmp_path / "agent.json").save(CREDS)
    finally:
        os.umask(previous)
    assert mode(tmp_path / "agent.json") == 0o600


def test_replacing_a_world_readable_file_leaves_a_private_one(tmp_path: Path) -> None:
    path = tmp_path / "agent.json"
    path.write_text("{}")
    path.chmod(0o644)
    FileTokenStore(path).save(CREDS)
    assert mode(path) == 0o600


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "agent.json"
    store = FileTokenStore(path)
    store.save(CREDS)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    newer = StoredCredentials("agt_2", "opstage_agent_new", "billing", "http://opstage.test")
    with pytest.raises(OSError, match="disk full"):
        store.save(newer)
    monkeypatch.undo()
    assert store.load() == CREDS
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    "content", [b"", b"{not json", b"[1, 2]", b'{"agentId": "agt_1"}', b'{"agentId": 1}']
)
def test_corrupt_files_are_reported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "agent.json"
    path.write_bytes(content)
    with pytest.raises(TokenFileError, match=str(path)):
        FileTokenStore(path).load()
