"""Redaction: secret-named keys and token-shaped values never survive, anywhere in a document."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from opstage.domain.ids import new_token
from opstage.domain.redaction import REDACTED, is_secret_key, mask_url, redact


def test_secret_keys_are_redacted_at_any_depth() -> None:
    doc = {
        "apiKey": "k",
        "nested": [{"password": "p", "ok": 1}, {"clientSecret": "s"}],
        "headers": {"Authorization": "Bearer x", "accept": "json"},
        "note": "fine",
    }
    out = redact(doc)
    assert out["apiKey"] == REDACTED
    assert out["nested"][0] == {"password": REDACTED, "ok": 1}
    assert out["nested"][1]["clientSecret"] == REDACTED
    assert out["headers"] == {"Authorization": REDACTED, "accept": "json"}
    assert out["note"] == "fine"
    assert doc["apiKey"] == "k", "redact must copy, not mutate"


def test_token_values_are_masked_inside_free_text() -> None:
    raw = new_token("opstage_agent_")
    out = redact({"message": f"the token was {raw}, oops", "list": [raw]})
    assert raw not in json.dumps(out)
    assert "opstage_agent_" in out["message"]


def test_keys_that_only_look_alike_are_kept() -> None:
    assert redact({"revokedTokens": 2}) == {"revokedTokens": 2}  # by its value: a count
    assert not is_secret_key("name")
    assert is_secret_key("db_password")
    assert is_secret_key("ACCESS_KEY")


def test_url_passwords_are_masked() -> None:
    masked = mask_url("postgresql://user:hunter2@db:5432/x")
    assert "hunter2" not in masked
    assert masked.startswith("postgresql://user:")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values, st.sampled_from(["opstage_reg_", "opstage_agent_"]))
def test_no_token_survives_anywhere(doc: Any, prefix: str) -> None:
    raw = new_token(prefix)
    wrapped = {"a": doc, "b": [doc, f"x{raw}y"], "c": {"deep": {"value": raw}}}
    assert raw not in json.dumps(redact(wrapped))


@given(json_values)
def test_redaction_is_idempotent(doc: Any) -> None:
    once = redact(doc)
    assert redact(once) == once
