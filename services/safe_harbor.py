"""HIPAA Safe Harbor de-identification of a FHIR bundle (45 CFR 164.514(b)(2)).

Every one of the 18 identifier kinds is removed: names, contact details (phone, fax, email,
URLs, IP addresses), geographic units smaller than a state (only the country is kept, with the
ZIP code suppressed to ``000``: SHMS keeps no census table to tell 3-digit areas above 20,000
people), identifiers (MRN, national id, plan member and group numbers, account, licence, device
numbers: every ``identifier`` element goes), photos and biometrics (no such element survives),
and any other unique code: resource ids and references become keyed pseudonyms. Free text
(notes, conclusions, instructions) goes too, as it may name anyone.

Dates: a birth date keeps its year only, and a patient older than 89 has none at all (an age
group ``90+`` instead); every other date is shifted by a per-patient offset of 1 to 365 days
(an HMAC of the patient id under ``SHMS_DEIDENTIFY_SECRET``), so intervals within a record
are preserved and one patient's exports agree with each other, while the calendar dates are
not disclosed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import date, datetime, timedelta
from typing import Any

from models.patients import age_on
from services.fhir import validate

DROPPED = frozenset(
    {
        "identifier",
        "subscriberId",
        "telecom",
        "name",
        "contact",
        "photo",
        "text",
        "note",
        "conclusion",
        "patientInstruction",
        "generalPractitioner",
        "link",
    }
)
"""Elements removed wherever they occur (``text``: the narrative, and a CodeableConcept's
``text`` is kept; see ``_clean``)."""
AGE_GROUP_URL = "urn:shms:age-group"
DEIDENTIFIED_TAG = {"system": "urn:shms:deidentification", "code": "safe-harbor"}
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(T.*)?$")


class SafeHarbor:
    """De-identifies one patient's bundle; ``key``: the configured secret."""

    def __init__(self, key: str, patient_id: str, today: date | None = None) -> None:
        self._key = key.encode()
        self.patient_id = patient_id
        self.shift = timedelta(days=self.offset_days(patient_id))
        self.today = today or date.today()

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def offset_days(self, patient_id: str) -> int:
        """-365..-1 or 1..365, the same for every export of the patient."""
        number = int(self._mac("shift", patient_id)[:12], 16)
        days = number % 365 + 1
        return days if (number >> 20) & 1 else -days

    def pseudonym(self, id: str) -> str:
        return "x" + self._mac("id", id)[:24]

    def _reference(self, value: str) -> str:
        kind, slash, id = value.partition("/")
        return f"{kind}/{self.pseudonym(id)}" if slash else self.pseudonym(value)

    def _date(self, value: str) -> str:
        found = _DATE.match(value)
        if found is None:
            return value
        if found.group(4):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00")) + self.shift
            return moment.isoformat()
        return (date.fromisoformat(value[:10]) + self.shift).isoformat()

    def _clean(self, value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                if k in DROPPED and not (k == "text" and _is_concept(value)):
                    continue
                cleaned = self._clean(v, k)
                if cleaned not in (None, "", [], {}):
                    out[k] = cleaned
            return out
        if isinstance(value, list):
            items = [self._clean(v, key) for v in value]
            return [v for v in items if v not in (None, "", [], {})]
        if isinstance(value, str):
            if key == "reference":
                return self._reference(value)
            if key == "id":
                return self.pseudonym(value)
            return self._date(value)
        return value

    def patient(self, resource: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"resourceType": "Patient", "id": self.pseudonym(resource["id"])}
        if "gender" in resource:
            out["gender"] = resource["gender"]
        born = resource.get("birthDate")
        if isinstance(born, str) and len(born) == 10:
            if age_on(date.fromisoformat(born), self.today) > 89:
                out["extension"] = [{"url": AGE_GROUP_URL, "valueString": "90+"}]
            else:
                out["birthDate"] = born[:4]
        countries = [a["country"] for a in resource.get("address", []) if a.get("country")]
        if countries:
            out["address"] = [{"country": countries[0], "postalCode": "000"}]
        if resource.get("deceasedBoolean") is not None:
            out["deceasedBoolean"] = resource["deceasedBoolean"]
        return out

    def resource(self, resource: dict[str, Any]) -> dict[str, Any]:
        if resource["resourceType"] == "Patient":
            return self.patient(resource)
        cleaned: dict[str, Any] = self._clean(resource)
        if resource["resourceType"] == "Coverage":
            cleaned.pop("class", None)  # plan and group numbers are identifiers
        return cleaned

    def bundle(self, document: dict[str, Any]) -> dict[str, Any]:
        """A new bundle: de-identified resources, no timestamp, tagged, validated."""
        entries = []
        for entry in document.get("entry", []):
            resource = self.resource(entry["resource"])
            entries.append(
                {
                    "fullUrl": f"urn:shms:deidentified/{resource['resourceType']}/{resource['id']}",
                    "resource": resource,
                }
            )
        out = {
            "resourceType": "Bundle",
            "type": document.get("type", "collection"),
            "meta": {"security": [DEIDENTIFIED_TAG]},
            "entry": entries,
        }
        return validate(out)


def _is_concept(value: dict[str, Any]) -> bool:
    """A CodeableConcept (its ``text`` is a term, kept), not a resource with a narrative."""
    return "resourceType" not in value and "div" not in str(value.get("text", ""))
