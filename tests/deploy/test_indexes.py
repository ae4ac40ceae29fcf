"""Every query the services run is served by a declared index (docs/scaling.md).

A representative part of the suite runs in a subprocess with ``tests.deploy.query_shapes``
recording the shape of each query SHMS builds (equality fields, sort, ranges: as the services
hand them to the driver, queries tests make themselves left out); each shape must then be served
by an index the models declare, by the equality-sort-range rule, or be allowed below with the
reason. A new query on a large collection without its index fails here, not in production.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import db
from models import DOCUMENT_MODELS
from tests.deploy.query_shapes import ROOT, Key, Shape, covered_by, covering, shapes

RECORDED_PART = [
    "tests/graphql",
    "tests/scheduling",
    "tests/e2e/test_outpatient_journey.py",
    "tests/e2e/test_inpatient_journey.py",
    "tests/e2e/test_ward_round.py",
    "tests/outpatient",
    "tests/emergency",
    "tests/orders",
    "tests/notifications",
]
"""The journeys (outpatient, inpatient, ward round: admissions, orders, nursing, medication,
pharmacy, laboratory, imaging on the way) and the folders of the busiest collections; the whole
suite would take as long again, so the other modules count on the journeys."""

SMALL_COLLECTIONS = {
    "departments": "a facility has tens of departments; read whole and cached",
    "doctors": "the staff directory (hundreds to a few thousand rows) sorted by name in memory",
    "nurses": "the staff directory, as doctors",
    "admin_staff": "the staff directory, as doctors",
}
"""Collections whose every query may scan: they stay small at any number of patients."""

ALLOWED: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {
    ("emergency_visits", ("status",), ("acuity_rank", "arrived_at", "_id")): (
        "the ED boards' rebuild at start-up: open visits of every department, once per process"
    ),
    ("outpatient_visits", ("status",), ("priority_rank", "checked_in_at", "_id")): (
        "the waiting rooms' rebuild at start-up: today's waiting visits, once per process"
    ),
    ("outpatient_visits", ("department_id", "status"), ("completed_at", "_id")): (
        "demo.wards seeding only (never served to a request)"
    ),
    ("supply_levels", ("lots.quantity",), ()): (
        "inventory's lot pruning job; one level per item and store: bounded by the catalogue, "
        "not by patients"
    ),
}
"""(collection, equality fields, sort) served by a scan on purpose, with the reason."""


async def declared_indexes(database: Any) -> dict[str, list[Key]]:
    """The indexes ``init_beanie`` created from the models' declarations, by collection."""
    found: dict[str, list[Key]] = {}
    for model in DOCUMENT_MODELS:
        collection = db.collection(model)
        info = await collection.index_information()
        keys = [tuple((name, int(d)) for name, d in spec["key"]) for spec in info.values()]
        found.setdefault(collection.name, []).extend(keys)
    return found


def test_a_shape_reads_equality_sort_and_range_fields() -> None:
    spec = {
        "patient_id": "p",
        "status": {"$in": ["scheduled"]},
        "start_at": {"$gte": 1},
        "$or": [{"doctor_id": "d"}, {"equipment_id": "e"}],
    }
    found = set(shapes("appointments", spec, [("start_at", 1), ("_id", 1)]))
    at = ("start_at",)
    assert found == {
        Shape("appointments", ("doctor_id", "patient_id", "status"), ("start_at", "_id"), at),
        Shape("appointments", ("equipment_id", "patient_id", "status"), ("start_at", "_id"), at),
    }
    care = {"care": {"$elemMatch": {"clinician_id": "c", "until": {"$gte": 1}}}}
    assert set(shapes("patients", care)) == {
        Shape("patients", ("care.clinician_id",), (), ("care.until",))
    }


def test_the_rule_wants_equality_then_sort() -> None:
    by_patient = Shape("appointments", ("patient_id",), ("start_at", "_id"), ())
    assert covered_by(by_patient, (("patient_id", 1), ("start_at", 1), ("_id", 1)))
    assert not covered_by(by_patient, (("patient_id", 1),)), "the sort would be in memory"
    assert not covered_by(by_patient, (("start_at", 1), ("patient_id", 1)))
    a_range = Shape("appointments", (), (), ("start_at",))
    assert covered_by(a_range, (("start_at", 1), ("_id", 1)))
    assert covering(Shape("x", ("_id",), (), ()), []) == (("_id", 1),)


def record(tmp_path: Path) -> list[dict[str, Any]]:
    """Run ``RECORDED_PART`` with the recorder; the shapes it saw, with where each was built."""
    out = tmp_path / "shapes.json"
    env = {**os.environ, "SHMS_QUERY_SHAPES": str(out), "PYTHONPATH": ROOT}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    command += ["-p", "tests.deploy.query_shapes", *RECORDED_PART]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    # Failures of the recorded part are reported by the suite itself; here only its queries count.
    assert run.returncode in (0, 1), run.stdout[-3000:] + run.stderr[-3000:]
    rows: list[dict[str, Any]] = json.loads(out.read_text())
    return rows


@pytest.mark.skipif(
    bool(os.environ.get("SHMS_TEST_MONGODB_URL")), reason="records the embedded store's reads"
)
async def test_every_recorded_query_is_served_by_a_declared_index(
    database: Any, tmp_path: Path
) -> None:
    indexes = await declared_indexes(database)
    rows = record(tmp_path)
    assert len(rows) > 100, "the recorded part ran the services' queries"
    unserved = []
    for row in rows:
        shape = Shape.from_json(row)
        if shape.collection in SMALL_COLLECTIONS:
            continue
        if (shape.collection, shape.equality, shape.sort) in ALLOWED:
            continue
        if covering(shape, indexes.get(shape.collection, [])) is None:
            unserved.append(f"{row['origin']}: {shape}")
    assert not unserved, "declare an index for these queries:\n" + "\n".join(unserved)
