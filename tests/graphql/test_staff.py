from __future__ import annotations

from typing import Any

from models import AdminStaff, Department, Doctor, Nurse
from models.staff import AdminDuty
from tests import factories
from tests.graphql.helpers import code, snapshot

MEMBER = "id firstName lastName departmentId department { code } active contact { email phone }"
CREATE_DOCTOR = f"""mutation($input: CreateDoctorInput!) {{
  createDoctor(input: $input) {{ {MEMBER} specialty licenceNumber }}
}}"""
UPDATE_DOCTOR = f"""mutation($id: ID!, $input: UpdateDoctorInput!) {{
  updateDoctor(id: $id, input: $input) {{ {MEMBER} specialty licenceNumber }}
}}"""
CREATE_NURSE = f"""mutation($input: CreateNurseInput!) {{
  createNurse(input: $input) {{ {MEMBER} licenceNumber ward }}
}}"""
UPDATE_NURSE = f"""mutation($id: ID!, $input: UpdateNurseInput!) {{
  updateNurse(id: $id, input: $input) {{ {MEMBER} licenceNumber ward }}
}}"""
CREATE_ADMIN = f"""mutation($input: CreateAdminStaffInput!) {{
  createAdminStaff(input: $input) {{ {MEMBER} duties }}
}}"""
UPDATE_ADMIN = f"""mutation($id: ID!, $input: UpdateAdminStaffInput!) {{
  updateAdminStaff(id: $id, input: $input) {{ {MEMBER} duties }}
}}"""
ASSIGN = """mutation($id: ID!, $duties: [AdminDuty!]!) {
  assignAdminStaffDuties(id: $id, duties: $duties) { id duties updatedAt }
}"""
MISSING = "0" * 24


async def admin(dept: Department | None = None, **fields: Any) -> AdminStaff:
    dept = dept or await factories.department()
    base = {"first_name": "Sam", "last_name": f"Clerk{factories.n()}", "department_id": dept.id}
    return await AdminStaff(**{**base, **fields}).insert()


# Doctors


async def test_create_doctor(gql: Any) -> None:
    dept = await factories.department(code="CARD")
    data = await gql.data(
        CREATE_DOCTOR,
        input={
            "firstName": "Christiaan",
            "lastName": "Barnard",
            "departmentId": str(dept.id),
            "specialty": "Cardiothoracic surgery",
            "licenceNumber": "GMC-1001",
            "contact": {"email": "barnard@example.org", "phone": "+27 21 404 9111"},
        },
    )
    doctor = data["createDoctor"]
    assert doctor["department"] == {"code": "CARD"}
    assert doctor["departmentId"] == str(dept.id)
    assert doctor["active"] is True
    assert doctor["contact"] == {"email": "barnard@example.org", "phone": "+27 21 404 9111"}
    stored = await Doctor.get(doctor["id"])
    assert stored is not None and stored.licence_number == "GMC-1001"


async def test_create_doctor_rejections_write_nothing(gql: Any) -> None:
    dept = await factories.department()
    await factories.doctor(dept, licence_number="GMC-1")
    before = await snapshot(Doctor)
    base: dict[str, Any] = {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "departmentId": str(dept.id),
        "specialty": "Cardiology",
        "licenceNumber": "GMC-2",
    }
    cases: dict[str, dict[str, Any]] = {
        "departmentId": {"departmentId": MISSING},
        "licenceNumber": {"licenceNumber": "X"},
        "specialty": {"specialty": " "},
        "contact.email": {"contact": {"email": "nope"}},
        "contact.phone": {"contact": {"phone": "call me"}},
    }
    for field, change in cases.items():
        error = await gql.error(CREATE_DOCTOR, input={**base, **change})
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    bad_id = await gql.error(CREATE_DOCTOR, input={**base, "departmentId": "cardiology"})
    assert bad_id["extensions"]["fields"] == {"departmentId": "is not a valid id"}
    duplicate = await gql.error(CREATE_DOCTOR, input={**base, "licenceNumber": "GMC-1"})
    assert code(duplicate) == "CONFLICT" and "licenceNumber" in duplicate["message"]
    assert await snapshot(Doctor) == before


