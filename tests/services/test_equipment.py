from __future__ import annotations

import asyncio

import pytest
from bson import ObjectId

from errors import BadUserInput, Conflict, NotFound
from models.equipment import EquipmentStatus, MedicalEquipment
from services import equipment
from services.pagination import PageArgs
from tests.services import factories as make

pytestmark = pytest.mark.usefixtures("database")

AVAILABLE = EquipmentStatus.AVAILABLE
IN_USE = EquipmentStatus.IN_USE
MAINTENANCE = EquipmentStatus.MAINTENANCE
OUT_OF_SERVICE = EquipmentStatus.OUT_OF_SERVICE
PAGE = PageArgs(20)


async def test_register_equipment_starts_available_with_history() -> None:
    dept = make.id_of(await make.department())

    created = await make.device(dept, manufacturer="Acme")

    stored = await make.stored(MedicalEquipment, created.id)
    assert stored is not None
    assert stored["status"] == "available"
    assert stored["manufacturer"] == "Acme"
    assert [(h["from_status"], h["to_status"]) for h in stored["status_history"]] == [
        (None, "available")
    ]
    assert created.status_history[0].reason == "registered"


async def test_register_equipment_with_a_given_status() -> None:
    dept = make.id_of(await make.department())

    created = await make.device(dept, status="maintenance")

    assert created.status == MAINTENANCE
    assert [h.to_status for h in created.status_history] == [MAINTENANCE]


async def test_register_equipment_ignores_a_client_supplied_history() -> None:
    dept = make.id_of(await make.department())
    forged = [{"from_status": "in_use", "to_status": "available", "at": "2020-01-01T00:00:00Z"}]

    created = await make.device(dept, status_history=forged)

    assert [h.from_status for h in created.status_history] == [None]


async def test_register_equipment_rejections_write_nothing() -> None:
    dept = make.id_of(await make.department())
    await make.device(dept, serial_number="SN-TAKEN")

    with pytest.raises(BadUserInput) as unknown:
        await make.device(ObjectId())
    with pytest.raises(BadUserInput) as invalid:
        await make.device(dept, serial_number="", status="broken")
    with pytest.raises(Conflict) as taken:
        await make.device(dept, serial_number="SN-TAKEN")

    assert unknown.value.fields == {"departmentId": "no such department"}
    assert taken.value.extensions["fields"] == ["serialNumber"]
    assert set(invalid.value.fields) == {"serialNumber", "status"}
    assert len(await make.all_stored(MedicalEquipment)) == 1


async def test_get_equipment() -> None:
    created = await make.device(make.id_of(await make.department()))

    assert (await equipment.get_equipment(make.id_of(created))).serial_number == (
        created.serial_number
    )
    with pytest.raises(NotFound):
        await equipment.get_equipment(ObjectId())


async def test_list_equipment_by_department_and_status() -> None:
    icu = make.id_of(await make.department())
    ward = make.id_of(await make.department())
    a = await make.device(icu)
    b = await make.device(icu, status="maintenance")
    c = await make.device(ward)

    def ids(items: list[MedicalEquipment]) -> list[ObjectId | None]:
        return [e.id for e in items]

    assert ids((await equipment.list_equipment(None, None, PAGE)).items) == [a.id, b.id, c.id]
    assert ids((await equipment.list_equipment(icu, None, PAGE)).items) == [a.id, b.id]
    assert ids((await equipment.list_equipment(None, AVAILABLE, PAGE)).items) == [a.id, c.id]
    assert ids((await equipment.list_equipment(icu, MAINTENANCE, PAGE)).items) == [b.id]
    page = await equipment.list_equipment(None, None, PageArgs(2))
    assert page.has_next
    rest = await equipment.list_equipment(None, None, PageArgs(2, page.cursors[-1]))
    assert ids(rest.items) == [c.id]


