from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from errors import BadUserInput, Conflict, NotFound
from models.departments import Department
from services import departments
from services.pagination import PageArgs
from tests.services import factories as make

pytestmark = pytest.mark.usefixtures("database")


async def test_create_department_stores_it() -> None:
    created = await departments.create_department(
        {"name": " Cardiology ", "code": "CARD", "location": "Building A"}
    )

    stored = await make.stored(Department, created.id)
    assert stored is not None
    assert stored["name"] == "Cardiology"
    assert stored["code"] == "CARD"
    assert stored["location"] == "Building A"


async def test_create_department_rejects_bad_code_and_writes_nothing() -> None:
    with pytest.raises(BadUserInput) as info:
        await departments.create_department({"name": "Cardiology", "code": "card"})

    assert set(info.value.fields) == {"code"}
    assert await make.all_stored(Department) == []


async def test_create_department_with_taken_code_is_a_conflict() -> None:
    await make.department(code="CARD")

    with pytest.raises(Conflict):
        await departments.create_department({"name": "Other", "code": "CARD"})

    assert [d["code"] for d in await make.all_stored(Department)] == ["CARD"]
    assert [d["name"] for d in await make.all_stored(Department)] != ["Other"]


async def test_create_department_refuses_a_head_before_it_has_doctors() -> None:
    other = await make.department()
    doctor = await make.doctor(make.id_of(other))

    with pytest.raises(BadUserInput) as info:
        await departments.create_department(
            {"name": "Radiology", "code": "RAD", "head_doctor_id": doctor.id}
        )

    assert "headDoctorId" in info.value.fields
    assert len(await make.all_stored(Department)) == 1


async def test_get_department() -> None:
    created = await make.department()
    assert created.id is not None

    found = await departments.get_department(created.id)

    assert found.code == created.code


async def test_get_missing_department_is_not_found() -> None:
    with pytest.raises(NotFound):
        await departments.get_department(ObjectId())


async def test_list_departments_by_name_in_pages() -> None:
    for name in ["Radiology", "Cardiology", "Oncology"]:
        await make.department(name=name)

    first = await departments.list_departments(PageArgs(2))
    rest = await departments.list_departments(PageArgs(2, first.cursors[-1]))

    assert [d.name for d in first.items] == ["Cardiology", "Oncology"]
    assert first.has_next
    assert [d.name for d in rest.items] == ["Radiology"]
    assert not rest.has_next
    assert await first.count() == 3


async def test_update_department_changes_only_given_fields() -> None:
    created = await make.department(location="Building A")
    assert created.id is not None

    updated = await departments.update_department(created.id, {"location": "Building B"})

    stored = await make.stored(Department, created.id)
    assert stored is not None
    assert updated.location == stored["location"] == "Building B"
    assert stored["name"] == created.name
    assert updated.updated_at >= created.updated_at


async def test_update_department_to_a_taken_name_is_a_conflict() -> None:
    await make.department(name="Cardiology")
    other = await make.department(name="Radiology")
    before = await make.stored(Department, other.id)

    with pytest.raises(Conflict):
        await departments.update_department(make.id_of(other), {"name": "Cardiology"})

    assert await make.stored(Department, other.id) == before


async def test_update_missing_department_is_not_found() -> None:
    with pytest.raises(NotFound):
        await departments.update_department(ObjectId(), {"location": "Nowhere"})


async def test_head_doctor_must_be_an_active_doctor_of_the_department() -> None:
    cardiology = await make.department()
    radiology = await make.department()
    assert cardiology.id is not None and radiology.id is not None
    own = await make.doctor(cardiology.id)
    outsider = await make.doctor(radiology.id)
    retired = await make.doctor(cardiology.id, active=False)
    before = await make.stored(Department, cardiology.id)

    rejected: list[tuple[Any, str]] = [
        (outsider.id, "must be a doctor of this department"),
        (retired.id, "must be an active doctor"),
        (ObjectId(), "no such doctor"),
    ]
    for doctor_id, reason in rejected:
        with pytest.raises(BadUserInput) as info:
            await departments.update_department(cardiology.id, {"head_doctor_id": doctor_id})
        assert info.value.fields == {"headDoctorId": reason}
    assert await make.stored(Department, cardiology.id) == before

    headed = await departments.update_department(cardiology.id, {"head_doctor_id": own.id})
    assert headed.head_doctor_id == own.id
    stored = await make.stored(Department, cardiology.id)
    assert stored is not None and stored["head_doctor_id"] == own.id

    cleared = await departments.update_department(cardiology.id, {"head_doctor_id": None})
    assert cleared.head_doctor_id is None
    stored = await make.stored(Department, cardiology.id)
    assert stored is not None and stored.get("head_doctor_id") is None
