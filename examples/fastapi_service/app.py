"""A FastAPI service with an Opstage agent attached: business endpoints plus management actions.

The agent runs on the app's own event loop, starts after the app's startup and stops before
its shutdown. Operators get two actions: toggling maintenance mode (the business endpoints then
answer 503 and health turns DEGRADED) and purging cancelled orders (HIGH, confirmed).

    OPSTAGE_BACKEND_URL=http://127.0.0.1:8080 OPSTAGE_REGISTRATION_TOKEN=opstage_reg_... \\
    OPSTAGE_AGENT_TOKEN_FILE=./orders-agent.token.json python examples/fastapi_service/app.py
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import FastAPI, HTTPException
from opstage_agent import ActionResult, AgentConfig, AsyncAgent, ConfigItem, Health
from opstage_agent.fastapi import attach
from pydantic import BaseModel, Field


@dataclass
class Order:
    id: int
    item: str
    quantity: int
    status: str = "OPEN"


class NewOrder(BaseModel):
    item: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=1000)


class Orders:
    """The business state: an in-memory order book and a maintenance switch."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.orders: dict[int, Order] = {}
        self.maintenance = False

    def add(self, item: str, quantity: int, status: str = "OPEN") -> Order:
        order = Order(next(self._ids), item, quantity, status)
        self.orders[order.id] = order
        return order


def create_app(agent: AsyncAgent | None = None) -> FastAPI:
    """The app; the agent's settings come from ``OPSTAGE_*`` variables unless one is given."""
    if agent is None:
        agent = AsyncAgent(
            AgentConfig.from_env(
                agent_code=os.environ.get("OPSTAGE_AGENT_CODE", "orders-api"),
                agent_name=os.environ.get("OPSTAGE_AGENT_NAME", "Orders API"),
                service_version="2.3.0",
                service_description="Takes orders over HTTP; managed through Opstage.",
            )
        )
    book = Orders()
    book.add("keyboard", 2)
    book.add("monitor", 1, status="CANCELLED")
    app = FastAPI(title="Orders API")

    # --- business endpoints ------------------------------------------------------------------

    def open_for_business() -> None:
        if book.maintenance:
            raise HTTPException(503, "Down for maintenance; back soon.")

    @app.get("/orders")
    async def list_orders() -> list[dict[str, Any]]:
        open_for_business()
        return [asdict(o) for o in book.orders.values()]

    @app.post("/orders", status_code=201)
    async def create_order(order: NewOrder) -> dict[str, Any]:
        open_for_business()
        return asdict(book.add(order.item, order.quantity))

    # --- what Opstage sees and can do --------------------------------------------------------

    @agent.health
    def health() -> Health:
        if book.maintenance:
            return Health.degraded("Maintenance mode: orders are refused")
        return Health.up(f"{len(book.orders)} orders in the book")

    @agent.configs
    def configs() -> list[ConfigItem]:
        return [
            ConfigItem("MAINTENANCE", str(book.maintenance).lower(), type="boolean"),
            ConfigItem("ORDERS_DB_URL", "sqlite:///orders.db", source="env"),
        ]

    @agent.action(
        name="setMaintenance",
        label="Set maintenance mode",
        danger_level="MEDIUM",
        input_schema={
            "type": "object",
            "properties": {"enabled": {"type": "boolean"}},
            "required": ["enabled"],
        },
    )
    async def set_maintenance(payload: dict[str, Any]) -> ActionResult:
        book.maintenance = bool(payload["enabled"])
        state = "on" if book.maintenance else "off"
        return ActionResult(f"Maintenance mode {state}", {"maintenance": book.maintenance})

    @agent.action(
        name="purgeCancelled",
        label="Purge cancelled orders",
        danger_level="HIGH",
        confirm_required=True,
    )
    async def purge_cancelled() -> ActionResult:
        cancelled = [i for i, o in book.orders.items() if o.status == "CANCELLED"]
        for order_id in cancelled:
            del book.orders[order_id]
        return ActionResult(f"Purged {len(cancelled)} cancelled orders", {"purged": cancelled})

    attach(app, agent)
    app.state.opstage_agent = agent
    return app


if __name__ == "__main__":
    import uvicorn

    logging.basicConfig(level=logging.INFO)
    uvicorn.run(create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
