from __future__ import annotations

from typing import Any

from models import MedicalEquipment
from models.equipment import EquipmentStatus
from tests import factories
from tests.graphql.helpers import code, snapshot

DEVICE = """id name equipmentType serialNumber manufacturer model status departmentId
  department { code } allowedTransitions
  statusHistory { fromStatus toStatus reason at }
  allocationHistory { fromDepartmentId toDepartmentId reason at }
  createdAt updatedAt"""
REGISTER = f"""mutation($input: RegisterEquipmentInput!) {{
  registerEquipment(input: $input) {{ {DEVICE} }}
}}"""
ALLOCATE = f"""mutation($id: ID!, $departmentId: ID!, $reason: String) {{
  allocateEquipment(id: $id, departmentId: $departmentId, reason: $reason) {{ {DEVICE} }}
}}"""
STATUS = f"""mutation($id: ID!, $status: EquipmentStatus!, $reason: String) {{
  updateEquipmentStatus(id: $id, status: $status, reason: $reason) {{ {DEVICE} }}
}}"""
MISSING = "0" * 24


async def test_register_equipment_starts_its_history(gql: Any) -> None:
    dept = await factories.department(code="RAD")
    data = await gql.data(
        REGISTER,
        input={
            "name": "MRI scanner 1",
            "equipmentType": "MRI",
            "serialNumber": "MRI-0001",
            "departmentId": str(dept.id),
            "manufacturer": "Siemens",
            "model": "Magnetom",
        },
    )
    device = data["registerEquipment"]
    assert device["status"] == "AVAILABLE"
    assert device["department"] == {"code": "RAD"}
    assert device["manufacturer"] == "Siemens" and device["model"] == "Magnetom"
    assert device["allowedTransitions"] == ["IN_USE", "MAINTENANCE", "OUT_OF_SERVICE"]
    [registered] = device["statusHistory"]
    assert registered["fromStatus"] is None and registered["toStatus"] == "AVAILABLE"
    assert registered["reason"] == "registered"
    assert registered["at"] >= device["createdAt"]
    assert device["allocationHistory"] == []
    stored = await MedicalEquipment.get(device["id"])
    assert stored is not None and stored.serial_number == "MRI-0001"


async def test_register_equipment_in_maintenance(gql: Any) -> None:
    dept = await factories.department()
    data = await gql.data(
        REGISTER,
        input={
            "name": "Ventilator",
            "equipmentType": "Ventilator",
            "serialNumber": "VEN-1",
            "departmentId": str(dept.id),
            "status": "MAINTENANCE",
        },
    )
    device = data["registerEquipment"]
    assert device["status"] == "MAINTENANCE"
    assert device["allowedTransitions"] == ["AVAILABLE", "OUT_OF_SERVICE"]
    assert [(h["fromStatus"], h["toStatus"]) for h in device["statusHistory"]] == [
        (None, "MAINTENANCE")
    ]


async def test_register_equipment_rejections_write_nothing(gql: Any) -> None:
    dept = await factories.department()
    await factories.equipment(dept, serial_number="SN-TAKEN")
    before = await snapshot(MedicalEquipment)
    base = {
        "name": "ECG",
        "equipmentType": "ECG monitor",
        "serialNumber": "SN-NEW",
        "departmentId": str(dept.id),
    }
    for field, change in {
        "departmentId": {"departmentId": MISSING},
        "serialNumber": {"serialNumber": ""},
        "name": {"name": " "},
        "equipmentType": {"equipmentType": "x" * 101},
    }.items():
        error = await gql.error(REGISTER, input={**base, **change})
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    bad_status = await gql.error(REGISTER, input={**base, "status": "BROKEN"})
    assert code(bad_status) == "BAD_USER_INPUT"
    duplicate = await gql.error(REGISTER, input={**base, "serialNumber": "SN-TAKEN"})
    assert code(duplicate) == "CONFLICT" and "serialNumber" in duplicate["message"]
    assert await snapshot(MedicalEquipment) == before


