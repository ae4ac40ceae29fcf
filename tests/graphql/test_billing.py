from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from models import BillingAccount, Patient, Treatment
from models.billing import ChargeSource, PaymentMethod
from models.clinical import PerformerRole
from tests import factories
from tests.graphql.helpers import code, snapshot

ACCOUNT = """id currency patientId patient { lastName }
  insurance { provider policyNumber groupNumber validUntil }
  balance { amount currency } totalCharged { amount currency } totalPaid { amount currency }
  charges { id description amount { amount currency } source sourceId departmentId
            department { code } createdAt }
  payments { id amount { amount currency } method reference receivedAt }
  createdAt updatedAt"""
OPEN = f"""mutation($input: OpenBillingAccountInput!) {{
  openBillingAccount(input: $input) {{ {ACCOUNT} }}
}}"""
CHARGE = f"""mutation($accountId: ID!, $input: AddChargeInput!) {{
  addCharge(accountId: $accountId, input: $input) {{ {ACCOUNT} }}
}}"""
PAY = f"""mutation($accountId: ID!, $input: RecordPaymentInput!) {{
  recordPayment(accountId: $accountId, input: $input) {{ {ACCOUNT} }}
}}"""
INSURE = f"""mutation($accountId: ID!, $insurance: InsuranceInput) {{
  updateInsurance(accountId: $accountId, insurance: $insurance) {{ {ACCOUNT} }}
}}"""
READ = f"query($id: ID!) {{ billingAccount(id: $id) {{ {ACCOUNT} }} }}"
MISSING = "0" * 24
HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


def eur(amount: Any, currency: str = "EUR") -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def manual(amount: Any, **overrides: Any) -> dict[str, Any]:
    return {"description": "Private room", "amount": eur(amount), "source": "MANUAL", **overrides}


async def treatment(plan: Any, **fields: Any) -> Treatment:
    base = {
        "plan_id": plan.id,
        "patient_id": plan.patient_id,
        "performed_by_id": plan.doctor_id,
        "performed_by_role": PerformerRole.DOCTOR,
        "performed_at": HOUR_AGO,
        "procedure": "Coronary angiography",
    }
    return await Treatment(**{**base, **fields}).insert()


async def test_open_billing_account(gql: Any) -> None:
    patient = await factories.patient(last_name="Curie")
    data = await gql.data(
        OPEN,
        input={
            "patientId": str(patient.id),
            "currency": "GBP",
            "insurance": {
                "provider": "NHS Plus",
                "policyNumber": "POL-1",
                "validUntil": "2032-01-01T00:00:00+02:00",
            },
        },
    )
    account = data["openBillingAccount"]
    assert account["patient"] == {"lastName": "Curie"} and account["currency"] == "GBP"
    assert account["insurance"] == {
        "provider": "NHS Plus",
        "policyNumber": "POL-1",
        "groupNumber": None,
        "validUntil": "2031-12-31T22:00:00+00:00",
    }
    assert account["balance"] == eur(0, "GBP")
    assert account["totalCharged"] == eur(0, "GBP") and account["totalPaid"] == eur(0, "GBP")
    assert account["charges"] == [] and account["payments"] == []
    default = await gql.data(OPEN, input={"patientId": str((await factories.patient()).id)})
    assert default["openBillingAccount"]["currency"] == "EUR"
    assert default["openBillingAccount"]["insurance"] is None
    assert await BillingAccount.count() == 2


async def test_open_billing_account_rejections_write_nothing(gql: Any) -> None:
    patient = await factories.patient()
    doctor = await factories.doctor()
    await factories.billing_account(patient)
    newcomer = await factories.patient()
    before = await snapshot(BillingAccount)
    for field, payload in {
        "patientId": {"patientId": str(doctor.id)},
        "currency": {"patientId": str(newcomer.id), "currency": "eur"},
        "insurance.provider": {
            "patientId": str(newcomer.id),
            "insurance": {"provider": "", "policyNumber": "P-1"},
        },
        "insurance.validUntil": {
            "patientId": str(newcomer.id),
            "insurance": {
                "provider": "Acme",
                "policyNumber": "P-1",
                "validUntil": "2032-01-01T00:00:00",
            },
        },
    }.items():
        error = await gql.error(OPEN, input=payload)
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    second = await gql.error(OPEN, input={"patientId": str(patient.id)})
    assert code(second) == "CONFLICT" and second["extensions"]["fields"] == ["patientId"]
    assert await snapshot(BillingAccount) == before


