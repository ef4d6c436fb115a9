"""Bad input in request headers, which the OpenAPI fuzz run does not vary: every answer is the
contract's error envelope, never a 500.

A Capsule Bus publish's ``Idempotency-Key`` is stored in a 200-character column, like the body's
``eventId``: a longer header used to pass unchecked, and PostgreSQL's refusal of the write made it
a 500 (SQLite stored it). It is ``422 VALIDATION_FAILED`` naming the header on both engines, as on
a topic publish; 200 characters are accepted and replay.
"""

from __future__ import annotations

import httpx

from ..support.bus import World


def _refused(r: httpx.Response, path: str) -> None:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_FAILED", error
    assert [i["path"] for i in error["details"]["issues"]] == [path], error


def test_bus_publish_idempotency_key_longer_than_its_column_is_refused(world: World) -> None:
    world.route(action="note")
    _refused(world.publish(headers={"Idempotency-Key": "k" * 201}), "Idempotency-Key")
    _refused(world.publish(headers={"Idempotency-Key": "k" * 5000}), "Idempotency-Key")
    longest = {"Idempotency-Key": "k" * 200}
    first = world.publish(headers=longest)
    assert first.status_code == 200, first.text
    again = world.publish(headers=longest)
    assert again.json()["data"]["replay"] is True
    assert again.json()["data"]["eventId"] == first.json()["data"]["eventId"]
