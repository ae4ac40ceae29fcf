"""Who reads and does what in the pharmacy (models/drugs.py, models/pharmacy.py)."""

from __future__ import annotations

from typing import Any

from tests.pharmacy import world as w

DRUG = """query($id: ID!) { drug(id: $id) { genericName price { amount } } }"""
DISPENSES = """{ dispenses { nodes { id quantity amount { amount } lines { batchNumber } } } }"""


async def withheld(client: Any, query: str, **variables: Any) -> tuple[dict[str, Any], set[str]]:
    """The data, and the field groups withheld from it (each a FORBIDDEN error)."""
    body = await client(query, **variables)
    errors = body.get("errors", [])
    assert all(e["extensions"]["code"] == "FORBIDDEN" for e in errors), errors
    return body["data"], {e["extensions"]["field"] for e in errors}


async def test_roles(app: Any, client_as: Any) -> None:
    d = await w.drug(price=40)
    a = await w.batch(d, "A", 10, cost=7)
    rx = await w.prescription(d)
    other = await w.prescription(d)
    ph = client_as(**w.PHARMACIST)
    done = (await ph.data(w.DISPENSE, id=str(rx.id), quantity=2))["dispensePrescription"]
    await ph.data(w.DISPENSE, id=str(other.id), quantity=1)

    doctor = client_as(roles=["doctor"], sid=str(rx.prescriber_id))
    nurse = client_as(roles=["nurse"])
    billing = client_as(roles=["billing"])
    analyst = client_as(roles=["analyst"])
    patient = client_as(roles=["patient"], pid=str(rx.patient_id))

    # Clinicians: stock and levels, never costs; the drug master without prices.
    for clinician in (doctor, nurse):
        data, hidden = await withheld(clinician, w.BATCHES, drugId=str(d.id))
        nodes = data["stockBatches"]["nodes"]
        assert [(n["quantity"], n["unitCost"]) for n in nodes] == [(7, None)]
        assert hidden == {"cost"}
        level = (await clinician.data(w.LEVEL, drugId=str(d.id)))["stockLevel"]
        assert level[0]["quantity"] == 7
        data, hidden = await withheld(clinician, DRUG, id=str(d.id))
        assert data["drug"]["price"] is None and hidden == {"price"}
        refused = await clinician.error(w.DISPENSE, id=str(rx.id), quantity=1)
        assert w.code(refused) == "FORBIDDEN"
    # Billing: costs and prices.
    nodes = (await billing.data(w.BATCHES, drugId=str(d.id)))["stockBatches"]["nodes"]
    assert nodes[0]["unitCost"] == {"amount": 7}
    assert (await billing.data(DRUG, id=str(d.id)))["drug"]["price"] == {"amount": 40}
    # Analysts: nothing row-level.
    assert w.code(await analyst.error(w.BATCHES, drugId=str(d.id))) == "FORBIDDEN"
    assert w.code(await analyst.error(w.LEVEL, drugId=str(d.id))) == "FORBIDDEN"
    assert w.code(await analyst.error(DISPENSES)) == "FORBIDDEN"
    # The prescriber sees their patient's dispense; the patient sees their own, with the charge
    # but not which batches.
    data, hidden = await withheld(doctor, DISPENSES)
    assert hidden == {"charge"}
    seen = data["dispenses"]["nodes"]
    assert [n["id"] for n in seen] == [done["id"]]
    data, hidden = await withheld(patient, DISPENSES)
    assert hidden == {"handling"}
    mine = data["dispenses"]["nodes"]
    assert [(n["id"], n["amount"], n["lines"]) for n in mine] == [
        (done["id"], {"amount": 80}, None)
    ]
    assert w.code(await patient.error(w.BATCHES, drugId=str(d.id))) == "FORBIDDEN"
    # Only pharmacists (and admins) keep the master and the stock.
    create = """mutation { createDrug(input: {genericName: "X", form: TABLET, route: ORAL,
      strength: {value: 1, unit: "mg"}, atcCode: "A01AA01", unitOfIssue: "tablet", price: 1})
      { id } }"""
    assert w.code(await doctor.error(create)) == "FORBIDDEN"
    bad = create.replace("A01AA01", "amox")
    error = await ph.error(bad)
    assert w.code(error) == "BAD_USER_INPUT" and "atcCode" in error["extensions"]["fields"]
    assert w.code(await nurse.error(w.WRITE_OFF, id=str(a.id), reason="DAMAGED")) == "FORBIDDEN"
