"""Issue 17's "Done when" for encryption at rest, over the whole store: after the demo is seeded
and a patient's record is read every way a client can (GraphQL, the FHIR bundle, the GDPR
export), no raw document in any MongoDB collection and no value in Redis holds that patient's
name, national id, contact details or any of their sealed clinical text (diagnoses, complaints,
reasons, notes) in clear. The secrets are taken from the patient's own records as the models
open them, so a module that stores clinical text in a field nobody sealed fails here."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

import db
from crypto.fields import SEALED, Sealing, is_sealed
from demo import seed_demo
from models.patients import Patient
from models.staff import AdminStaff, Doctor, Nurse
from services import erasure_plan
from tests.conftest import GraphQLClient, token_for
from tests.encryption.helpers import redis_values

PATIENTS = 24
MIN_SECRET = 5
"""Shorter clear strings (``Left``, ``oral``) name nothing about a person."""
CATALOGUES = frozenset({"drugs", "lab_tests", "inventory_items", "departments"})
"""Reference data: a drug's name in the drug master says nothing about who takes it."""


def is_text(value: str) -> bool:
    """Words a person wrote, not a code (``0FT44ZZ``, ``I50.9``) or an id: codes stay clear
    where billing and claims need them (a charge's procedure code), like other structured data."""
    return len(value) >= MIN_SECRET and (" " in value or not re.search(r"\d", value))


SEEN = """
query($id: ID!) {
  patient(id: $id) {
    firstName lastName nationalId contact { email phone }
    allergies { substance } treatmentPlans { nodes { diagnosis { code description } } }
  }
}
"""
BUNDLE = "query($id: ID!) { patientFhirBundle(patientId: $id) }"


def strings(value: Any) -> Iterator[str]:
    yield from (text for _, text in paths(value))