async def test_allocate_equipment_records_the_move(gql: Any) -> None:
    icu = await factories.department(code="ICU")
    ward = await factories.department(code="WARD")
    device = await factories.equipment(icu, status=EquipmentStatus.MAINTENANCE)
    data = await gql.data(
        ALLOCATE, id=str(device.id), departmentId=str(ward.id), reason="Ward needs one"
    )
    moved = data["allocateEquipment"]
    assert moved["departmentId"] == str(ward.id) and moved["department"] == {"code": "WARD"}
    assert moved["status"] == "MAINTENANCE"  # a move does not change the status
    [move] = moved["allocationHistory"]
    assert move["fromDepartmentId"] == str(icu.id) and move["toDepartmentId"] == str(ward.id)
    assert move["reason"] == "Ward needs one" and move["at"] == moved["updatedAt"]
    back = await gql.data(ALLOCATE, id=str(device.id), departmentId=str(icu.id))
    assert [
        (m["fromDepartmentId"], m["toDepartmentId"], m["reason"])
        for m in back["allocateEquipment"]["allocationHistory"]
    ] == [(str(icu.id), str(ward.id), "Ward needs one"), (str(ward.id), str(icu.id), None)]
    lists = await gql.data(
        "query($i: ID, $w: ID) { icu: equipmentList(departmentId: $i) { totalCount }"
        " ward: equipmentList(departmentId: $w) { totalCount } }",
        i=str(icu.id),
        w=str(ward.id),
    )
    assert lists == {"icu": {"totalCount": 1}, "ward": {"totalCount": 0}}


async def test_allocate_equipment_rejections_change_nothing(gql: Any) -> None:
    icu = await factories.department(code="ICU")
    ward = await factories.department(code="WARD")
    device = await factories.equipment(icu)
    busy = await factories.equipment(icu, status=EquipmentStatus.IN_USE)
    before = await snapshot(MedicalEquipment)
    for device_id, dept_id, reason, field in [
        (device.id, icu.id, None, "departmentId"),  # already there
        (device.id, MISSING, None, "departmentId"),
        (busy.id, ward.id, None, "id"),  # in use
        (device.id, ward.id, "   ", "reason"),
    ]:
        error = await gql.error(
            ALLOCATE, id=str(device_id), departmentId=str(dept_id), reason=reason
        )
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    bad_id = await gql.error(ALLOCATE, id=str(device.id), departmentId="ward")
    assert bad_id["extensions"]["fields"] == {"departmentId": "is not a valid id"}
    missing = await gql.error(ALLOCATE, id=MISSING, departmentId=str(ward.id))
    assert code(missing) == "NOT_FOUND"
    assert await snapshot(MedicalEquipment) == before


async def test_update_equipment_status_follows_the_transitions(gql: Any) -> None:
    device = await factories.equipment()
    steps = [
        ("IN_USE", "Theatre 2", ["AVAILABLE", "MAINTENANCE", "OUT_OF_SERVICE"]),
        ("MAINTENANCE", "Calibration", ["AVAILABLE", "OUT_OF_SERVICE"]),
        ("OUT_OF_SERVICE", None, ["MAINTENANCE"]),
        ("MAINTENANCE", "Repaired", ["AVAILABLE", "OUT_OF_SERVICE"]),
        ("AVAILABLE", None, ["IN_USE", "MAINTENANCE", "OUT_OF_SERVICE"]),
    ]
    for status, reason, allowed in steps:
        data = await gql.data(STATUS, id=str(device.id), status=status, reason=reason)
        changed = data["updateEquipmentStatus"]
        assert changed["status"] == status and changed["allowedTransitions"] == allowed
        assert changed["statusHistory"][-1]["at"] == changed["updatedAt"]
    history = changed["statusHistory"]
    assert [(h["fromStatus"], h["toStatus"], h["reason"]) for h in history] == [
        ("AVAILABLE", "IN_USE", "Theatre 2"),
        ("IN_USE", "MAINTENANCE", "Calibration"),
        ("MAINTENANCE", "OUT_OF_SERVICE", None),
        ("OUT_OF_SERVICE", "MAINTENANCE", "Repaired"),
        ("MAINTENANCE", "AVAILABLE", None),
    ]
    stored = await MedicalEquipment.get(device.id)
    assert stored is not None and stored.status == EquipmentStatus.AVAILABLE
    assert len(stored.status_history) == 5


async def test_update_equipment_status_rejections_change_nothing(gql: Any) -> None:
    broken = await factories.equipment(status=EquipmentStatus.OUT_OF_SERVICE)
    device = await factories.equipment()
    before = await snapshot(MedicalEquipment)
    illegal = await gql.error(STATUS, id=str(broken.id), status="AVAILABLE")
    assert code(illegal) == "BAD_USER_INPUT" and "status" in illegal["extensions"]["fields"]
    assert "maintenance" in illegal["extensions"]["fields"]["status"]
    same = await gql.error(STATUS, id=str(device.id), status="AVAILABLE")
    assert code(same) == "BAD_USER_INPUT" and "status" in same["extensions"]["fields"]
    blank = await gql.error(STATUS, id=str(device.id), status="IN_USE", reason="")
    assert code(blank) == "BAD_USER_INPUT" and "reason" in blank["extensions"]["fields"]
    unknown = await gql.error(STATUS, id=str(device.id), status="LOST")
    assert code(unknown) == "BAD_USER_INPUT"
    missing = await gql.error(STATUS, id=MISSING, status="IN_USE")
    assert code(missing) == "NOT_FOUND"
    assert await snapshot(MedicalEquipment) == before


