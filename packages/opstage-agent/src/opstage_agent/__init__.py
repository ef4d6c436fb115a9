"""opstage-agent: the Python Agent SDK for Opstage.

An agent makes a service a Capsule Service: it registers with Opstage, reports the service's
manifest (configs and operator actions), heartbeats its health, receives the commands operators
run and reports their results. :class:`AsyncAgent` runs on the host's asyncio loop;
:class:`Agent` runs the same agent on a loop of its own in a background thread, for
synchronous programs. ``opstage_agent.fastapi.attach(app, agent)`` ties either to a FastAPI app.

Exceptions — every error the SDK raises is an :class:`OpstageAgentError`, with the contract's
``code`` (e.g. ``AGENT_REVOKED``), the HTTP ``status`` and the server's ``details`` when the
server sent them::

    OpstageAgentError
    ├── ConfigurationError      missing/invalid settings, unreadable token file, bad declaration
    ├── NetworkError            Opstage unreachable or the connection broke (retried)
    ├── ServerError             5xx, or an answer outside the contract (retried)
    ├── AuthenticationError     agent token refused: invalid, rotated, expired, another agent's
    │   └── AgentRevokedError   an operator revoked the agent (needs a token scoped to its code)
    ├── AgentDisabledError      an operator disabled the agent (it waits until re-enabled)
    ├── RegistrationError       registration refused (token invalid/used/expired/revoked/scoped
    │                           elsewhere, agent revoked, service code taken)
    ├── RequestRejectedError    any other 4xx; never retried
    │   ├── ServiceCodeTakenError   409 CAPSULE_SERVICE_CODE_TAKEN
    │   ├── ResultTooLargeError     result over OPSTAGE_COMMAND_RESULT_MAX_BYTES (local or 413)
    │   ├── RateLimitedError        429, with ``retry_after``
    │   └── BusUnavailableError     no Capsule Bus, or it is switched off
    └── AgentNotRunningError    the call needs a started, registered agent

:class:`ActionError` is not an SDK error: raise it from an action handler to fail the command
with your own ``code``, ``message`` and ``details``.
"""

from opstage_agent.actions import ActionContext, ActionResult, ActionSpec, Prepared
from opstage_agent.aio import AsyncAgent
from opstage_agent.config import AgentConfig
from opstage_agent.core import Phase
from opstage_agent.errors import (
    ActionError,
    AgentDisabledError,
    AgentNotRunningError,
    AgentRevokedError,
    AuthenticationError,
    BusUnavailableError,
    ConfigurationError,
    NetworkError,
    OpstageAgentError,
    RateLimitedError,
    RegistrationError,
    RequestRejectedError,
    ResultTooLargeError,
    ServerError,
    ServiceCodeTakenError,
    TopicNotFoundError,
)
from opstage_agent.models import (
    Capabilities,
    Command,
    ConfigItem,
    Health,
    PublishedEvent,
    TopicMessage,
    TopicReceipt,
)
from opstage_agent.sync import Agent
from opstage_agent.token_store import FileTokenStore, MemoryTokenStore, TokenStore
from opstage_agent.version import __version__

__all__ = [
    "ActionContext",
    "ActionError",
    "ActionResult",
    "ActionSpec",
    "Agent",
    "AgentConfig",
    "AgentDisabledError",
    "AgentNotRunningError",
    "AgentRevokedError",
    "AsyncAgent",
    "AuthenticationError",
    "BusUnavailableError",
    "Capabilities",
    "Command",
    "ConfigItem",
    "ConfigurationError",
    "FileTokenStore",
    "Health",
    "MemoryTokenStore",
    "NetworkError",
    "OpstageAgentError",
    "Phase",
    "Prepared",
    "PublishedEvent",
    "RateLimitedError",
    "RegistrationError",
    "RequestRejectedError",
    "ResultTooLargeError",
    "ServerError",
    "ServiceCodeTakenError",
    "TokenStore",
    "TopicMessage",
    "TopicNotFoundError",
    "TopicReceipt",
    "__version__",
]