async def test_update_doctor_moves_and_deactivates(gql: Any) -> None:
    card = await factories.department(code="CARD")
    neuro = await factories.department(code="NEURO")
    doctor = await factories.doctor(card, first_name="Ada", specialty="Cardiology")
    moved = await gql.data(
        UPDATE_DOCTOR,
        id=str(doctor.id),
        input={"departmentId": str(neuro.id), "specialty": "Neurology"},
    )
    assert moved["updateDoctor"]["department"] == {"code": "NEURO"}
    assert moved["updateDoctor"]["specialty"] == "Neurology"
    assert moved["updateDoctor"]["firstName"] == "Ada"
    gone = await gql.data(UPDATE_DOCTOR, id=str(doctor.id), input={"active": False})
    assert gone["updateDoctor"]["active"] is False
    stored = await Doctor.get(doctor.id)
    assert stored is not None and stored.department_id == neuro.id and not stored.active


async def test_a_department_head_cannot_leave_or_be_deactivated(gql: Any) -> None:
    card = await factories.department(code="CARD")
    neuro = await factories.department(code="NEURO")
    head = await factories.doctor(card)
    await gql.data(
        "mutation($id: ID!, $h: ID) {"
        " updateDepartment(id: $id, input: {headDoctorId: $h}) { id } }",
        id=str(card.id),
        h=str(head.id),
    )
    before = await snapshot(Doctor, Department)
    cases: dict[str, dict[str, Any]] = {
        "departmentId": {"departmentId": str(neuro.id)},
        "active": {"active": False},
    }
    for field, change in cases.items():
        error = await gql.error(UPDATE_DOCTOR, id=str(head.id), input=change)
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
        assert "CARD" in error["message"]
    assert await snapshot(Doctor, Department) == before
    # Staying in the same department is no move.
    same = await gql.data(
        UPDATE_DOCTOR, id=str(head.id), input={"departmentId": str(card.id), "lastName": "Head"}
    )
    assert same["updateDoctor"]["lastName"] == "Head"


async def test_update_doctor_rejections_change_nothing(gql: Any) -> None:
    doctor = await factories.doctor(licence_number="GMC-1")
    await factories.doctor(licence_number="GMC-2")
    before = await snapshot(Doctor)
    cases: dict[str, dict[str, Any]] = {
        "departmentId": {"departmentId": MISSING},
        "firstName": {"firstName": None},
        "licenceNumber": {"licenceNumber": ""},
        "contact.email": {"contact": {"email": "@"}},
    }
    for field, change in cases.items():
        error = await gql.error(UPDATE_DOCTOR, id=str(doctor.id), input=change)
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    empty = await gql.error(UPDATE_DOCTOR, id=str(doctor.id), input={})
    assert code(empty) == "BAD_USER_INPUT"
    taken = await gql.error(UPDATE_DOCTOR, id=str(doctor.id), input={"licenceNumber": "GMC-2"})
    assert code(taken) == "CONFLICT" and "licenceNumber" in taken["extensions"]["fields"]
    missing = await gql.error(UPDATE_DOCTOR, id=MISSING, input={"lastName": "X"})
    assert code(missing) == "NOT_FOUND"
    assert await snapshot(Doctor) == before


