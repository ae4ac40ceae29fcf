"""Tests the wire pass (``make test-wire``: motor against a mongoeco server) expects to fail,
each for a way mongoeco differs from MongoDB. SHMS keeps the behaviour MongoDB documents; these
are marked xfail only when ``SHMS_TEST_WIRE=mongoeco``, never against mongomock or MongoDB.
Loaded as a plugin by ``scripts/test-wire`` (``-p tests.wire_deviations``).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

ELEM_MATCH_OR = (
    "mongoeco 4.11 refuses a logical operator beside field conditions inside $elemMatch "
    "('$elemMatch cannot mix operator and field conditions'); MongoDB accepts "
    "{care: {$elemMatch: {clinician_id: x, $or: [...]}}} (services.care.where)"
)

SEED_CANCELLED = (
    "the demo seed's insert_many of a whole facility ends in 'operation cancelled' from the "
    "server (not a MongoDB answer to a valid insert; not investigated further)"
)

DEVIATIONS: dict[str, str] = {
    "tests/graphql/test_batching.py::test_a_clinicians_page_costs_the_same_for_10_or_100_rows": (
        ELEM_MATCH_OR
    ),
    "tests/graphql/test_clinical.py::test_record_treatment": ELEM_MATCH_OR,
    "tests/graphql/test_clinical.py::test_clinical_lists_filter": ELEM_MATCH_OR,
    "tests/scheduling/test_demo_reservations.py::test_demo_appointments_hold_their_slots": (
        SEED_CANCELLED
    ),
}
"""Test node id (or a prefix of one: a module, a class) -> the mongoeco difference it meets."""


def deviation(nodeid: str) -> str | None:
    for known, reason in DEVIATIONS.items():
        if nodeid == known or nodeid.startswith(known + "::") or nodeid.startswith(known + "["):
            return reason
    return None


def pytest_collection_modifyitems(config: Any, items: list[pytest.Item]) -> None:
    if os.environ.get("SHMS_TEST_WIRE") != "mongoeco":
        return
    for item in items:
        reason = deviation(item.nodeid)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=f"mongoeco: {reason}", strict=False))
