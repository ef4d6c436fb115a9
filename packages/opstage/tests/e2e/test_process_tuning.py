"""What the server's lifespan sets for the whole process, and gives back when it stops."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from opstage.api.app import SWITCH_INTERVAL_SECONDS, create_app

from ..support.settings import migrated_settings


async def test_the_gil_switch_interval_is_short_while_serving(tmp_path: Path) -> None:
    app = create_app(await migrated_settings(tmp_path, f"sqlite:///{tmp_path / 'tuning.db'}"))
    # Python's default, 5 ms, set here: an in-process test server of this worker may be
    # running, and it holds the short interval until it stops (ADR 0013).
    outside = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        before = sys.getswitchinterval()
        assert before > SWITCH_INTERVAL_SECONDS
        async with app.router.lifespan_context(app):
            assert sys.getswitchinterval() == SWITCH_INTERVAL_SECONDS
            assert gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == before
    finally:
        sys.setswitchinterval(outside)
    gc.unfreeze()