async def test_add_manual_charge(gql: Any) -> None:
    account = await factories.billing_account()
    dept = await factories.department(code="WARD")
    data = await gql.data(
        CHARGE, accountId=str(account.id), input=manual(12_50, departmentId=str(dept.id))
    )
    billed = data["addCharge"]
    [charge] = billed["charges"]
    assert charge["amount"] == eur(12_50) and charge["source"] == "MANUAL"
    assert charge["sourceId"] is None and charge["department"] == {"code": "WARD"}
    assert charge["createdAt"] == billed["updatedAt"]
    assert billed["totalCharged"] == eur(12_50) and billed["balance"] == eur(12_50)
    unbooked = await gql.data(CHARGE, accountId=str(account.id), input=manual(50))
    assert unbooked["addCharge"]["charges"][1]["department"] is None
    assert unbooked["addCharge"]["balance"] == eur(13_00)


async def test_add_charge_rejections_change_nothing(gql: Any) -> None:
    patient = await factories.patient()
    account = await factories.billing_account(patient)
    plan = await factories.treatment_plan(patient)
    done, fresh = await treatment(plan), await treatment(plan, procedure="ECG")
    others_treatment = await treatment(await factories.treatment_plan())
    no_device = await factories.appointment(patient)
    others_visit = await factories.appointment(device=await factories.equipment())
    elsewhere = await factories.department()
    await gql.data(
        CHARGE,
        accountId=str(account.id),
        input={
            "description": "Angio",
            "amount": eur(100),
            "source": "TREATMENT",
            "sourceId": str(done.id),
        },
    )
    before = await snapshot(BillingAccount)

    def treating(source_id: Any, **extra: Any) -> dict[str, Any]:
        return {
            "description": "Treatment",
            "amount": eur(100),
            "source": "TREATMENT",
            "sourceId": str(source_id),
            **extra,
        }

    for field, payload in [
        ("amount", manual(0)),
        ("amount", manual(-5)),
        ("amount", manual(10**12 + 1)),
        ("currency", manual(100) | {"amount": eur(100, "USD")}),
        ("description", manual(100, description=" ")),
        ("departmentId", manual(100, departmentId=MISSING)),
        ("sourceId", manual(100, sourceId=str(done.id))),
        ("sourceId", {**treating(done.id), "sourceId": None}),
        ("sourceId", treating(MISSING)),
        ("sourceId", treating(others_treatment.id)),
        ("departmentId", treating(fresh.id, departmentId=str(elsewhere.id))),
        ("sourceId", treating(no_device.id, source="EQUIPMENT_USE")),
        ("sourceId", treating(others_visit.id, source="EQUIPMENT_USE")),
        ("sourceId", treating(done.id, source="EQUIPMENT_USE")),  # a treatment is no appointment
    ]:
        error = await gql.error(CHARGE, accountId=str(account.id), input=payload)
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], (
            field,
            error,
        )
    twice = await gql.error(CHARGE, accountId=str(account.id), input=treating(done.id))
    assert code(twice) == "CONFLICT" and twice["extensions"]["fields"] == ["sourceId"]
    missing = await gql.error(CHARGE, accountId=MISSING, input=manual(100))
    assert code(missing) == "NOT_FOUND"
    bad_id = await gql.error(CHARGE, accountId="acct", input=manual(100))
    assert bad_id["extensions"]["fields"] == {"accountId": "is not a valid id"}
    assert await snapshot(BillingAccount) == before


async def test_money_beyond_32_bits_round_trips_through_long(gql: Any) -> None:
    account = await factories.billing_account()
    big = 3_000_000_000
    assert big > 2**31
    data = await gql.data(CHARGE, accountId=str(account.id), input=manual(big))
    assert data["addCharge"]["charges"][0]["amount"] == eur(big)
    literal = await gql.data(
        f'mutation {{ addCharge(accountId: "{account.id}", input: {{description: "Wing",'
        f' amount: {{amount: {big}, currency: "EUR"}}, source: MANUAL}}) {{ id }} }}'
    )
    assert literal["addCharge"]["id"] == str(account.id)
    read = await gql.data(
        "query($id: ID!) { billingAccount(id: $id) {"
        " totalCharged { amount } balance { amount } } }",
        id=str(account.id),
    )
    assert read["billingAccount"] == {
        "totalCharged": {"amount": 2 * big},
        "balance": {"amount": 2 * big},
    }
    stored = await BillingAccount.get(account.id)
    assert stored is not None and stored.total_charged == 6_000_000_000
    paid = await gql.data(
        PAY, accountId=str(account.id), input={"amount": eur(big), "method": "BANK_TRANSFER"}
    )
    assert paid["recordPayment"]["totalPaid"] == eur(big)
    assert paid["recordPayment"]["balance"] == eur(big)


