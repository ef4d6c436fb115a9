"""Redaction by what a value is, not by a substring of its key (issue 15, A4).

Under a secret-looking key: strings, objects and arrays are hidden; booleans and nulls never
are; numbers only when the key names one secret; Opstage ids are references, not secrets.
Token-shaped strings are masked everywhere. Payload scrubbing adds the inputSchema's own
declarations (``writeOnly``, ``format: password``, ``sensitive``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opstage.domain.actions import holds_scrubbed_values, scrub_payload
from opstage.domain.identity import normalize_username, username_key
from opstage.domain.ids import new_id, new_token
from opstage.domain.redaction import REDACTED, is_secret_value, mask_strings, redact

COUNT_KEYS = [
    "expiredRegistrationTokens",
    "revokedTokens",
    "tokenCount",
    "tokenTtlSeconds",
    "secretsRotated",
    "passwordMinLength",
    "secretCount",
]
SINGLE_SECRET_KEYS = ["token", "apiKey", "password", "db_password", "clientSecret", "accessKey"]


@pytest.mark.parametrize("key", COUNT_KEYS)
def test_a_count_or_measure_under_a_token_named_key_is_kept(key: str) -> None:
    assert redact({key: 3}) == {key: 3}
    assert redact({key: 0}) == {key: 0}
    assert redact({key: 2.5}) == {key: 2.5}


@pytest.mark.parametrize("key", SINGLE_SECRET_KEYS)
def test_a_number_that_is_the_secret_is_hidden(key: str) -> None:
    assert redact({key: 123456}) == {key: REDACTED}


@pytest.mark.parametrize("key", COUNT_KEYS + SINGLE_SECRET_KEYS)
def test_flags_and_absences_are_never_secrets(key: str) -> None:
    doc = {key: True, "x": {key: False}, "y": [{key: None}]}
    assert redact(doc) == doc


@pytest.mark.parametrize("key", COUNT_KEYS + SINGLE_SECRET_KEYS)
def test_strings_objects_and_arrays_under_secret_keys_are_hidden(key: str) -> None:
    out = redact({key: "hunter2", "o": {key: {"a": 1}}, "l": {key: ["x"]}})
    assert out == {key: REDACTED, "o": {key: REDACTED}, "l": {key: REDACTED}}


def test_opstage_ids_under_token_named_keys_are_references() -> None:
    tok = new_id("tok")
    atk = new_id("atk")
    assert redact({"registrationTokenId": tok, "agentTokenId": atk}) == {
        "registrationTokenId": tok,
        "agentTokenId": atk,
    }
    # Something merely shaped like an id with an unknown prefix is still hidden.
    assert redact({"token": "xyz_" + tok[4:]}) == {"token": REDACTED}


def test_mask_strings_keeps_secret_named_keys_but_masks_tokens() -> None:
    raw = new_token("opstage_agent_")
    schema = {"properties": {"password": {"type": "string", "description": f"not {raw}"}}}
    out = mask_strings(schema)
    assert out["properties"]["password"]["type"] == "string"
    assert raw not in json.dumps(out)


# Property tests --------------------------------------------------------------------------

keys = st.sampled_from(COUNT_KEYS + SINGLE_SECRET_KEYS + ["name", "note", "count"]) | st.text(
    max_size=12
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=25,
)


def _leaves(value: Any, key: str | None = None) -> list[tuple[str | None, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, k)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v, key)]
    return [(key, value)]


@given(json_values)
def test_booleans_and_nulls_always_survive(doc: Any) -> None:
    before = [v for _, v in _leaves(doc) if v is None or type(v) is bool]
    after = [v for _, v in _leaves(redact(doc)) if v is None or type(v) is bool]
    # Redaction may hide a whole object or array (and the flags in it), never a flag alone.
    assert len(after) <= len(before)
    assert redact({"flag": doc}) == {"flag": redact(doc)}


@given(json_values)
def test_no_secret_leaf_survives(doc: Any) -> None:
    for key, value in _leaves(redact(doc)):
        if key is not None and value not in (None, REDACTED):
            assert not is_secret_value(key, value), (key, value)


@given(json_values, st.sampled_from(["opstage_reg_", "opstage_agent_"]))
def test_no_token_survives_redaction_or_masking(doc: Any, prefix: str) -> None:
    raw = new_token(prefix)
    wrapped = {"a": doc, "b": [doc, f"x{raw}y"], "revokedTokens": 2, "c": {"note": raw}}
    for out in (redact(wrapped), mask_strings(wrapped)):
        assert raw not in json.dumps(out)
    assert redact(wrapped)["revokedTokens"] == 2


@given(json_values)
def test_redaction_and_masking_are_idempotent(doc: Any) -> None:
    assert redact(redact(doc)) == redact(doc)
    assert mask_strings(mask_strings(doc)) == mask_strings(doc)


# Payload scrubbing -----------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {
        "pin": {"type": "string", "writeOnly": True},
        "otp": {"type": "string", "format": "password"},
        "seed": {"type": "string", "sensitive": True},
        "inner": {
            "type": "object",
            "properties": {"code": {"type": "string", "x-sensitive": True}},
        },
        "host": {"type": "string"},
        "port": {"type": "integer"},
    },
}


def test_scrub_erases_declared_and_named_secrets_only() -> None:
    payload = {
        "pin": "1234",
        "otp": "999999",
        "seed": "abc",
        "inner": {"code": "c0de", "other": "kept"},
        "host": "db",
        "port": 5432,
        "password": "p",
        "empty": "",
    }
    out = scrub_payload(payload, SCHEMA)
    assert out == {
        "pin": REDACTED,
        "otp": REDACTED,
        "seed": REDACTED,
        "inner": {"code": REDACTED, "other": "kept"},
        "host": "db",
        "port": 5432,
        "password": REDACTED,
        "empty": "",
    }
    assert payload["pin"] == "1234", "scrub copies"
    assert scrub_payload(out, SCHEMA) == out
    assert holds_scrubbed_values(out)
    assert not holds_scrubbed_values({"host": "db", "port": 5432, "flag": True})
    assert scrub_payload({"host": "db"}, None) == {"host": "db"}


@given(st.dictionaries(st.sampled_from(list(SCHEMA["properties"])), json_values, max_size=6))
def test_scrub_is_idempotent_and_never_keeps_a_declared_secret(payload: dict[str, Any]) -> None:
    once = scrub_payload(payload, SCHEMA)
    assert scrub_payload(once, SCHEMA) == once
    for name in ("pin", "otp", "seed"):
        if payload.get(name) not in (None, ""):
            assert once[name] == REDACTED


# Usernames -------------------------------------------------------------------------------


@given(st.text(max_size=30))
def test_username_rules_are_total_and_stable(raw: str) -> None:
    key = username_key(raw)
    assert username_key(key) == key
    try:
        name = normalize_username(raw)
    except ValueError:
        return
    assert name == name.strip() and name
    assert normalize_username(name) == name
    assert username_key(name) == key
