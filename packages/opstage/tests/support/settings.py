"""Settings for an in-process runtime on a migrated database (tests that drive use cases)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from opstage.settings import Settings
from opstage.store.migrate import upgrade_async
from pydantic import SecretStr


async def migrated_settings(tmp_path: Path, url: str, **overrides: Any) -> Settings:
    """``url`` upgraded to head, and settings for it: an owner, no maintenance loop."""
    await upgrade_async(url)
    base: dict[str, Any] = {
        "database_url": url,
        "data_dir": tmp_path,
        "session_secret": SecretStr(secrets.token_urlsafe(40)),
        "admin_username": "owner",
        "admin_password": SecretStr("owner-password-1234"),
        "maintenance_interval_seconds": 0,
    }
    return Settings(**{**base, **overrides})