async def test_an_invalid_long_is_bad_user_input(gql: Any) -> None:
    account = await factories.billing_account()
    before = await snapshot(BillingAccount)
    for amount in [2**53 + 1, 1.5, "100", True]:
        error = await gql.error(CHARGE, accountId=str(account.id), input=manual(amount))
        assert code(error) == "BAD_USER_INPUT", (amount, error)
    literal = await gql.error(
        f'mutation {{ addCharge(accountId: "{account.id}", input: {{description: "Wing",'
        f' amount: {{amount: {2**53 + 1}, currency: "EUR"}}, source: MANUAL}}) {{ id }} }}'
    )
    assert code(literal) in {"BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"}, literal
    assert await snapshot(BillingAccount) == before


async def test_treatment_and_equipment_billing_flow(gql: Any) -> None:
    card = await factories.department(code="CARD", name="Cardiology")
    rad = await factories.department(code="RAD", name="Radiology")
    patient = await factories.patient(last_name="Curie")
    doctor = await factories.doctor(card)
    plan = await factories.treatment_plan(patient, doctor)
    angio = await treatment(plan)
    scanner = await factories.equipment(rad, serial_number="CT-1")
    # Booked by a cardiologist, but the device belongs to radiology.
    visit = await factories.appointment(patient, doctor, scanner)
    opened = await gql.data(OPEN, input={"patientId": str(patient.id)})
    account_id = opened["openBillingAccount"]["id"]

    treated = await gql.data(
        CHARGE,
        accountId=account_id,
        input={
            "description": "Coronary angiography",
            "amount": eur(1_200_00),
            "source": "TREATMENT",
            "sourceId": str(angio.id),
        },
    )
    [first] = treated["addCharge"]["charges"]
    assert first["source"] == "TREATMENT" and first["sourceId"] == str(angio.id)
    assert first["department"] == {"code": "CARD"}
    scanned = await gql.data(
        CHARGE,
        accountId=account_id,
        input={
            "description": "CT scan",
            "amount": eur(350_00),
            "source": "EQUIPMENT_USE",
            "sourceId": str(visit.id),
            "departmentId": str(rad.id),  # allowed when it agrees with the source
        },
    )
    second = scanned["addCharge"]["charges"][1]
    assert second["source"] == "EQUIPMENT_USE" and second["sourceId"] == str(visit.id)
    assert second["department"] == {"code": "RAD"}
    assert scanned["addCharge"]["balance"] == eur(1_550_00)

    paid = await gql.data(
        PAY,
        accountId=account_id,
        input={"amount": eur(1_000_00), "method": "CARD", "reference": "POS-77"},
    )
    account = paid["recordPayment"]
    [payment] = account["payments"]
    assert payment["amount"] == eur(1_000_00) and payment["method"] == "CARD"
    assert payment["reference"] == "POS-77" and payment["receivedAt"] == account["updatedAt"]
    assert account["totalPaid"] == eur(1_000_00) and account["balance"] == eur(550_00)

    before = await snapshot(BillingAccount)
    over = await gql.error(
        PAY, accountId=account_id, input={"amount": eur(550_01), "method": "CASH"}
    )
    assert code(over) == "BAD_USER_INPUT" and "amount" in over["extensions"]["fields"]
    assert "550" in over["extensions"]["fields"]["amount"]
    assert await snapshot(BillingAccount) == before

    read = await gql.data(
        """query($id: ID!, $p: ID!) {
          billingAccount(id: $id) {
            balance { amount currency }
            charges { amount { amount currency } source sourceId department { code } }
            payments { amount { amount } method }
          }
          patient(id: $p) { billingAccount { id balance { amount currency } } }
        }""",
        id=account_id,
        p=str(patient.id),
    )
    assert read["billingAccount"] == {
        "balance": eur(550_00),
        "charges": [
            {
                "amount": eur(1_200_00),
                "source": "TREATMENT",
                "sourceId": str(angio.id),
                "department": {"code": "CARD"},
            },
            {
                "amount": eur(350_00),
                "source": "EQUIPMENT_USE",
                "sourceId": str(visit.id),
                "department": {"code": "RAD"},
            },
        ],
        "payments": [{"amount": {"amount": 1_000_00}, "method": "CARD"}],
    }
    assert read["patient"]["billingAccount"] == {"id": account_id, "balance": eur(550_00)}
    settled = await gql.data(
        PAY, accountId=account_id, input={"amount": eur(550_00), "method": "INSURANCE"}
    )
    assert settled["recordPayment"]["balance"] == eur(0)
    stored = await BillingAccount.get(account_id)
    assert stored is not None
    assert [c.source for c in stored.charges] == [
        ChargeSource.TREATMENT,
        ChargeSource.EQUIPMENT_USE,
    ]
    assert [p.method for p in stored.payments] == [PaymentMethod.CARD, PaymentMethod.INSURANCE]
    assert stored.total_paid == stored.total_charged == 1_550_00


