"""The one permission table every admin route consults (documented in docs/rbac.md).

A route names a permission; a role either has it or gets ``403 FORBIDDEN``. Reads are open to
every role; anything that changes state, or that can reveal a secret, is not.
"""

from __future__ import annotations

READ = "read"
PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset(
        {
            READ,
            "tokens:write",
            "agents:write",
            "actions:execute",
            "actions:prepare",
            "commands:write",
            "services:write",
            "users:admin",
            "settings:write",
            "maintenance:run",
            "audit:export",
            "diagnostics:read",
            "backup:create",
            "bus:write",
            "topics:write",
        }
    ),
    "operator": frozenset(
        {
            READ,
            "tokens:write",
            "agents:write",
            "actions:execute",
            "actions:prepare",
            "commands:write",
            "services:write",
            "maintenance:run",
            "audit:export",
            "diagnostics:read",
            "bus:write",
            "topics:write",
        }
    ),
    "viewer": frozenset({READ}),
}


def allowed(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())
