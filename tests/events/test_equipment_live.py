"""Live equipment status in Redis: equal to MongoDB after every write, read without MongoDB."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import fakeredis
import redis.asyncio as aioredis
from bson import ObjectId

import db
from cache import equipment as live_equipment
from cache.equipment import READY, LiveEquipment, StatusEntry, load
from metrics import sample
from models.equipment import EquipmentStatus, MedicalEquipment
from tests import factories
from tests.graphql.helpers import code

BOARD = """query($departmentId: ID!) {
  departmentEquipmentStatus(departmentId: $departmentId) {
    id name equipmentType status departmentId updatedAt
  }
}"""
REGISTER = (
    """mutation($input: RegisterEquipmentInput!) { registerEquipment(input: $input) { id } }"""
)
ALLOCATE = """mutation($id: ID!, $departmentId: ID!) {
  allocateEquipment(id: $id, departmentId: $departmentId) { id }
}"""
STATUS = """mutation($id: ID!, $status: EquipmentStatus!) {
  updateEquipmentStatus(id: $id, status: $status) { id }
}"""
CREATE_DEPARTMENT = """mutation($input: CreateDepartmentInput!) {
  createDepartment(input: $input) { id }
}"""


def id_of(doc: Any) -> ObjectId:
    """A stored document's id (Beanie types it optional)."""
    assert doc.id is not None
    return ObjectId(doc.id)


def live() -> LiveEquipment:
    installed = live_equipment.current()
    assert installed is not None, "the app's lifespan installs the live status"
    return installed


async def redis_state(app: Any) -> dict[str, Any]:
    """Every device hash and department set under this app's namespace, decoded."""
    r, board = app.state.redis, live()
    devices = {}
    for doc in await MedicalEquipment.find_all().to_list():
        raw = await r.hgetall(board.item_key(id_of(doc)))
        devices[str(doc.id)] = {k.decode(): v.decode() for k, v in raw.items()}
    departments = {}
    for dept in {d["department_id"] for d in devices.values() if d}:
        members = await r.smembers(board.department_key(dept))
        departments[dept] = {m.decode() for m in members} - {READY}
    return {"devices": devices, "departments": departments}


async def assert_in_step(app: Any) -> None:
    """Redis says what MongoDB says, device by device and department by department."""
    state = await redis_state(app)
    mongo = await MedicalEquipment.find_all().to_list()
    for doc in mongo:
        held = state["devices"][str(doc.id)]
        assert held["status"] == doc.status.value, (doc.id, held)
        assert held["department_id"] == str(doc.department_id)
        assert held["name"] == doc.name and held["equipment_type"] == doc.equipment_type
        assert datetime.fromisoformat(held["updated_at"]) == doc.updated_at
    for dept, members in state["departments"].items():
        expected = {str(d.id) for d in mongo if str(d.department_id) == dept}
        assert members == expected, dept


def board_of(devices: list[MedicalEquipment]) -> list[dict[str, Any]]:
    """What ``departmentEquipmentStatus`` must answer, from MongoDB's documents."""
    return [
        {
            "id": str(d.id),
            "name": d.name,
            "equipmentType": d.equipment_type,
            "status": d.status.name,
            "departmentId": str(d.department_id),
            "updatedAt": d.updated_at.isoformat(),
        }
        for d in sorted(devices, key=lambda d: (d.name, str(d.id)))
    ]


async def stored_in(department_id: ObjectId) -> list[MedicalEquipment]:
    return await MedicalEquipment.find(MedicalEquipment.department_id == department_id).to_list()


async def test_live_status_follows_registration_moves_and_status_changes(
    app: Any, gql: Any
) -> None:
    icu, ward = await factories.department(code="ICU"), await factories.department(code="WARD")
    ids = []
    for i, name in enumerate(["Ventilator", "Monitor"]):
        registered = await gql.data(
            REGISTER,
            input={
                "name": name,
                "equipmentType": name,
                "serialNumber": f"LIVE-{i}-{ObjectId()}",
                "departmentId": str(icu.id),
            },
        )
        ids.append(registered["registerEquipment"]["id"])
    await assert_in_step(app)
    await gql.data(STATUS, id=ids[0], status="IN_USE")
    await assert_in_step(app)
    await gql.data(STATUS, id=ids[1], status="MAINTENANCE")
    await gql.data(ALLOCATE, id=ids[1], departmentId=str(ward.id))
    await assert_in_step(app)
    state = await redis_state(app)
    assert state["departments"] == {str(icu.id): {ids[0]}, str(ward.id): {ids[1]}}
    for dept in (icu, ward):
        answer = await gql.data(BOARD, departmentId=str(dept.id))
        assert answer["departmentEquipmentStatus"] == board_of(await stored_in(id_of(dept)))