async def test_update_status_appends_history() -> None:
    created = await make.device(make.id_of(await make.department()))

    updated = await equipment.update_equipment_status(make.id_of(created), IN_USE, "Patient 12")
    again = await equipment.update_equipment_status(make.id_of(created), "maintenance")

    stored = await make.stored(MedicalEquipment, created.id)
    assert stored is not None
    assert updated.status == IN_USE
    assert again.status == MAINTENANCE
    assert stored["status"] == "maintenance"
    history = [(h["from_status"], h["to_status"], h["reason"]) for h in stored["status_history"]]
    assert history == [
        (None, "available", "registered"),
        ("available", "in_use", "Patient 12"),
        ("in_use", "maintenance", None),
    ]
    assert again.updated_at >= created.updated_at
    assert again.status_history == MedicalEquipment.model_validate(stored).status_history


async def test_update_status_rejections_change_nothing() -> None:
    created = await make.device(make.id_of(await make.department()), status="out_of_service")
    id = make.id_of(created)
    before = await make.stored(MedicalEquipment, id)

    with pytest.raises(BadUserInput) as same:
        await equipment.update_equipment_status(id, OUT_OF_SERVICE)
    with pytest.raises(BadUserInput) as illegal:
        await equipment.update_equipment_status(id, AVAILABLE)
    with pytest.raises(BadUserInput) as unknown:
        await equipment.update_equipment_status(id, "broken")
    with pytest.raises(BadUserInput) as long_reason:
        await equipment.update_equipment_status(id, MAINTENANCE, "x" * 201)
    with pytest.raises(NotFound):
        await equipment.update_equipment_status(ObjectId(), MAINTENANCE)

    assert same.value.fields == {"status": "is already out_of_service"}
    assert "from out_of_service to available" in illegal.value.message
    assert "status" in unknown.value.fields
    assert "reason" in long_reason.value.fields
    assert await make.stored(MedicalEquipment, id) == before


