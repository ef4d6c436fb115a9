"""Maintenance thresholds that an owner can change at runtime, persisted in ``system_settings``.

Three settings, named as the reference server names them on the wire:
``agentOfflineThresholdSeconds``, ``auditRetentionDays``, ``maintenanceIntervalSeconds``. Their
defaults come from the environment (``OPSTAGE_AGENT_OFFLINE_THRESHOLD_SECONDS``, …); a value set
through the API is stored under the key ``maintenance`` and wins over the environment, also after
a restart, until it is reset with ``null``.

Applying an override replaces ``ctx.settings`` with a copy of the environment's settings carrying
it, so every reader (effective agent status, readiness checks, the sweeper) sees the new value at
once. The sweeper reloads the stored values on every tick, so other nodes follow within one
interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from opstage.app.audit import write_audit
from opstage.app.context import Actor, UnitContext
from opstage.domain.errors import ValidationFailed
from opstage.settings import Settings

KEY = "maintenance"


@dataclass(frozen=True, slots=True)
class Adjustable:
    wire: str
    setting: str
    minimum: int
    maximum: int


ADJUSTABLE = (
    Adjustable("agentOfflineThresholdSeconds", "agent_offline_threshold_seconds", 1, 30 * 86400),
    Adjustable("auditRetentionDays", "audit_retention_days", 0, 36500),
    Adjustable("maintenanceIntervalSeconds", "maintenance_interval_seconds", 0, 86400),
)
BY_WIRE = {a.wire: a for a in ADJUSTABLE}
RUNTIME_SETTINGS = frozenset(a.setting for a in ADJUSTABLE)


class TunableContext(UnitContext, Protocol):
    """A context whose settings an owner may override at runtime (``AppContext`` is one;
    ADR 0010): ``base_settings`` keeps the environment's, ``settings`` is replaced by a copy
    carrying the overrides."""

    base_settings: Settings | None


def _environment(ctx: TunableContext) -> Settings:
    return ctx.base_settings or ctx.settings


def _clean_stored(raw: Any) -> dict[str, int]:
    """Stored overrides, ignoring anything malformed (a hand-edited row must not break startup)."""
    out: dict[str, int] = {}
    if not isinstance(raw, dict):
        return out
    for wire, value in raw.items():
        spec = BY_WIRE.get(wire)
        if spec is None or isinstance(value, bool) or not isinstance(value, int):
            continue
        if spec.minimum <= value <= spec.maximum:
            out[wire] = value
    return out


def apply(ctx: TunableContext, overrides: dict[str, int]) -> None:
    if ctx.base_settings is None:
        ctx.base_settings = ctx.settings
    update = {BY_WIRE[w].setting: v for w, v in overrides.items()}
    ctx.settings = ctx.base_settings.model_copy(update=update)


def view(ctx: TunableContext, overrides: dict[str, int]) -> dict[str, Any]:
    env = _environment(ctx)
    data: dict[str, Any] = {
        a.wire: overrides.get(a.wire, getattr(env, a.setting)) for a in ADJUSTABLE
    }
    data["sources"] = {
        a.wire: "database" if a.wire in overrides else "environment" for a in ADJUSTABLE
    }
    return data


async def load(ctx: TunableContext) -> dict[str, int]:
    """Read the stored overrides and apply them to this process."""
    async with ctx.reader() as uow:
        overrides = _clean_stored(await uow.settings.get(KEY))
    apply(ctx, overrides)
    return overrides


async def get_maintenance_settings(ctx: TunableContext) -> dict[str, Any]:
    return view(ctx, await load(ctx))


def parse_patch(body: Any) -> dict[str, int | None]:
    """Validate a PATCH body: known keys only, integers in range, ``null`` resets a key."""
    if not isinstance(body, dict):
        raise ValidationFailed(
            "Request body validation failed.", [{"path": "", "message": "must be an object"}]
        )
    issues: list[dict[str, str]] = []
    patch: dict[str, int | None] = {}
    for key, value in body.items():
        spec = BY_WIRE.get(key)
        if spec is None:
            allowed = ", ".join(BY_WIRE)
            issues.append({"path": key, "message": f"unknown setting; allowed: {allowed}"})
        elif value is None:
            patch[key] = None
        elif isinstance(value, bool) or not isinstance(value, int):
            issues.append({"path": key, "message": "must be an integer or null"})
        elif not spec.minimum <= value <= spec.maximum:
            issues.append(
                {"path": key, "message": f"must be between {spec.minimum} and {spec.maximum}"}
            )
        else:
            patch[key] = value
    if issues:
        raise ValidationFailed("Request body validation failed.", issues)
    return patch


async def update_maintenance_settings(
    ctx: TunableContext, actor: Actor, patch: dict[str, int | None]
) -> dict[str, Any]:
    now = ctx.clock()
    async with ctx.writer() as uow:
        before = _clean_stored(await uow.settings.get(KEY))
        after = dict(before)
        for key, value in patch.items():
            if value is None:
                after.pop(key, None)
            else:
                after[key] = value
        await uow.settings.put(KEY, after, now)
        env = _environment(ctx)
        changes = {
            a.wire: {
                "from": before.get(a.wire, getattr(env, a.setting)),
                "to": after.get(a.wire, getattr(env, a.setting)),
            }
            for a in ADJUSTABLE
            if a.wire in patch
        }
        await write_audit(
            uow,
            actor,
            "settings.maintenance.updated",
            target_type="Workspace",
            target_id="maintenance",
            metadata={"changes": changes},
            now=now,
        )
    apply(ctx, after)
    return view(ctx, after)
