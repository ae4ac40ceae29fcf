"""Encryption at rest: MongoDB and Redis hold no PHI in clear; GraphQL still answers it;
ciphertexts are bound to their field and document; master key rotation keeps it readable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cli
import config
import db
from auth.policy import REGISTRY, Classification
from crypto import keyring
from crypto.fields import BY_COLLECTION, Unreadable, is_sealed, open_document
from crypto.keyring import CACHED_ONLY
from crypto.keys import LocalMasterKeys, configured_keys, decode_key, new_key
from demo import seed_demo
from models.clinical import TreatmentPlan
from models.patients import SEALED, UNSEALED_PHI, Patient
from services.patients import search_filter
from tests.conftest import TEST_MONGODB_URL, GraphQLClient
from tests.encryption.helpers import redis_values

KEYS = len(BY_COLLECTION) + len(CACHED_ONLY)
"""Data keys: one per sealed collection, and the result cache's."""
READ = """
query($id: ID!) {
  patient(id: $id) { firstName lastName nationalId contact { email phone address { line1 city } } }
}
"""
CLINICAL = """
query($id: ID!) {
  patient(id: $id) {
    firstName allergies { substance } treatmentPlans { nodes { diagnosis { code description } } }
  }
}
"""


async def _demo_patient() -> tuple[Patient, list[TreatmentPlan]]:
    """A demo patient with a national id, an email, a phone and treatment plans."""
    await seed_demo(12)
    for patient in await Patient.find_all().to_list():
        plans = await TreatmentPlan.find({"patient_id": patient.id}).to_list()
        contact = patient.contact
        if plans and patient.national_id and contact.email and contact.phone:
            return patient, plans
    raise AssertionError("no demo patient with plans, national id, email and phone")


async def test_mongodb_and_redis_hold_no_phi_in_clear_and_graphql_answers_it(
    app: Any, gql: GraphQLClient, client_as: Any, settings: Any
) -> None:
    patient, plans = await _demo_patient()
    shown = (await gql.data(READ, id=str(patient.id)))["patient"]  # an admin, among others
    assert (shown["firstName"], shown["lastName"]) == (patient.first_name, patient.last_name)
    assert shown["nationalId"] == patient.national_id
    assert shown["contact"]["email"] == patient.contact.email
    doctor = client_as(roles=["doctor"], sid=str(plans[0].doctor_id))  # a treating doctor
    shown = (await doctor.data(CLINICAL, id=str(patient.id)))["patient"]
    diagnoses = {n["diagnosis"]["description"] for n in shown["treatmentPlans"]["nodes"]}
    assert diagnoses == {p.diagnosis.description for p in plans}

    assert patient.contact.phone is not None and patient.national_id is not None
    secrets = [patient.first_name, patient.last_name, patient.national_id, patient.contact.phone]
    secrets += [str(patient.contact.email)]
    secrets += [p.diagnosis.description for p in plans]
    secrets += [p.diagnosis.code for p in plans if p.diagnosis.code]

    raw = await db.collection(Patient).find_one({"_id": patient.id})
    raw_plans = await db.collection(TreatmentPlan).find({"patient_id": patient.id}).to_list(None)
    stored = repr(raw) + repr(raw_plans)
    assert raw is not None and all(is_sealed(raw[f]) for f in ("first_name", "contact"))
    cached = await redis_values(settings)
    assert any("patients" in value for value in cached)  # the document cache was filled
    everything = stored + "".join(cached)
    for secret in secrets:
        for spelling in {secret, secret.casefold(), secret.encode("unicode_escape").decode()}:
            assert spelling not in everything, spelling


async def test_national_id_and_name_search_work_on_keyed_hashes(
    gql: GraphQLClient,
) -> None:
    patient, _ = await _demo_patient()
    assert patient.national_id is not None
    raw = await db.collection(Patient).find_one({"_id": patient.id})
    assert raw is not None and patient.national_id not in repr(raw["national_id_index"])
    again = await db.collection(Patient).find_one({"national_id_index": raw["national_id_index"]})
    assert again is not None and again["_id"] == patient.id
    assert not any(t in raw["search_tokens"] for t in ("z", patient.first_name[:2].casefold()))
    words = f"{patient.first_name[:3]} {patient.last_name[:2]}"
    found = await Patient.find(search_filter(words)).to_list()
    assert patient.id in {p.id for p in found}
    answer = await gql.data("query($s: String) { patients(search: $s) { nodes { id } } }", s=words)
    assert str(patient.id) in {n["id"] for n in answer["patients"]["nodes"]}


