"""HIPAA Safe Harbor: none of the 18 identifier kinds of a demo patient is left in the export,
ages over 89 are grouped, and dates are shifted consistently per patient."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from services.safe_harbor import AGE_GROUP_URL, SafeHarbor
from tests.conftest import token_for
from tests.fhir.helpers import (
    ADDRESS,
    BORN,
    EMAIL,
    EVERYTHING,
    GROUP_NUMBER,
    MEMBER_ID,
    NAME,
    NATIONAL_ID,
    PHONE,
    record,
    resources,
)


async def _export(app: Any, http: Any, patient_id: Any, deidentify: bool) -> dict[str, Any]:
    token = token_for(app, roles=["admin"])
    url = EVERYTHING.format(patient_id) + ("?deidentify=safe-harbor" if deidentify else "")
    response = await http.get(url, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _dates(bundle: dict[str, Any]) -> dict[str, str]:
    """Every full date in the bundle by its resource-relative path (ids rewritten apart)."""
    out: dict[str, str] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")
        elif isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[7] == "-":
            out[path] = value

    for i, entry in enumerate(bundle["entry"]):
        walk({k: v for k, v in entry["resource"].items() if k != "id"}, f"{i}")
    return out


async def test_no_identifier_kind_survives(app: Any, http: Any) -> None:
    r = await record()
    plain = await _export(app, http, r.patient.id, deidentify=False)
    bundle = await _export(app, http, r.patient.id, deidentify=True)
    Bundle.model_validate(bundle)
    text = json.dumps(bundle)
    identifiers = {
        "names": [*NAME],
        "national id": [NATIONAL_ID],
        "phone": [PHONE, PHONE.replace(" ", "")],
        "email": [EMAIL],
        "address": [*ADDRESS],
        "birth date": [BORN.isoformat()],
        "plan ids": [MEMBER_ID, GROUP_NUMBER],
        "record ids": [str(r.patient.id), str(r.visit.id), str(r.doctor.id)],
        "exact dates": [
            r.visited_at.date().isoformat(),
            r.admission.admitted_at.date().isoformat(),
        ],
        "mrn system": ["urn:shms:mrn", "urn:shms:national-id"],
    }
    for kind, values in identifiers.items():
        for value in values:
            assert value in json.dumps(plain) or kind in ("phone",), (kind, value)
            assert value not in text, f"{kind} left in the de-identified export: {value}"
    for key in ('"identifier"', '"telecom"', '"name"', '"note"', '"subscriberId"', '"contact"'):
        assert key not in text
    patient = resources(bundle, "Patient")[0]
    assert "birthDate" not in patient  # born 1930: over 89
    assert patient["extension"] == [{"url": AGE_GROUP_URL, "valueString": "90+"}]
    assert patient["address"] == [{"country": "GB", "postalCode": "000"}]
    assert bundle["meta"]["security"][0]["code"] == "safe-harbor"


async def test_dates_shift_consistently_and_keep_intervals(app: Any, http: Any) -> None:
    r = await record(born=date(1975, 2, 3))
    plain = _dates(await _export(app, http, r.patient.id, deidentify=False))
    first = await _export(app, http, r.patient.id, deidentify=True)
    again = await _export(app, http, r.patient.id, deidentify=True)
    shifted = _dates(first)
    assert shifted == _dates(again)  # the same patient, the same shift every time
    assert resources(first, "Patient")[0]["birthDate"] == "1975"  # year only under 90
    assert [e["resource"]["id"] for e in first["entry"]] == [
        e["resource"]["id"] for e in again["entry"]
    ]  # keyed pseudonyms: stable
    moments = {p: v for p, v in plain.items() if "T" in v and p in shifted}
    assert len(moments) >= 5
    offsets = {
        datetime.fromisoformat(shifted[p]) - datetime.fromisoformat(v) for p, v in moments.items()
    }
    assert len(offsets) == 1  # one offset: every interval is preserved
    (offset,) = offsets
    assert timedelta(days=1) <= abs(offset) <= timedelta(days=365)
    assert offset == SafeHarbor("shms-development-deidentify-secret", str(r.patient.id)).shift


def test_the_shift_depends_on_the_patient_and_the_key() -> None:
    a = SafeHarbor("k" * 16, "p1").shift
    assert a == SafeHarbor("k" * 16, "p1").shift
    shifts = {SafeHarbor("k" * 16, f"p{i}").shift for i in range(20)}
    assert len(shifts) > 10
    assert SafeHarbor("j" * 16, "p1").pseudonym("x") != SafeHarbor("k" * 16, "p1").pseudonym("x")
