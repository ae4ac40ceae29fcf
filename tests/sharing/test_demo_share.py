"""The demo's consents and share, as a user meets them: the partner hospital signs in with its
published client secret and reads the consenting patient's record, exactly the shared types;
a patient it was not shared with is refused; the consent history shows the withdrawals."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle

from demo import ids, seed_demo
from demo.accounts import PARTNER_CLIENT_SECRET
from demo.privacy import PARTNER_CLIENT_ID, SHARED_TYPES
from models.sharing import RecordShare
from tests.conftest import GraphQLClient, token_for
from tests.fhir.helpers import EVERYTHING

CONSENTS = """query($p: ID!) { consents(patientId: $p) { kind channel status version } }"""


async def test_the_partner_reads_exactly_what_the_demo_shared(app: Any, http: Any) -> None:
    await seed_demo(10)
    (share,) = await RecordShare.find_all().to_list()
    assert share.patient_id == ids.patient_id(3)  # as the README says
    signed_in = await http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": PARTNER_CLIENT_ID,
            "client_secret": PARTNER_CLIENT_SECRET,
        },
    )
    assert signed_in.status_code == 200, signed_in.text
    headers = {"authorization": f"Bearer {signed_in.json()['access_token']}"}

    shared = await http.get(EVERYTHING.format(share.patient_id), headers=headers)
    assert shared.status_code == 200, shared.text
    bundle = Bundle.model_validate(shared.json())
    kinds = {e.resource.__resource_type__ for e in bundle.entry or [] if e.resource is not None}
    assert "Patient" in kinds and kinds <= set(SHARED_TYPES)
    assert kinds & {"Condition", "MedicationRequest", "Observation"}

    other = ids.patient_id(1)
    assert other != share.patient_id
    refused = await http.get(EVERYTHING.format(other), headers=headers)
    assert refused.status_code == 403

    desk = GraphQLClient(http, token_for(app, roles=["admin_staff"]))
    fifth = (await desk.data(CONSENTS, p=str(ids.patient_id(5))))["consents"]
    sms = [c for c in fifth if c["channel"] == "SMS"]
    assert {(c["version"], c["status"]) for c in sms} == {(1, "GRANTED"), (2, "WITHDRAWN")}