async def test_record_payment_rejections_change_nothing(gql: Any) -> None:
    account = await factories.billing_account()
    await gql.data(CHARGE, accountId=str(account.id), input=manual(100))
    empty = await factories.billing_account()
    before = await snapshot(BillingAccount)
    for account_id, payload, field in [
        (account.id, {"amount": eur(101), "method": "CASH"}, "amount"),
        (account.id, {"amount": eur(0), "method": "CASH"}, "amount"),
        (account.id, {"amount": eur(50, "USD"), "method": "CASH"}, "currency"),
        (account.id, {"amount": eur(50), "method": "CASH", "reference": ""}, "reference"),
        (empty.id, {"amount": eur(1), "method": "CARD"}, "amount"),  # nothing owed
    ]:
        error = await gql.error(PAY, accountId=str(account_id), input=payload)
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    unknown_method = await gql.error(
        PAY, accountId=str(account.id), input={"amount": eur(50), "method": "BITCOIN"}
    )
    assert code(unknown_method) == "BAD_USER_INPUT"
    missing = await gql.error(PAY, accountId=MISSING, input={"amount": eur(1), "method": "CASH"})
    assert code(missing) == "NOT_FOUND"
    assert await snapshot(BillingAccount) == before


async def test_update_insurance_sets_and_removes_it_without_touching_money(gql: Any) -> None:
    account = await factories.billing_account()
    await gql.data(CHARGE, accountId=str(account.id), input=manual(500))
    await gql.data(PAY, accountId=str(account.id), input={"amount": eur(200), "method": "CASH"})
    data = await gql.data(
        INSURE,
        accountId=str(account.id),
        insurance={
            "provider": "Acme Health",
            "policyNumber": "AC-42",
            "groupNumber": "G-7",
            "validUntil": "2033-06-30T23:59:59Z",
        },
    )
    insured = data["updateInsurance"]
    assert insured["insurance"] == {
        "provider": "Acme Health",
        "policyNumber": "AC-42",
        "groupNumber": "G-7",
        "validUntil": "2033-06-30T23:59:59+00:00",
    }
    assert insured["balance"] == eur(300) and len(insured["charges"]) == 1
    assert len(insured["payments"]) == 1
    removed = await gql.data(INSURE, accountId=str(account.id), insurance=None)
    assert removed["updateInsurance"]["insurance"] is None
    assert removed["updateInsurance"]["totalCharged"] == eur(500)
    stored = await BillingAccount.get(account.id)
    assert stored is not None and stored.insurance is None and stored.balance == 300


async def test_update_insurance_rejections_change_nothing(gql: Any) -> None:
    account = await factories.billing_account(
        insurance={"provider": "Acme", "policy_number": "AC-1"}
    )
    before = await snapshot(BillingAccount)
    for field, insurance in {
        "insurance.provider": {"provider": " ", "policyNumber": "AC-2"},
        "insurance.policyNumber": {"provider": "Acme", "policyNumber": ""},
        "insurance.groupNumber": {
            "provider": "Acme",
            "policyNumber": "AC-2",
            "groupNumber": "g" * 65,
        },
        "insurance.validUntil": {
            "provider": "Acme",
            "policyNumber": "AC-2",
            "validUntil": "2033-01-01T00:00:00",
        },
    }.items():
        error = await gql.error(INSURE, accountId=str(account.id), insurance=insurance)
        assert code(error) == "BAD_USER_INPUT" and field in error["extensions"]["fields"], error
    missing = await gql.error(
        INSURE, accountId=MISSING, insurance={"provider": "Acme", "policyNumber": "AC-2"}
    )
    assert code(missing) == "NOT_FOUND"
    assert await snapshot(BillingAccount) == before


async def test_billing_accounts_list_and_patient_without_account(gql: Any) -> None:
    first, second, loner = (
        await factories.patient(),
        await factories.patient(),
        await factories.patient(),
    )
    one = await factories.billing_account(first)
    await factories.billing_account(second)
    data = await gql.data(
        "query($p: ID!, $l: ID!) { all: billingAccounts { totalCount }"
        " mine: billingAccounts(patientId: $p) { nodes { id patient { id } } }"
        " loner: patient(id: $l) { billingAccount { id } } }",
        p=str(first.id),
        l=str(loner.id),
    )
    assert data["all"] == {"totalCount": 2}
    assert data["mine"]["nodes"] == [{"id": str(one.id), "patient": {"id": str(first.id)}}]
    assert data["loner"] == {"billingAccount": None}
    assert await gql.data(f'{{ billingAccount(id: "{MISSING}") {{ id }} }}') == {
        "billingAccount": None
    }
    assert await Patient.count() == 3
