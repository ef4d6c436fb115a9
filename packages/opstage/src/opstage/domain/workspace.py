"""The one workspace of Community Edition, as the reference server names it.

CE has no workspaces to choose from, but its dashboard and metrics carry this object and its
maintenance audit rows target it, so clients written for CE find it where they expect it.
"""

from __future__ import annotations

from typing import Final

DEFAULT_WORKSPACE_ID: Final = "wks_default"


def default_workspace() -> dict[str, str]:
    """A fresh copy of the reference's ``DEFAULT_WORKSPACE`` (callers may serialise it)."""
    return {
        "id": DEFAULT_WORKSPACE_ID,
        "code": "default",
        "name": "Default Workspace",
        "status": "ACTIVE",
    }