def paths(value: Any, at: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside ``value`` with its dotted path (``charges.description``)."""
    if isinstance(value, str):
        yield at, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, f"{at}.{key}" if at else str(key))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from paths(item, at)


async def _sealed_texts(patient: Patient) -> dict[str, set[str]]:
    """Per collection, the clear text of every sealed field of the patient's documents."""
    found: dict[str, set[str]] = {}
    for model, sealing in SEALED.items():
        if model is Patient:
            continue
        if "patient_id" not in getattr(model, "model_fields", {}):
            continue
        docs = await model.find({"patient_id": patient.id}).to_list()  # type: ignore[attr-defined]
        for doc in docs:
            dumped = doc.model_dump(mode="json")
            for name in sealing.fields:
                texts = {t for t in strings(dumped.get(name)) if is_text(t)}
                found.setdefault(sealing.collection, set()).update(texts)
    return found


async def _staff_words() -> set[str]:
    """Names of staff (stored in clear, as staff are not patients): a patient who shares one
    would be found in a doctor's record, which says nothing about the patient."""
    words: set[str] = set()
    for model in (Doctor, Nurse, AdminStaff):
        for raw in await db.collection(model).find({}).to_list(None):
            words.update(w.casefold() for w in re.findall(r"\w+", f"{raw.get('first_name')}"))
            words.update(w.casefold() for w in re.findall(r"\w+", f"{raw.get('last_name')}"))
    return words


async def _chosen() -> tuple[Patient, dict[str, set[str]]]:
    """The demo patient with the most sealed clinical text in the most collections, whose
    names no staff member shares."""
    staff = await _staff_words()
    best: tuple[bool, int, int, Patient, dict[str, set[str]]] | None = None
    for patient in await Patient.find_all().to_list():
        names = {
            w.casefold() for w in re.findall(r"\w+", f"{patient.first_name} {patient.last_name}")
        }
        if names & staff or not patient.national_id:
            continue
        texts = await _sealed_texts(patient)
        score = ("treatment_plans" in texts, len(texts), sum(len(t) for t in texts.values()))
        if best is None or score > best[:3]:
            best = (*score, patient, texts)
    assert best is not None, "every demo patient shares a name with staff"
    return best[3], best[4]


async def test_no_document_and_no_cache_value_holds_a_demo_patients_phi_in_clear(
    app: Any, http: Any, settings: Any
) -> None:
    await seed_demo(PATIENTS)
    patient, texts = await _chosen()
    # The demo tells a whole story: this patient has sealed text in several modules.
    assert {"treatment_plans"} <= set(texts) and len(texts) >= 3, sorted(texts)

    own = GraphQLClient(http, token_for(app, roles=["patient"], pid=str(patient.id)))
    shown = (await own.data(SEEN, id=str(patient.id)))["patient"]
    assert shown["nationalId"] == patient.national_id and shown["treatmentPlans"]["nodes"]
    assert (await own.data(BUNDLE, id=str(patient.id)))["patientFhirBundle"]["entry"]
    exported = await http.get(
        f"/patients/{patient.id}/export",
        params={"reason": "encryption at rest check"},
        headers={"authorization": f"Bearer {token_for(app, roles=['admin'])}"},
    )
    assert exported.status_code == 200, exported.text
    whole = exported.text
    clinical = {t for ts in texts.values() for t in ts}
    assert all(t in whole or t.encode("unicode_escape").decode() in whole for t in clinical)

    names = [patient.first_name, patient.last_name]
    assert patient.national_id is not None
    exact = [patient.national_id, *(v for v in (patient.contact.phone, patient.contact.email) if v)]
    exact += sorted(clinical)

    database = app.state.mongo[settings.mongodb_db]
    stored: list[tuple[str, str]] = []
    for name in set(await database.list_collection_names()) - CATALOGUES:
        async for raw in database[name].find({}):
            stored += [(f"{name}:{at}", text) for at, text in paths(raw) if not is_sealed(text)]
    stored += [("redis", text) for text in await redis_values(settings)]
    assert any(where == "redis" and "patients" in t for where, t in stored)  # caches were filled

    leaks = set()
    for where, text in stored:
        folded = text.casefold()
        for secret in exact:
            if secret.casefold() in folded:
                leaks.add((where, secret))
        for name in names:
            if re.search(rf"\b{re.escape(name.casefold())}\b", folded):
                leaks.add((where, name))
    assert not leaks, sorted(leaks)[:20]


CLEAR_BY_DESIGN = {
    # Copies of catalogue names (the lab test, the analyte): the same words for every patient.
    "lab_orders.tests[].name": "catalogue",
    "lab_orders.report[].analyte_name": "catalogue",
    "lab_results.analyte_name": "catalogue",
    "doctor_orders.laboratory.test_codes[]": "catalogue codes",
    # Structured amounts a prescriber picks ("500 mg", "every 8 hours"), useless without the
    # sealed drug they belong to.
    "prescriptions.dose": "structured",
    "prescriptions.frequency": "structured",
    # Workflow markers the services match by value ("order held"): sealing needs a clear marker.
    "medication_administrations.reason": "queried",
    "nursing_tasks.reason": "queried",
    # Reasons inside histories and sub-documents whose other fields are queried or appended
    # (``$push``): staff's words about the workflow ("patient asked to move it").
    "appointments.reschedule_history[].reason": "history",
    "appointments.cancellation.reason": "sub-document",
    "surgery_bookings.reschedule_history[].reason": "history",
    "surgery_bookings.cancellation.reason": "sub-document",
    "doctor_orders.history[].reason": "history",
    "lab_samples.custody[].reason": "history",
    "emergency_visits.triage.note": "sub-document (acuity is queried)",
    "emergency_visits.triage_history[].note": "history",
    "emergency_visits.disposition.destination": "sub-document (kind is queried)",
    "emergency_visits.disposition.note": "sub-document (kind is queried)",
    # The consent's scope names organisations and purposes; the erasure request's reason has
    # the patient's identity struck out (``services.erasure.strike``).
    "consents.scope[]": "organisations",
    "erasure_requests.reason": "struck",
    "record_shares.recipient_name": "an organisation",
}
"""Free text in documents about a patient that is stored in clear, and why. Everything else
a person types about a patient (identity, contact, clinical or security groups) is sealed."""


def _texts(annotation: Any, metadata: list[Any], path: str) -> Iterator[str]:
    """Paths of the free text (``services.erasure_plan.free_text``) inside one field."""
    bare, meta, _ = erasure_plan._unwrap(annotation, metadata)
    if typing.get_origin(bare) in (list, tuple, set):
        args = typing.get_args(bare)
        yield from _texts(args[0] if args else Any, [], f"{path}[]")
    elif isinstance(bare, type) and issubclass(bare, BaseModel):
        for name, info in bare.model_fields.items():
            yield from _texts(*erasure_plan._metadata(info), f"{path}.{info.alias or name}")
    elif bare is str and erasure_plan.free_text(meta):
        yield path


def _covered(sealing: Sealing | None, path: str) -> bool:
    if sealing is None:
        return False
    if path.split(".")[0].split("[")[0] in sealing.fields:
        return True
    return any(
        path.startswith(f"{array}[].") and path.rsplit(".", 1)[-1] in names
        for array, (_, names) in sealing.items.items()
    )


def test_every_free_text_field_about_a_patient_is_sealed_or_clear_by_design() -> None:
    """Derived from the declarations, like erasure: a new module's typed text about a patient
    fails here until it is sealed (or added above with its reason)."""
    clear = set()
    for target in erasure_plan.targets(frozenset()):
        model = target.declaration.model
        assert model is not None
        for name in (*target.text, *target.removed):
            info = model.model_fields.get(name)
            if info is None:
                continue
            for path in _texts(*erasure_plan._metadata(info), name):
                if not _covered(SEALED.get(model), path):
                    clear.add(f"{target.declaration.collection}.{path}")
    assert clear == set(CLEAR_BY_DESIGN), (
        sorted(clear - set(CLEAR_BY_DESIGN)),
        sorted(set(CLEAR_BY_DESIGN) - clear),
    )
