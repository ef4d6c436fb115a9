"""The SDK refuses, at start, the agent codes the server refuses at registration (issue 15)."""

from __future__ import annotations

import pytest
from opstage_agent.config import AgentConfig
from opstage_agent.errors import ConfigurationError


@pytest.mark.parametrize(
    "code",
    [
        "\u0430gent",  # a Cyrillic a
        "agent\u200d",  # zero-width joiner
        "agent\u202e",  # bidi override
        "\uff41gent",  # a fullwidth a
        "billing agent",
        "agent\x00",
        "-agent",
        "",
        "a" * 121,
    ],
)
def test_lookalike_agent_codes_fail_at_start(code: str) -> None:
    with pytest.raises(ConfigurationError, match="agent_code"):
        AgentConfig(backend_url="http://opstage.test", agent_code=code, service_code="svc")


@pytest.mark.parametrize("code", ["billing", "Billing.Worker_2", "ns:orders-1", "a" * 120])
def test_plain_agent_codes_are_accepted(code: str) -> None:
    assert AgentConfig(backend_url="http://opstage.test", agent_code=code, service_code="svc")
