from __future__ import annotations

from typing import Any

from models import Department
from models.equipment import EquipmentStatus
from tests import factories
from tests.graphql.helpers import code, snapshot

CREATE = """mutation($input: CreateDepartmentInput!) {
  createDepartment(input: $input) {
    id name code description location headDoctorId headDoctor { id } createdAt updatedAt
  }
}"""
UPDATE = """mutation($id: ID!, $input: UpdateDepartmentInput!) {
  updateDepartment(id: $id, input: $input) {
    id name code description location headDoctorId headDoctor { lastName } updatedAt
  }
}"""
MISSING = "0" * 24


async def test_create_department(gql: Any) -> None:
    data = await gql.data(
        CREATE,
        input={
            "name": "  Cardiology ",
            "code": "CARD",
            "description": "Heart and vessels",
            "location": "Block B, floor 2",
        },
    )
    dept = data["createDepartment"]
    assert dept["name"] == "Cardiology"
    assert dept["code"] == "CARD"
    assert dept["location"] == "Block B, floor 2"
    assert dept["headDoctorId"] is None and dept["headDoctor"] is None
    assert dept["createdAt"] == dept["updatedAt"]
    stored = await Department.get(dept["id"])
    assert stored is not None and stored.description == "Heart and vessels"


async def test_create_department_rejections_write_nothing(gql: Any) -> None:
    await factories.department(name="Cardiology", code="CARD")
    doctor = await factories.doctor()
    before = await snapshot(Department)
    for field, payload in {
        "code": {"name": "Neurology", "code": "neuro"},
        "name": {"name": "   ", "code": "NEURO"},
        "headDoctorId": {"name": "Neurology", "code": "NEURO", "headDoctorId": str(doctor.id)},
    }.items():
        error = await gql.error(CREATE, input=payload)
        assert code(error) == "BAD_USER_INPUT", error
        assert field in error["extensions"]["fields"], error
    bad_id = await gql.error(CREATE, input={"name": "N", "code": "NEURO", "headDoctorId": "x"})
    assert bad_id["extensions"]["fields"] == {"headDoctorId": "is not a valid id"}
    same_code = await gql.error(CREATE, input={"name": "Heart", "code": "CARD"})
    assert code(same_code) == "CONFLICT" and "code" in same_code["message"]
    same_name = await gql.error(CREATE, input={"name": "Cardiology", "code": "HEART"})
    assert code(same_name) == "CONFLICT" and "name" in same_name["message"]
    assert await snapshot(Department) == before


async def test_update_department_appoints_and_removes_a_head(gql: Any) -> None:
    dept = await factories.department(name="Cardiology", code="CARD", location="B2")
    doctor = await factories.doctor(dept, last_name="Barnard")
    data = await gql.data(UPDATE, id=str(dept.id), input={"headDoctorId": str(doctor.id)})
    assert data["updateDepartment"]["headDoctorId"] == str(doctor.id)
    assert data["updateDepartment"]["headDoctor"] == {"lastName": "Barnard"}
    assert data["updateDepartment"]["location"] == "B2"
    renamed = await gql.data(
        UPDATE, id=str(dept.id), input={"name": "Cardiac Care", "location": None}
    )
    assert renamed["updateDepartment"]["name"] == "Cardiac Care"
    assert renamed["updateDepartment"]["location"] is None
    assert renamed["updateDepartment"]["headDoctor"] == {"lastName": "Barnard"}
    removed = await gql.data(UPDATE, id=str(dept.id), input={"headDoctorId": None})
    assert removed["updateDepartment"]["headDoctor"] is None
    removed_at = removed["updateDepartment"]["updatedAt"]
    read = await gql.data(
        "query($id: ID!) { department(id: $id) { name headDoctorId createdAt updatedAt } }",
        id=str(dept.id),
    )
    assert read["department"]["name"] == "Cardiac Care"
    assert read["department"]["headDoctorId"] is None
    assert read["department"]["updatedAt"] == removed_at >= read["department"]["createdAt"]
    stored = await Department.get(dept.id)
    assert stored is not None and stored.head_doctor_id is None and stored.code == "CARD"