async def test_a_ciphertext_moved_to_another_field_or_patient_does_not_open(
    database: Any,
) -> None:
    await seed_demo(3)
    first, second = await db.collection(Patient).find({}).sort("_id", 1).limit(2).to_list(None)
    assert open_document(SEALED, first)["first_name"]  # as stored, it opens
    with pytest.raises(Unreadable):
        open_document(SEALED, {**first, "last_name": first["first_name"]})
    with pytest.raises(Unreadable):
        open_document(SEALED, {**second, "first_name": first["first_name"]})
    tampered = (
        first["first_name"][:-6]
        + ("A" if first["first_name"][-6] != "A" else "B")
        + first["first_name"][-5:]
    )
    with pytest.raises(Unreadable):
        open_document(SEALED, {**first, "first_name": tampered})


def test_every_identity_contact_and_clinical_field_of_patients_is_sealed() -> None:
    declaration = next(d for d in REGISTRY if d.model is Patient)
    stored = {name: info.alias or name for name, info in Patient.model_fields.items()}
    camel = {"".join(w.title() if i else w for i, w in enumerate(n.split("_"))): n for n in stored}
    phi = {
        camel[f]
        for g in declaration.groups
        if g.classification
        in (Classification.IDENTITY, Classification.CONTACT, Classification.CLINICAL)
        for f in g.fields
        if f in camel
    } - {"id", "created_at", "updated_at"}
    assert phi == set(SEALED.fields) | set(UNSEALED_PHI)


async def test_rotation_rewraps_data_keys_and_everything_stays_readable(database: Any) -> None:
    await seed_demo(3)
    names = {p.id: p.first_name for p in await Patient.find_all().to_list()}
    store = db.key_store(database)
    old_keys = configured_keys(config.get_settings())  # what the database was opened with
    old = LocalMasterKeys(old_keys)
    fresh = new_key()
    both = LocalMasterKeys([decode_key(fresh), *old_keys])
    assert await keyring.rotate(store, both) == KEYS  # one per sealed collection, and the cache's
    wrapped = {k.collection: set(k.wrapped_by) for k in await keyring.status(store)}
    assert all(w == {both.primary, old.primary} for w in wrapped.values())  # readers of either
    assert await keyring.rotate(store, both, retire=True) == KEYS
    only_new = LocalMasterKeys([decode_key(fresh)])
    keyring.KEYRING.clear()  # a process started with the new key alone
    await keyring.open_keys(store, only_new, ["patients", "treatment_plans"])
    raws = await db.collection(Patient).find({}).to_list(None)
    assert {r["_id"]: open_document(SEALED, r)["first_name"] for r in raws} == names
    assert len(await TreatmentPlan.find_all().to_list()) > 0  # opened through Beanie
    keyring.KEYRING.clear()
    with pytest.raises(RuntimeError, match="no configured master key"):
        await keyring.open_keys(store, old, ["patients"])  # the retired key no longer unwraps


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """MONGODB_URL set (the embedded store shared by every command), a fresh state dir."""
    monkeypatch.setenv("MONGODB_URL", TEST_MONGODB_URL or "mongodb://demo.invalid:27017")
    monkeypatch.setenv("MONGODB_DB", f"shms_test_{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("SHMS_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("SHMS_MASTER_KEY", raising=False)
    config.get_settings.cache_clear()
    shared = db.create_client(TEST_MONGODB_URL)
    monkeypatch.setattr(db, "create_client", lambda url, *a: shared)
    yield shared
    config.get_settings.cache_clear()


def test_shms_keys_rotate_and_status(cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["seed", "--patients", "2"]) == 0
    assert cli.main(["keys", "status"]) == 0
    before = capsys.readouterr().out
    assert "patients" in before and "treatment_plans" in before
    assert cli.main(["keys", "rotate", "--new-key"]) == 0
    out = capsys.readouterr().out
    assert "Added master key" in out and f"{KEYS} data key(s) changed" in out
    assert "not yet wrapped" not in out
    assert cli.main(["keys", "rotate", "--retire"]) == 0
    out = capsys.readouterr().out
    assert f"{KEYS} data key(s) changed" in out
    lines = [line.split() for line in out.splitlines() if "patients" in line]
    assert len(lines[0][-1].split(",")) == 1  # wrapped by the new primary alone
