"""Where the tests find the wire contract.

The source of truth is ``../shared/contracts`` next to the checkout; ``contracts/`` in the
repository is a copy of it (Apache-2.0, see contracts/NOTICE.md) so that a clone built
anywhere still tests against the contract, and ``test_vendored_contract_matches_shared``
fails the moment the two drift apart.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]
VENDORED = REPO_ROOT / "contracts"
SHARED = REPO_ROOT.parent / "shared" / "contracts"


def contract_dir() -> Path | None:
    for candidate in (os.environ.get("OPSTAGE_CONTRACTS_DIR"), str(SHARED), str(VENDORED)):
        if candidate and (Path(candidate) / "opstage-ce-v0.1.yaml").exists():
            return Path(candidate)
    return None
