from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from errors import BadUserInput, Conflict, NotFound
from models.staff import AdminDuty, AdminStaff, Doctor, Nurse
from services import departments, staff
from services.pagination import PageArgs
from tests.services import factories as make

pytestmark = pytest.mark.usefixtures("database")

PAGE = PageArgs(20)


def doctor_data(department_id: ObjectId, **overrides: Any) -> dict[str, Any]:
    return {
        "first_name": "Gregory",
        "last_name": "House",
        "department_id": department_id,
        "specialty": "Diagnostics",
        "licence_number": "MD-0001",
        "contact": {"email": "house@example.org"},
        **overrides,
    }


# Doctors


async def test_create_doctor_stores_it() -> None:
    dept = await make.department()

    created = await staff.create_doctor(doctor_data(make.id_of(dept)))

    stored = await make.stored(Doctor, created.id)
    assert stored is not None
    assert stored["licence_number"] == "MD-0001"
    assert stored["department_id"] == dept.id
    assert stored["contact"]["email"] == "house@example.org"
    assert stored["active"] is True


async def test_create_doctor_needs_an_existing_department() -> None:
    with pytest.raises(BadUserInput) as info:
        await staff.create_doctor(doctor_data(ObjectId()))

    assert info.value.fields == {"departmentId": "no such department"}
    assert await make.all_stored(Doctor) == []


async def test_create_doctor_reports_invalid_fields_by_path() -> None:
    dept = await make.department()

    with pytest.raises(BadUserInput) as info:
        await staff.create_doctor(
            doctor_data(make.id_of(dept), contact={"email": "nope"}, licence_number="x")
        )

    assert set(info.value.fields) == {"contact.email", "licenceNumber"}
    assert await make.all_stored(Doctor) == []


async def test_licence_numbers_are_unique() -> None:
    dept = await make.department()
    await staff.create_doctor(doctor_data(make.id_of(dept)))

    with pytest.raises(Conflict):
        await staff.create_doctor(doctor_data(make.id_of(dept), last_name="Wilson"))

    assert [d["last_name"] for d in await make.all_stored(Doctor)] == ["House"]


async def test_get_doctor_and_missing_doctor() -> None:
    dept = await make.department()
    doctor = await make.doctor(make.id_of(dept))

    assert (await staff.get_doctor(make.id_of(doctor))).licence_number == doctor.licence_number
    with pytest.raises(NotFound):
        await staff.get_doctor(ObjectId())


async def test_list_doctors_by_department_and_specialty() -> None:
    cardiology = make.id_of(await make.department())
    radiology = make.id_of(await make.department())
    a = await make.doctor(cardiology, last_name="Adams", specialty="Cardiology")
    b = await make.doctor(cardiology, last_name="Baker", specialty="Paediatric Cardiology")
    c = await make.doctor(radiology, last_name="Clark", specialty="cardiology")
    d = await make.doctor(radiology, last_name="Davis", specialty="Radiology (M.D.)")

    everyone = await staff.list_doctors(None, None, PAGE)
    in_cardiology = await staff.list_doctors(cardiology, None, PAGE)
    cardiologists = await staff.list_doctors(None, " CARDIOLOGY ", PAGE)
    both = await staff.list_doctors(radiology, "cardiology", PAGE)
    literal = await staff.list_doctors(None, "radiology (m.d.)", PAGE)
    pattern = await staff.list_doctors(None, ".*", PAGE)

    assert [x.id for x in everyone.items] == [a.id, b.id, c.id, d.id]
    assert [x.id for x in in_cardiology.items] == [a.id, b.id]
    assert [x.id for x in cardiologists.items] == [a.id, c.id]
    assert [x.id for x in both.items] == [c.id]
    assert [x.id for x in literal.items] == [d.id]
    assert pattern.items == []


async def test_update_doctor_moves_department() -> None:
    old = make.id_of(await make.department())
    new = make.id_of(await make.department())
    doctor = await make.doctor(old)

    updated = await staff.update_doctor(make.id_of(doctor), {"department_id": new})

    stored = await make.stored(Doctor, doctor.id)
    assert stored is not None
    assert updated.department_id == stored["department_id"] == new


async def test_update_doctor_rejections_change_nothing() -> None:
    dept = make.id_of(await make.department())
    doctor = await make.doctor(dept)
    other = await make.doctor(dept)
    before = await make.stored(Doctor, doctor.id)

    with pytest.raises(BadUserInput) as info:
        await staff.update_doctor(make.id_of(doctor), {"department_id": ObjectId()})
    assert info.value.fields == {"departmentId": "no such department"}
    with pytest.raises(Conflict):
        await staff.update_doctor(make.id_of(doctor), {"licence_number": other.licence_number})
    with pytest.raises(BadUserInput):
        await staff.update_doctor(make.id_of(doctor), {"specialty": ""})
    with pytest.raises(NotFound):
        await staff.update_doctor(ObjectId(), {"specialty": "Surgery"})

    assert await make.stored(Doctor, doctor.id) == before


