"""``POST /api/admin/backup/sqlite`` (owner, ``backup:create``): an online SQLite backup.

As the reference server does, the backup is written to the backup directory on the server
(``OPSTAGE_BACKUP_DIR``, default ``<data_dir>/backups``) and also returned as the response body
(``application/octet-stream``, ``Content-Disposition: attachment``), with its file name, size and
SHA-256 in ``X-Opstage-Backup-*`` headers. On PostgreSQL: ``409 BACKUP_UNSUPPORTED_ENGINE``,
whose message names ``pg_dump``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, Response

from opstage.api.deps import Ctx, admin_actor, require
from opstage.app.auth import SessionInfo
from opstage.app.backup import create_backup
from opstage.domain.timeutil import iso

router = APIRouter(tags=["AdminBackup"])
Owner = Annotated[SessionInfo, Depends(require("backup:create"))]


@router.post("/api/admin/backup/sqlite")
async def backup_sqlite(request: Request, ctx: Ctx, session: Owner) -> Response:
    made = await create_backup(ctx, admin_actor(request, session))
    return FileResponse(
        made.path,
        media_type="application/octet-stream",
        filename=made.name,
        headers={
            "X-Opstage-Backup-File": made.name,
            "X-Opstage-Backup-Size": str(made.size_bytes),
            "X-Opstage-Backup-Sha256": made.sha256,
            "X-Opstage-Backup-Created-At": iso(made.created_at) or "",
            "Cache-Control": "no-store",
        },
    )
