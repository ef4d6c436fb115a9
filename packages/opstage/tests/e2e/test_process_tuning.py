"""What the server's lifespan sets for the whole process, and gives back when it stops."""

from __future__ import annotations

import gc
import secrets
import sys
from pathlib import Path

from opstage.api.app import SWITCH_INTERVAL_SECONDS, create_app
from opstage.settings import Settings
from opstage.store.migrate import upgrade_async
from pydantic import SecretStr


async def test_the_gil_switch_interval_is_short_while_serving(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tuning.db'}"
    await upgrade_async(url)
    settings = Settings(
        database_url=url,
        data_dir=tmp_path,
        session_secret=SecretStr(secrets.token_urlsafe(40)),
        admin_username="owner",
        admin_password=SecretStr("owner-password-1234"),
        maintenance_interval_seconds=0,
    )
    app = create_app(settings)
    before = sys.getswitchinterval()
    assert before > SWITCH_INTERVAL_SECONDS  # Python's default, 5 ms
    async with app.router.lifespan_context(app):
        assert sys.getswitchinterval() == SWITCH_INTERVAL_SECONDS
        assert gc.get_freeze_count() > 0
    assert sys.getswitchinterval() == before
    gc.unfreeze()
