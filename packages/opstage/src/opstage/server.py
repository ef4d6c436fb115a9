"""The composition root of ``opstage serve``: the API plus the background services.

The API and the workers never import each other; this module is where they meet.
"""

from __future__ import annotations

from fastapi import FastAPI

from opstage.api.app import create_app
from opstage.app.context import AppContext
from opstage.settings import Settings
from opstage.workers.collector import run_collector
from opstage.workers.maintenance import MaintenanceSweeper


async def maintenance(ctx: AppContext) -> None:
    await MaintenanceSweeper(ctx).run()


def create_server_app(settings: Settings) -> FastAPI:
    return create_app(settings, background=[maintenance, run_collector])