async def test_doctors_filter_by_department_and_specialty(gql: Any) -> None:
    card = await factories.department(code="CARD")
    neuro = await factories.department(code="NEURO")
    await factories.doctor(card, last_name="Barnard", specialty="Cardiology")
    await factories.doctor(card, last_name="Apgar", specialty="Anaesthesia")
    await factories.doctor(neuro, last_name="Cushing", specialty="Neurosurgery")
    await factories.doctor(neuro, last_name="Carrel", specialty="cardiology")

    async def names(**args: Any) -> list[str]:
        data = await gql.data(
            "query($d: ID, $s: String) { doctors(departmentId: $d, specialty: $s) {"
            " totalCount nodes { lastName } } }",
            **args,
        )
        nodes = [n["lastName"] for n in data["doctors"]["nodes"]]
        assert data["doctors"]["totalCount"] == len(nodes)
        return nodes

    assert await names() == ["Apgar", "Barnard", "Carrel", "Cushing"]
    assert await names(d=str(card.id)) == ["Apgar", "Barnard"]
    assert await names(s="CARDIOLOGY") == ["Barnard", "Carrel"]
    assert await names(s="  cardiology ") == ["Barnard", "Carrel"]
    assert await names(d=str(neuro.id), s="Cardiology") == ["Carrel"]
    assert await names(s="Cardio") == []
    assert await names(s="C.rdiology") == []  # input is never a pattern
    assert await names(s=".*") == []
    long = await gql.error(
        "query($s: String) { doctors(specialty: $s) { totalCount } }", s="x" * 201
    )
    assert code(long) == "BAD_USER_INPUT" and "specialty" in long["extensions"]["fields"]
    bad = await gql.error('{ doctors(departmentId: "card") { totalCount } }')
    assert code(bad) == "BAD_USER_INPUT" and "departmentId" in bad["extensions"]["fields"]


# Nurses


async def test_create_nurse(gql: Any) -> None:
    dept = await factories.department(code="ICU")
    data = await gql.data(
        CREATE_NURSE,
        input={
            "firstName": "Florence",
            "lastName": "Nightingale",
            "departmentId": str(dept.id),
            "licenceNumber": "RN-1820",
            "ward": "Ward 7",
        },
    )
    nurse = data["createNurse"]
    assert nurse["department"] == {"code": "ICU"}
    assert nurse["ward"] == "Ward 7" and nurse["licenceNumber"] == "RN-1820"
    assert nurse["contact"] == {"email": None, "phone": None}
    assert await Nurse.count() == 1


async def test_create_nurse_rejections_write_nothing(gql: Any) -> None:
    dept = await factories.department()
    await factories.nurse(dept, licence_number="RN-1")
    before = await snapshot(Nurse)
    base = {
        "firstName": "Mary",
        "lastName": "Seacole",
        "departmentId": str(dept.id),
        "licenceNumber": "RN-2",
    }
    cases: dict[str, dict[str, Any]] = {
        "departmentId": {"departmentId": MISSING},
        "ward": {"ward": ""},
        "lastName": {"lastName": "x" * 101},
    }
    for field, change in cases.items():
        error = await gql.error(CREATE_NURSE, input={**base, **change})
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    duplicate = await gql.error(CREATE_NURSE, input={**base, "licenceNumber": "RN-1"})
    assert code(duplicate) == "CONFLICT"
    assert await snapshot(Nurse) == before


async def test_update_nurse(gql: Any) -> None:
    icu = await factories.department(code="ICU")
    nurse = await factories.nurse(ward="Ward 1", last_name="Seacole")
    data = await gql.data(
        UPDATE_NURSE,
        id=str(nurse.id),
        input={"departmentId": str(icu.id), "ward": None, "contact": {"phone": "+44 1234 567"}},
    )
    changed = data["updateNurse"]
    assert changed["department"] == {"code": "ICU"}
    assert changed["ward"] is None and changed["lastName"] == "Seacole"
    assert changed["contact"] == {"email": None, "phone": "+44 1234 567"}
    stored = await Nurse.get(nurse.id)
    assert stored is not None and stored.ward is None and stored.department_id == icu.id


