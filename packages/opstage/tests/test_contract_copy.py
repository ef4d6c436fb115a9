"""contracts/ is a copy of ../shared/contracts; this fails the moment they drift apart."""

from __future__ import annotations

import pytest
from opstage_testing.contracts import SHARED, VENDORED


def test_vendored_contract_matches_shared() -> None:
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is not next to this checkout; the vendored copy is used as is")
    shared = {p.relative_to(SHARED): p.read_bytes() for p in SHARED.rglob("*") if p.is_file()}
    vendored = {p.relative_to(VENDORED): p.read_bytes() for p in VENDORED.rglob("*") if p.is_file()}
    assert vendored == shared, "contracts/ has drifted from ../shared/contracts: copy it again"