async def test_concurrent_status_changes_from_the_same_state_apply_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = await make.device(make.id_of(await make.department()))
    id = make.id_of(created)
    make.read_together(monkeypatch, equipment, "get_equipment")

    results = await asyncio.gather(
        equipment.update_equipment_status(id, IN_USE, "first"),
        equipment.update_equipment_status(id, MAINTENANCE, "second"),
        return_exceptions=True,
    )

    winners = [r for r in results if isinstance(r, MedicalEquipment)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1
    assert len(losers) == 1 and isinstance(losers[0], Conflict)
    stored = await make.stored(MedicalEquipment, id)
    assert stored is not None
    assert stored["status"] == winners[0].status.value
    assert [h["from_status"] for h in stored["status_history"]] == [None, "available"]


async def test_allocate_equipment_moves_it_and_records_why() -> None:
    icu = make.id_of(await make.department(code="ICU"))
    ward = make.id_of(await make.department(code="WARD"))
    created = await make.device(icu, status="maintenance")
    before = await make.stored(MedicalEquipment, created.id)
    assert before is not None

    moved = await equipment.allocate_equipment(make.id_of(created), ward, "Surge")

    stored = await make.stored(MedicalEquipment, created.id)
    assert stored is not None
    assert moved.department_id == stored["department_id"] == ward
    assert stored["status"] == "maintenance"
    [move] = stored["allocation_history"]
    assert (move["from_department_id"], move["to_department_id"], move["reason"]) == (
        icu,
        ward,
        "Surge",
    )
    assert move["at"] is not None
    assert moved.allocation_history == MedicalEquipment.model_validate(stored).allocation_history
    # A move is not a status change: the status history is left exactly as it was.
    assert stored["status_history"] == before["status_history"]
    assert moved.status_history == created.status_history


async def test_allocation_history_accumulates_moves_in_order() -> None:
    icu = make.id_of(await make.department())
    ward = make.id_of(await make.department())
    theatre = make.id_of(await make.department())
    id = make.id_of(await make.device(icu))

    await equipment.allocate_equipment(id, ward)
    await equipment.update_equipment_status(id, IN_USE, "Patient 12")
    await equipment.update_equipment_status(id, AVAILABLE)
    back = await equipment.allocate_equipment(id, theatre, "Surgery list")

    stored = await make.stored(MedicalEquipment, id)
    assert stored is not None
    moves = [
        (m["from_department_id"], m["to_department_id"], m["reason"])
        for m in stored["allocation_history"]
    ]
    assert moves == [(icu, ward, None), (ward, theatre, "Surgery list")]
    assert [(h["from_status"], h["to_status"]) for h in stored["status_history"]] == [
        (None, "available"),
        ("available", "in_use"),
        ("in_use", "available"),
    ]
    assert back.department_id == theatre


async def test_allocate_equipment_rejections_change_nothing() -> None:
    icu = make.id_of(await make.department())
    ward = make.id_of(await make.department())
    busy = await make.device(icu, status="in_use")
    idle = await make.device(icu)
    before = {e.id: await make.stored(MedicalEquipment, e.id) for e in (busy, idle)}

    with pytest.raises(BadUserInput) as in_use:
        await equipment.allocate_equipment(make.id_of(busy), ward)
    with pytest.raises(BadUserInput) as same:
        await equipment.allocate_equipment(make.id_of(idle), icu)
    with pytest.raises(BadUserInput) as unknown:
        await equipment.allocate_equipment(make.id_of(idle), ObjectId())
    with pytest.raises(BadUserInput) as long_reason:
        await equipment.allocate_equipment(make.id_of(idle), ward, "x" * 201)
    with pytest.raises(NotFound):
        await equipment.allocate_equipment(ObjectId(), ward)

    assert "id" in in_use.value.fields
    assert same.value.fields == {"departmentId": "is already the equipment's department"}
    assert unknown.value.fields == {"departmentId": "no such department"}
    assert "reason" in long_reason.value.fields
    assert {e.id: await make.stored(MedicalEquipment, e.id) for e in (busy, idle)} == before


async def test_allocation_from_a_stale_read_loses_to_a_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    icu = make.id_of(await make.department())
    ward = make.id_of(await make.department())
    created = await make.device(icu)
    id = make.id_of(created)
    stale = await equipment.get_equipment(id)  # read while still available...
    await equipment.update_equipment_status(id, IN_USE)  # ...then someone checks it out

    async def stale_read(_: ObjectId) -> MedicalEquipment:
        return stale

    monkeypatch.setattr(equipment, "get_equipment", stale_read)
    with pytest.raises(Conflict):
        await equipment.allocate_equipment(id, ward)

    stored = await make.stored(MedicalEquipment, id)
    assert stored is not None
    assert (stored["status"], stored["department_id"]) == ("in_use", icu)
    assert stored["allocation_history"] == []
    assert [h["to_status"] for h in stored["status_history"]] == ["available", "in_use"]


async def test_concurrent_moves_apply_once(monkeypatch: pytest.MonkeyPatch) -> None:
    icu = make.id_of(await make.department())
    ward = make.id_of(await make.department())
    theatre = make.id_of(await make.department())
    id = make.id_of(await make.device(icu))
    make.read_together(monkeypatch, equipment, "get_equipment")

    results = await asyncio.gather(
        equipment.allocate_equipment(id, ward),
        equipment.allocate_equipment(id, theatre),
        return_exceptions=True,
    )

    winners = [r for r in results if isinstance(r, MedicalEquipment)]
    assert len(winners) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 1
    stored = await make.stored(MedicalEquipment, id)
    assert stored is not None
    assert stored["department_id"] == winners[0].department_id
    [move] = stored["allocation_history"]
    assert (move["from_department_id"], move["to_department_id"]) == (icu, winners[0].department_id)
    assert len(stored["status_history"]) == 1