async def test_update_nurse_rejections_change_nothing(gql: Any) -> None:
    nurse = await factories.nurse(licence_number="RN-1")
    await factories.nurse(licence_number="RN-2")
    before = await snapshot(Nurse)
    cases: dict[str, dict[str, Any]] = {
        "departmentId": {"departmentId": MISSING},
        "active": {"active": None},
    }
    for field, change in cases.items():
        error = await gql.error(UPDATE_NURSE, id=str(nurse.id), input=change)
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    taken = await gql.error(UPDATE_NURSE, id=str(nurse.id), input={"licenceNumber": "RN-2"})
    assert code(taken) == "CONFLICT"
    missing = await gql.error(UPDATE_NURSE, id=MISSING, input={"ward": "W"})
    assert code(missing) == "NOT_FOUND"
    assert await snapshot(Nurse) == before


async def test_nurses_list_by_department(gql: Any) -> None:
    icu = await factories.department(code="ICU")
    await factories.nurse(icu, last_name="Seacole")
    await factories.nurse(icu, last_name="Barton")
    await factories.nurse(last_name="Nightingale")
    data = await gql.data(
        "query($d: ID) { all: nurses { totalCount nodes { lastName } }"
        " icu: nurses(departmentId: $d) { totalCount nodes { lastName department { code } } } }",
        d=str(icu.id),
    )
    assert [n["lastName"] for n in data["all"]["nodes"]] == ["Barton", "Nightingale", "Seacole"]
    assert data["icu"] == {
        "totalCount": 2,
        "nodes": [
            {"lastName": "Barton", "department": {"code": "ICU"}},
            {"lastName": "Seacole", "department": {"code": "ICU"}},
        ],
    }


# Administrative staff


async def test_create_admin_staff(gql: Any) -> None:
    dept = await factories.department(code="ADM")
    data = await gql.data(
        CREATE_ADMIN,
        input={
            "firstName": "Sam",
            "lastName": "Clerk",
            "departmentId": str(dept.id),
            "duties": ["SCHEDULING", "FRONT_DESK"],
            "contact": {"email": "sam@example.org"},
        },
    )
    member = data["createAdminStaff"]
    assert member["department"] == {"code": "ADM"}
    assert set(member["duties"]) == {"SCHEDULING", "FRONT_DESK"}
    assert member["contact"]["email"] == "sam@example.org"
    bare = await gql.data(
        CREATE_ADMIN, input={"firstName": "Kim", "lastName": "New", "departmentId": str(dept.id)}
    )
    assert bare["createAdminStaff"]["duties"] == []
    assert await AdminStaff.count() == 2


async def test_create_admin_staff_rejections_write_nothing(gql: Any) -> None:
    dept = await factories.department()
    await admin(dept)
    before = await snapshot(AdminStaff)
    base: dict[str, Any] = {"firstName": "Sam", "lastName": "Clerk", "departmentId": str(dept.id)}
    cases: dict[str, dict[str, Any]] = {
        "departmentId": {"departmentId": MISSING},
        "firstName": {"firstName": ""},
        "contact.email": {"contact": {"email": "sam at example"}},
    }
    for field, change in cases.items():
        error = await gql.error(CREATE_ADMIN, input={**base, **change})
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    unknown_duty = await gql.error(CREATE_ADMIN, input={**base, "duties": ["JANITOR"]})
    assert code(unknown_duty) == "BAD_USER_INPUT"
    assert await snapshot(AdminStaff) == before


async def test_update_admin_staff(gql: Any) -> None:
    other = await factories.department(code="FIN")
    member = await admin(first_name="Sam", duties=[AdminDuty.BILLING])
    data = await gql.data(
        UPDATE_ADMIN,
        id=str(member.id),
        input={"lastName": "Cashier", "departmentId": str(other.id), "active": False},
    )
    changed = data["updateAdminStaff"]
    assert changed["firstName"] == "Sam" and changed["lastName"] == "Cashier"
    assert changed["department"] == {"code": "FIN"} and changed["active"] is False
    assert changed["duties"] == ["BILLING"]


