"""Stored documents built without validation are exactly what validation would build."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

import pytest
from beanie.odm.utils.parsing import parse_obj
from bson import ObjectId
from pydantic import BaseModel

import db
from demo import seed_demo
from models import DOCUMENT_MODELS
from models.patients import Patient, Sex
from models.scheduling import Appointment, AppointmentStatus
from models.trusted import trusted

pytestmark = pytest.mark.usefixtures("database")


def same(a: Any, b: Any, path: str = "") -> list[str]:
    """Differences in value or in type, recursively (``==`` alone takes "x" for an enum)."""
    if type(a) is not type(b):
        return [f"{path}: {type(a).__name__} != {type(b).__name__}"]
    if isinstance(a, BaseModel):
        names = type(a).model_fields
        return [d for n in names for d in same(getattr(a, n), getattr(b, n), f"{path}.{n}")]
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in same(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys differ"]
        return [d for k in a for d in same(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, datetime) and a.tzinfo != b.tzinfo:
        return [f"{path}: tzinfo {a.tzinfo} != {b.tzinfo}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


async def test_every_seeded_document_builds_as_validation_would() -> None:
    await seed_demo(12)
    checked: dict[str, int] = {}
    for model in DOCUMENT_MODELS:
        async for raw in db.collection(model).find({}):
            expected = parse_obj(model, dict(raw))
            built = trusted(model, raw)
            assert same(expected, built) == [], (model.__name__, raw["_id"])
            checked[model.__name__] = checked.get(model.__name__, 0) + 1
    # The demo holds the kinds that carry every conversion: enums, nested models, dates.
    assert {"Patient", "Appointment", "BillingAccount", "WorkingHours"} <= checked.keys()


async def test_conversions_and_defaults_of_an_older_document() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5)  # BSON datetimes come back naive UTC
    stored: dict[str, Any] = {
        "_id": ObjectId(),
        "first_name": "Zoë",
        "last_name": "Lefèvre",
        "date_of_birth": datetime(1990, 5, 17),  # a date is stored as its midnight
        "sex": "female",
        "created_at": created,
        "contact": {
            "phone": "+44 20 7946 0000",
            "address": {
                "line1": "1 High St",
                "city": "London",
                "postal_code": "N1 9GU",
                "country": "GB",
            },
        },
    }  # no updated_at, allergies, care...: written before those fields existed
    built = trusted(Patient, stored)
    expected = Patient.model_validate({**stored, "created_at": created.replace(tzinfo=UTC)})
    assert same(expected, built) == []
    assert built.date_of_birth == date(1990, 5, 17) and type(built.date_of_birth) is date
    assert built.sex is Sex.FEMALE and isinstance(built.sex, Enum)
    assert built.created_at.tzinfo is UTC and built.updated_at == built.created_at
    assert built.allergies == [] and built.allergies is not trusted(Patient, stored).allergies
    assert built.model_fields_set >= {"first_name", "date_of_birth", "created_at", "contact"}
    assert "updated_at" not in built.model_fields_set


async def test_built_documents_behave_like_validated_ones() -> None:
    appointment = Appointment(
        patient_id=ObjectId(),
        doctor_id=ObjectId(),
        department_id=ObjectId(),
        start_at=datetime(2031, 3, 3, 8, tzinfo=UTC),
        end_at=datetime(2031, 3, 3, 9, tzinfo=UTC),
        reason="Check-up",
    )
    await appointment.insert()
    raw = await db.collection(Appointment).find_one({"_id": appointment.id})
    assert raw is not None
    built = trusted(Appointment, raw)
    assert built.status is AppointmentStatus.SCHEDULED and built.id == appointment.id
    built.reason = "Follow-up"
    await built.save()  # a trusted document is a full Beanie document: it writes back
    again = await Appointment.get(appointment.id)
    assert again is not None and again.reason == "Follow-up"
    assert built.model_dump(mode="json") == again.model_dump(mode="json")