async def test_a_head_doctor_cannot_leave_or_be_deactivated() -> None:
    dept = make.id_of(await make.department())
    elsewhere = make.id_of(await make.department())
    head = await make.doctor(dept)
    await departments.update_department(dept, {"head_doctor_id": head.id})
    before = await make.stored(Doctor, head.id)

    with pytest.raises(BadUserInput) as moving:
        await staff.update_doctor(make.id_of(head), {"department_id": elsewhere})
    with pytest.raises(BadUserInput) as leaving:
        await staff.update_doctor(make.id_of(head), {"active": False})

    assert "departmentId" in moving.value.fields
    assert "active" in leaving.value.fields
    assert await make.stored(Doctor, head.id) == before
    # Other edits of a head doctor are fine.
    updated = await staff.update_doctor(make.id_of(head), {"specialty": "Electrophysiology"})
    assert updated.specialty == "Electrophysiology"


# Nurses


async def test_nurse_lifecycle() -> None:
    ward = make.id_of(await make.department())
    icu = make.id_of(await make.department())
    first = await make.nurse(ward, last_name="Nightingale", ward="3B")
    second = await make.nurse(icu, last_name="Barton")

    assert (await staff.get_nurse(make.id_of(first))).ward == "3B"
    listed = await staff.list_nurses(ward, PAGE)
    assert [n.id for n in listed.items] == [first.id]
    everyone = await staff.list_nurses(None, PAGE)
    assert [n.id for n in everyone.items] == [second.id, first.id]

    updated = await staff.update_nurse(make.id_of(first), {"ward": "4A", "department_id": icu})
    stored = await make.stored(Nurse, first.id)
    assert stored is not None
    assert updated.ward == stored["ward"] == "4A"
    assert stored["department_id"] == icu


async def test_nurse_rejections_change_nothing() -> None:
    dept = make.id_of(await make.department())
    nurse = await make.nurse(dept)
    other = await make.nurse(dept)
    before = await make.stored(Nurse, nurse.id)

    with pytest.raises(BadUserInput):
        await make.nurse(ObjectId())
    with pytest.raises(Conflict):
        await make.nurse(dept, licence_number=nurse.licence_number)
    with pytest.raises(Conflict):
        await staff.update_nurse(make.id_of(nurse), {"licence_number": other.licence_number})
    with pytest.raises(BadUserInput):
        await staff.update_nurse(make.id_of(nurse), {"department_id": ObjectId()})
    with pytest.raises(NotFound):
        await staff.get_nurse(ObjectId())

    assert await make.stored(Nurse, nurse.id) == before
    assert len(await make.all_stored(Nurse)) == 2


# Administrative staff


async def test_admin_staff_lifecycle() -> None:
    dept = make.id_of(await make.department())
    member = await make.admin(dept, duties=["front_desk"])

    assert (await staff.get_admin_staff(make.id_of(member))).duties == [AdminDuty.FRONT_DESK]
    assert [a.id for a in (await staff.list_admin_staff(dept, PAGE)).items] == [member.id]
    assert (await staff.list_admin_staff(make.id_of(await make.department()), PAGE)).items == []

    updated = await staff.update_admin_staff(make.id_of(member), {"last_name": "Turing"})
    stored = await make.stored(AdminStaff, member.id)
    assert stored is not None
    assert updated.last_name == stored["last_name"] == "Turing"


async def test_admin_staff_rejections_change_nothing() -> None:
    dept = make.id_of(await make.department())
    member = await make.admin(dept)
    before = await make.stored(AdminStaff, member.id)

    with pytest.raises(BadUserInput):
        await make.admin(ObjectId())
    with pytest.raises(BadUserInput):
        await staff.update_admin_staff(make.id_of(member), {"department_id": ObjectId()})
    with pytest.raises(BadUserInput):
        await staff.update_admin_staff(make.id_of(member), {"first_name": "  "})
    with pytest.raises(NotFound):
        await staff.get_admin_staff(ObjectId())

    assert await make.stored(AdminStaff, member.id) == before
    assert len(await make.all_stored(AdminStaff)) == 1


async def test_assign_admin_duties_replaces_the_set() -> None:
    member = await make.admin(make.id_of(await make.department()), duties=["inventory"])

    updated = await staff.assign_admin_duties(
        make.id_of(member), ["billing", AdminDuty.FRONT_DESK, AdminDuty.BILLING, "front_desk"]
    )

    expected = [AdminDuty.FRONT_DESK, AdminDuty.BILLING]  # deduplicated, in declaration order
    stored = await make.stored(AdminStaff, member.id)
    assert stored is not None
    assert updated.duties == expected
    assert stored["duties"] == [d.value for d in expected]

    cleared = await staff.assign_admin_duties(make.id_of(member), [])
    assert cleared.duties == []


async def test_assign_admin_duties_rejects_unknown_duties() -> None:
    member = await make.admin(make.id_of(await make.department()), duties=["inventory"])
    before = await make.stored(AdminStaff, member.id)

    with pytest.raises(BadUserInput) as info:
        await staff.assign_admin_duties(make.id_of(member), ["billing", "surgery"])

    assert list(info.value.fields) == ["duties.1"]
    assert await make.stored(AdminStaff, member.id) == before
    with pytest.raises(NotFound):
        await staff.assign_admin_duties(ObjectId(), ["billing"])
