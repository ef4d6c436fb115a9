"""Where the agent keeps ``{agentId, agentToken}`` between runs, and when it may use them.

The server shows an agent token exactly once, so losing it costs a new registration token.
The file is therefore written atomically (a temporary file in the same directory, fsynced,
then ``os.replace``), so a crash mid-write leaves the old file or the new one, never half of
one; and it is created with mode 0600 from the start, so the token is never readable by
others, not even for an instant.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from opstage_agent.config import AgentConfig
from opstage_agent.errors import ConfigurationError
from opstage_agent.logs import log
from opstage_agent.models import Credentials, format_time, utc_now

FILE_VERSION = 1


@dataclass(frozen=True, slots=True)
class StoredCredentials:
    agent_id: str
    agent_token: str = field(repr=False)
    agent_code: str
    backend_url: str


class TokenFileError(ConfigurationError):
    """The token file exists but cannot be read or is not ours."""


class TokenStore(Protocol):
    """Persistence for agent credentials; ``load`` raises :class:`TokenFileError` if corrupt."""

    @property
    def location(self) -> str: ...

    def load(self) -> StoredCredentials | None: ...

    def save(self, credentials: StoredCredentials) -> None: ...


class MemoryTokenStore:
    """Credentials that live as long as the process (no ``token_file`` configured)."""

    location = "memory"

    def __init__(self) -> None:
        self._credentials: StoredCredentials | None = None

    def load(self) -> StoredCredentials | None:
        return self._credentials

    def save(self, credentials: StoredCredentials) -> None:
        self._credentials = credentials


class FileTokenStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def location(self) -> str:
        return str(self.path)

    def load(self) -> StoredCredentials | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TokenFileError(f"cannot read token file {self.path}: {exc}") from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise TokenFileError(f"token file {self.path} is not valid JSON") from None
        if not isinstance(data, dict):
            raise TokenFileError(f"token file {self.path} does not hold an object")
        values = [data.get(k) for k in ("agentId", "agentToken", "agentCode", "backendUrl")]
        if not all(isinstance(v, str) and v for v in values):
            raise TokenFileError(
                f"token file {self.path} lacks agentId, agentToken, agentCode or backendUrl"
            )
        agent_id, token, code, url = (str(v) for v in values)
        return StoredCredentials(agent_id, token, code, url)

    def save(self, credentials: StoredCredentials) -> None:
        document: dict[str, Any] = {
            "version": FILE_VERSION,
            "agentId": credentials.agent_id,
            "agentToken": credentials.agent_token,
            "agentCode": credentials.agent_code,
            "backendUrl": credentials.backend_url,
            "savedAt": format_time(utc_now()),
        }
        write_private_atomically(self.path, (json.dumps(document, indent=2) + "\n").encode())


def write_private_atomically(path: Path, content: bytes) -> None:
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    # Make the rename itself durable; not every platform lets a directory be opened.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def token_store_for(path: Path | None) -> TokenStore:
    return FileTokenStore(path) if path is not None else MemoryTokenStore()


def usable_credentials(store: TokenStore, config: AgentConfig) -> Credentials | None:
    """The saved credentials if they fit this agent; None when it must register.

    A missing, corrupt or foreign file (another agent code or server) means registering
    again — possible only with a registration token, so without one it is a clear error.
    """
    has_token = bool(config.registration_token)
    try:
        stored = store.load()
    except TokenFileError as exc:
        if not has_token:
            raise ConfigurationError(
                f"{exc.message}, and no registration token (OPSTAGE_REGISTRATION_TOKEN) is "
                "configured to register again"
            ) from None
        log.warning("%s; registering again with the registration token", exc.message)
        return None
    if stored is None:
        if not has_token:
            raise ConfigurationError(
                f"no agent credentials in {store.location} and no registration token: set "
                "OPSTAGE_REGISTRATION_TOKEN (create one with `opstage token create`)"
            )
        return None
    if (stored.agent_code, stored.backend_url) != (config.agent_code, config.backend_url):
        message = (
            f"the credentials in {store.location} belong to agent {stored.agent_code!r} at "
            f"{stored.backend_url}, not {config.agent_code!r} at {config.backend_url}"
        )
        if not has_token:
            raise ConfigurationError(message)
        log.warning("%s; registering anew", message)
        return None
    return Credentials(stored.agent_id, stored.agent_token)


def keep_credentials(store: TokenStore, config: AgentConfig, credentials: Credentials) -> None:
    """Save what registration returned; a failure is logged, not raised (the agent works)."""
    if isinstance(store, MemoryTokenStore):
        log.warning(
            "no token file configured (OPSTAGE_AGENT_TOKEN_FILE): the agent token is kept in "
            "memory only, so the next start needs a new registration token"
        )
    stored = StoredCredentials(
        credentials.agent_id, credentials.agent_token, config.agent_code, config.backend_url
    )
    try:
        store.save(stored)
    except OSError as exc:
        log.error(
            "could not save the agent token to %s (%s); the agent runs, but a restart will need "
            "a new registration token",
            store.location,
            exc,
        )