async def test_update_admin_staff_rejections_change_nothing(gql: Any) -> None:
    member = await admin()
    before = await snapshot(AdminStaff)
    cases: dict[str, dict[str, Any]] = {
        "departmentId": {"departmentId": MISSING},
        "lastName": {"lastName": "  "},
        "contact.phone": {"contact": {"phone": "12"}},
    }
    for field, change in cases.items():
        error = await gql.error(UPDATE_ADMIN, id=str(member.id), input=change)
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    no_duties_here = await gql.error(UPDATE_ADMIN, id=str(member.id), input={"duties": []})
    assert code(no_duties_here) == "BAD_USER_INPUT"
    missing = await gql.error(UPDATE_ADMIN, id=MISSING, input={"lastName": "X"})
    assert code(missing) == "NOT_FOUND"
    assert await snapshot(AdminStaff) == before


async def test_assign_admin_staff_duties_replaces_the_set(gql: Any) -> None:
    member = await admin(duties=[AdminDuty.FRONT_DESK])
    data = await gql.data(
        ASSIGN, id=str(member.id), duties=["BILLING", "SCHEDULING", "BILLING", "INVENTORY"]
    )
    # Deduplicated and in declaration order, whatever order they were given in.
    assert data["assignAdminStaffDuties"]["duties"] == ["SCHEDULING", "BILLING", "INVENTORY"]
    stored = await AdminStaff.get(member.id)
    assert stored is not None
    assert stored.duties == [AdminDuty.SCHEDULING, AdminDuty.BILLING, AdminDuty.INVENTORY]
    again = await gql.data(ASSIGN, id=str(member.id), duties=["INVENTORY", "SCHEDULING", "BILLING"])
    assert again["assignAdminStaffDuties"]["duties"] == ["SCHEDULING", "BILLING", "INVENTORY"]
    cleared = await gql.data(ASSIGN, id=str(member.id), duties=[])
    assert cleared["assignAdminStaffDuties"]["duties"] == []


async def test_assign_admin_staff_duties_rejections_change_nothing(gql: Any) -> None:
    member = await admin(duties=[AdminDuty.FRONT_DESK])
    doctor = await factories.doctor()
    before = await snapshot(AdminStaff)
    unknown = await gql.error(ASSIGN, id=str(member.id), duties=["BILLING", "SURGERY"])
    assert code(unknown) == "BAD_USER_INPUT"
    bad_id = await gql.error(ASSIGN, id="clerk", duties=["BILLING"])
    assert code(bad_id) == "BAD_USER_INPUT" and "id" in bad_id["extensions"]["fields"]
    for missing in [MISSING, str(doctor.id)]:  # a doctor is no administrative employee
        error = await gql.error(ASSIGN, id=missing, duties=["BILLING"])
        assert code(error) == "NOT_FOUND", error
    assert await snapshot(AdminStaff) == before


async def test_admin_staff_list_and_lookup(gql: Any) -> None:
    front = await factories.department(code="FRONT")
    clerk = await admin(front, last_name="Zimmer", duties=[AdminDuty.FRONT_DESK])
    await admin(front, last_name="Abbott")
    await admin(last_name="Moss")
    data = await gql.data(
        "query($d: ID, $id: ID!) { all: adminStaff { totalCount nodes { lastName } }"
        " front: adminStaff(departmentId: $d) { nodes { lastName } }"
        " one: adminStaffMember(id: $id) { lastName duties department { code } } }",
        d=str(front.id),
        id=str(clerk.id),
    )
    assert data["all"]["totalCount"] == 3
    assert [n["lastName"] for n in data["all"]["nodes"]] == ["Abbott", "Moss", "Zimmer"]
    assert data["front"]["nodes"] == [{"lastName": "Abbott"}, {"lastName": "Zimmer"}]
    assert data["one"] == {
        "lastName": "Zimmer",
        "duties": ["FRONT_DESK"],
        "department": {"code": "FRONT"},
    }