async def test_update_department_rejections_change_nothing(gql: Any) -> None:
    dept = await factories.department(code="CARD")
    await factories.department(code="NEURO", name="Neurology")
    outsider = await factories.doctor()
    retired = await factories.doctor(dept, active=False)
    before = await snapshot(Department)
    for field, change in {
        "headDoctorId": {"headDoctorId": str(outsider.id)},
        "code": {"code": "card"},
        "name": {"name": ""},
    }.items():
        error = await gql.error(UPDATE, id=str(dept.id), input=change)
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    for head in [retired.id, MISSING]:
        error = await gql.error(UPDATE, id=str(dept.id), input={"headDoctorId": str(head)})
        assert code(error) == "BAD_USER_INPUT" and "headDoctorId" in error["extensions"]["fields"]
    empty = await gql.error(UPDATE, id=str(dept.id), input={})
    assert code(empty) == "BAD_USER_INPUT"
    taken = await gql.error(UPDATE, id=str(dept.id), input={"code": "NEURO"})
    assert code(taken) == "CONFLICT"
    missing = await gql.error(UPDATE, id=MISSING, input={"name": "Ghost"})
    assert code(missing) == "NOT_FOUND"
    assert await snapshot(Department) == before


async def test_department_relations(gql: Any) -> None:
    dept = await factories.department(code="CARD", name="Cardiology")
    other = await factories.department(code="NEURO", name="Neurology")
    head = await factories.doctor(dept, last_name="Barnard")
    await factories.doctor(dept, last_name="DeBakey")
    await factories.doctor(other, last_name="Cushing")
    await factories.nurse(dept, last_name="Nightingale")
    await factories.nurse(other, last_name="Seacole")
    await gql.data(
        'mutation($d: ID!) { createAdminStaff(input: {firstName: "Sam", lastName: "Clerk",'
        " departmentId: $d, duties: [BILLING]}) { id } }",
        d=str(dept.id),
    )
    await factories.equipment(dept, serial_number="ECG-1")
    await factories.equipment(dept, serial_number="ECG-2", status=EquipmentStatus.MAINTENANCE)
    await factories.equipment(other, serial_number="MRI-1")
    await gql.data(UPDATE, id=str(dept.id), input={"headDoctorId": str(head.id)})
    data = await gql.data(
        """query($id: ID!) { department(id: $id) {
          code headDoctor { lastName department { code } }
          doctors { totalCount nodes { lastName } }
          nurses { totalCount nodes { lastName } }
          adminStaff { totalCount nodes { lastName duties } }
          equipment { totalCount nodes { serialNumber } }
          maintenance: equipment(status: MAINTENANCE) { totalCount nodes { serialNumber } }
          inUse: equipment(status: IN_USE) { totalCount nodes { serialNumber } }
        } }""",
        id=str(dept.id),
    )
    d = data["department"]
    assert d["headDoctor"] == {"lastName": "Barnard", "department": {"code": "CARD"}}
    assert d["doctors"] == {
        "totalCount": 2,
        "nodes": [{"lastName": "Barnard"}, {"lastName": "DeBakey"}],
    }
    assert d["nurses"] == {"totalCount": 1, "nodes": [{"lastName": "Nightingale"}]}
    assert d["adminStaff"] == {
        "totalCount": 1,
        "nodes": [{"lastName": "Clerk", "duties": ["BILLING"]}],
    }
    assert d["equipment"]["totalCount"] == 2
    assert [e["serialNumber"] for e in d["equipment"]["nodes"]] == ["ECG-1", "ECG-2"]
    assert d["maintenance"] == {"totalCount": 1, "nodes": [{"serialNumber": "ECG-2"}]}
    assert d["inUse"] == {"totalCount": 0, "nodes": []}


async def test_departments_list_and_lookup(gql: Any) -> None:
    for name, dept_code in [("Radiology", "RAD"), ("Cardiology", "CARD"), ("Neurology", "NEURO")]:
        await factories.department(name=name, code=dept_code)
    data = await gql.data("{ departments { totalCount nodes { name } } }")
    assert data["departments"]["totalCount"] == 3
    assert [n["name"] for n in data["departments"]["nodes"]] == [
        "Cardiology",
        "Neurology",
        "Radiology",
    ]
    page = await gql.data(
        "{ departments(first: 2) { nodes { code } pageInfo { hasNextPage endCursor } } }"
    )
    rest = await gql.data(
        "query($a: String) { departments(first: 2, after: $a) { nodes { code } } }",
        a=page["departments"]["pageInfo"]["endCursor"],
    )
    assert page["departments"]["pageInfo"]["hasNextPage"] is True
    assert rest["departments"]["nodes"] == [{"code": "RAD"}]
    assert await gql.data(f'{{ department(id: "{MISSING}") {{ id }} }}') == {"department": None}
