"""The committed document's text: built from a throwaway app, keys in a stable order."""

from __future__ import annotations

import json
from pathlib import Path

# packages/opstage/src/opstage/api/openapi/dump.py → the repository's docs/openapi.json
DEFAULT_PATH = Path(__file__).resolve().parents[6] / "docs" / "openapi.json"


def render() -> str:
    from opstage.api.app import create_app
    from opstage.settings import Settings

    # Only the routes matter; the secret is never used (no lifespan runs).
    app = create_app(Settings(session_secret="openapi-document-only-" + "x" * 32))
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False) + "\n"