async def test_the_board_is_answered_from_redis_without_touching_mongodb(gql: Any) -> None:
    created = await gql.data(CREATE_DEPARTMENT, input={"name": "Radiology", "code": "RAD"})
    dept = created["createDepartment"]["id"]
    for i in range(3):
        await gql.data(
            REGISTER,
            input={
                "name": f"X-ray {3 - i}",
                "equipmentType": "X-ray",
                "serialNumber": f"XR-{i}-{ObjectId()}",
                "departmentId": dept,
            },
        )
    with db.operations.measure() as ops:
        answer = await gql.data(BOARD, departmentId=dept)
    # A new department's set is complete from its creation. The only read is the sign-in's
    # look-up of break-the-glass grants, which every request makes.
    assert set(ops.counts) <= {("access_grants", "find")}, ops.counts
    with db.operations.measure() as ops:
        entries = await live().department(ObjectId(dept))
    assert ops.total == 0 and len(entries) == 3
    board = answer["departmentEquipmentStatus"]
    assert [d["name"] for d in board] == ["X-ray 1", "X-ray 2", "X-ray 3"]
    assert board == board_of(await stored_in(ObjectId(dept)))


async def test_missing_keys_are_loaded_from_mongodb_and_backfilled(app: Any, gql: Any) -> None:
    dept = await factories.department()
    devices = [await factories.equipment(dept) for _ in range(2)]  # inserted behind its back
    board = live()
    first = await gql.data(BOARD, departmentId=str(dept.id))  # no set yet: MongoDB answers
    assert first["departmentEquipmentStatus"] == board_of(devices)
    with db.operations.measure() as ops:
        again = await live().department(id_of(dept))
    assert ops.total == 0  # ...and Redis has it from then on
    answered = [(b["id"], b["status"]) for b in first["departmentEquipmentStatus"]]
    assert [(str(e.id), e.status.name) for e in again] == answered
    await app.state.redis.delete(board.item_key(id_of(devices[0])))  # expired, evicted
    healed = await gql.data(BOARD, departmentId=str(dept.id))
    assert healed == first
    assert await app.state.redis.exists(board.item_key(id_of(devices[0])))
    await app.state.redis.delete(board.department_key(id_of(dept)))
    assert await gql.data(BOARD, departmentId=str(dept.id)) == first
    await assert_in_step(app)


async def test_an_illegal_transition_is_refused_and_redis_is_unchanged(app: Any, gql: Any) -> None:
    dept = await factories.department()
    registered = await gql.data(
        REGISTER,
        input={
            "name": "Defibrillator",
            "equipmentType": "AED",
            "serialNumber": f"AED-{ObjectId()}",
            "departmentId": str(dept.id),
            "status": "OUT_OF_SERVICE",
        },
    )
    id = registered["registerEquipment"]["id"]
    before = await redis_state(app)
    error = await gql.error(STATUS, id=id, status="IN_USE")  # out of service -> maintenance only
    assert code(error) == "BAD_USER_INPUT"
    assert await redis_state(app) == before
    stored = await MedicalEquipment.get(ObjectId(id))
    assert stored is not None and stored.status == EquipmentStatus.OUT_OF_SERVICE
    await assert_in_step(app)


async def test_an_older_state_never_overwrites_a_newer_one(app: Any) -> None:
    dept = await factories.department()
    device = await factories.equipment(dept)
    board = live()
    [entry] = await load({"_id": device.id})
    newer = StatusEntry(**{**entry.__dict__, "status": EquipmentStatus.IN_USE, "revision": 5})
    await board.write([newer])
    await board.write([entry])  # a write that lost the race lands late
    held = await app.state.redis.hget(board.item_key(id_of(device)), "status")
    assert held == b"in_use"


async def test_rebuild_loads_every_device(app: Any) -> None:
    devices = [await factories.equipment() for _ in range(3)]  # written behind its back
    assert await live().rebuild() == 3
    await assert_in_step(app)
    with db.operations.measure() as ops:
        entries = await live().department(devices[0].department_id)
    assert ops.total == 0 and [e.id for e in entries] == [devices[0].id]


async def test_a_failing_redis_falls_back_to_mongodb_and_is_counted(database: Any) -> None:
    broken = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    board = LiveEquipment(broken, "shms-test:broken")
    dept = await factories.department()
    device = await factories.equipment(dept, status=EquipmentStatus.MAINTENANCE)
    failures = sample("shms_equipment_status_errors_total", operation="read")
    try:
        [entry] = await board.department(id_of(dept))
    finally:
        await broken.aclose()
    assert (entry.id, entry.status) == (device.id, EquipmentStatus.MAINTENANCE)
    assert sample("shms_equipment_status_errors_total", operation="read") == failures + 1


async def test_it_works_the_same_on_fakeredis(database: Any) -> None:
    board = LiveEquipment(fakeredis.FakeAsyncRedis(), "shms-test:fake")
    dept = await factories.department()
    device = await factories.equipment(dept, updated_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert await board.rebuild() == 1
    [entry] = await board.department(id_of(dept))
    assert (entry.id, entry.updated_at) == (device.id, datetime(2030, 1, 1, tzinfo=UTC))


async def test_the_board_needs_an_equipment_grant(client_as: Any) -> None:
    dept = await factories.department()
    compliance = client_as(roles=["compliance"])
    error = await compliance.error(BOARD, departmentId=str(dept.id))
    assert code(error) == "FORBIDDEN"
    nurse = client_as(roles=["nurse"])
    assert await nurse.data(BOARD, departmentId=str(dept.id)) == {"departmentEquipmentStatus": []}