async def test_equipment_list_filters_by_department_and_status(gql: Any) -> None:
    icu = await factories.department(code="ICU")
    rad = await factories.department(code="RAD")
    await factories.equipment(icu, serial_number="A")
    await factories.equipment(icu, serial_number="B", status=EquipmentStatus.IN_USE)
    await factories.equipment(rad, serial_number="C", status=EquipmentStatus.IN_USE)
    await factories.equipment(rad, serial_number="D", status=EquipmentStatus.MAINTENANCE)

    async def serials(**args: Any) -> list[str]:
        data = await gql.data(
            "query($d: ID, $s: EquipmentStatus) { equipmentList(departmentId: $d, status: $s) {"
            " totalCount nodes { serialNumber } } }",
            **args,
        )
        nodes = [n["serialNumber"] for n in data["equipmentList"]["nodes"]]
        assert data["equipmentList"]["totalCount"] == len(nodes)
        return nodes

    assert await serials() == ["A", "B", "C", "D"]
    assert await serials(d=str(icu.id)) == ["A", "B"]
    assert await serials(s="IN_USE") == ["B", "C"]
    assert await serials(d=str(rad.id), s="IN_USE") == ["C"]
    assert await serials(d=str(icu.id), s="OUT_OF_SERVICE") == []
    page = await gql.data(
        "{ equipmentList(first: 3) { nodes { serialNumber } pageInfo { hasNextPage endCursor } } }"
    )
    rest = await gql.data(
        "query($a: String) { equipmentList(first: 3, after: $a) { nodes { serialNumber } } }",
        a=page["equipmentList"]["pageInfo"]["endCursor"],
    )
    assert page["equipmentList"]["pageInfo"]["hasNextPage"] is True
    assert rest["equipmentList"]["nodes"] == [{"serialNumber": "D"}]
    bad = await gql.error('{ equipmentList(departmentId: "icu") { totalCount } }')
    assert code(bad) == "BAD_USER_INPUT" and "departmentId" in bad["extensions"]["fields"]


async def test_equipment_lookup_reads_both_histories(gql: Any) -> None:
    icu = await factories.department(code="ICU")
    ward = await factories.department(code="WARD")
    device = await factories.equipment(icu, serial_number="ECG-9")
    await gql.data(STATUS, id=str(device.id), status="MAINTENANCE", reason="Battery")
    await gql.data(ALLOCATE, id=str(device.id), departmentId=str(ward.id), reason="Loan")
    await gql.data(STATUS, id=str(device.id), status="AVAILABLE")
    await gql.data(STATUS, id=str(device.id), status="IN_USE")
    data = await gql.data(
        """query($id: ID!) { equipment(id: $id) {
          serialNumber status allowedTransitions department { code }
          statusHistory { fromStatus toStatus reason }
          allocationHistory { fromDepartmentId toDepartmentId reason }
        } }""",
        id=str(device.id),
    )
    assert data["equipment"] == {
        "serialNumber": "ECG-9",
        "status": "IN_USE",
        "allowedTransitions": ["AVAILABLE", "MAINTENANCE", "OUT_OF_SERVICE"],
        "department": {"code": "WARD"},
        "statusHistory": [
            {"fromStatus": "AVAILABLE", "toStatus": "MAINTENANCE", "reason": "Battery"},
            {"fromStatus": "MAINTENANCE", "toStatus": "AVAILABLE", "reason": None},
            {"fromStatus": "AVAILABLE", "toStatus": "IN_USE", "reason": None},
        ],
        "allocationHistory": [
            {"fromDepartmentId": str(icu.id), "toDepartmentId": str(ward.id), "reason": "Loan"}
        ],
    }
    in_use = await gql.data(
        "query($d: ID!) { department(id: $d) { equipment(status: IN_USE) { nodes { id } } } }",
        d=str(ward.id),
    )
    assert in_use["department"]["equipment"]["nodes"] == [{"id": str(device.id)}]
    assert await gql.data(f'{{ equipment(id: "{MISSING}") {{ id }} }}') == {"equipment": None}
