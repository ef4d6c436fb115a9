"""Route payload filters, evaluated on the event document (domain/bus.py)."""

from __future__ import annotations

from opstage.domain.bus import filters_pass

DOC = {"payload": {"region": "eu", "flag": False, "none": None}}


def test_exists_without_a_value_means_present_however_it_was_stored() -> None:
    # Routes stored before the admin API dropped the model's null carry {"value": None}.
    for rule in ({"path": "/payload/region", "op": "exists"},
                 {"path": "/payload/region", "op": "exists", "value": None}):  # fmt: skip
        assert filters_pass([rule], DOC)
        assert not filters_pass([{**rule, "path": "/payload/missing"}], DOC)


def test_exists_false_means_absent_and_null_or_false_values_are_present() -> None:
    assert filters_pass([{"path": "/payload/missing", "op": "exists", "value": False}], DOC)
    assert not filters_pass([{"path": "/payload/flag", "op": "exists", "value": False}], DOC)
    assert filters_pass([{"path": "/payload/none", "op": "exists", "value": True}], DOC)


def test_equals_and_in() -> None:
    assert filters_pass([{"path": "/payload/region", "op": "equals", "value": "eu"}], DOC)
    assert not filters_pass([{"path": "/payload/region", "op": "equals", "value": "us"}], DOC)
    assert filters_pass([{"path": "/payload/region", "op": "in", "value": ["us", "eu"]}], DOC)
    assert not filters_pass([{"path": "/payload/missing", "op": "in", "value": [None]}], DOC)
