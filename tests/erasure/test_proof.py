"""The proof: after erasing a demo patient, no MongoDB document, no Redis key or value of the
deployment holds their identity, the records kept by law still add up, and they cannot sign in.

The patient is a seeded demo patient with appointments, visits, lab results, prescriptions and
billing. Their identity is first set (through the patients service, as the API does) to values
found nowhere else in the demo, so a hit can only be theirs; before the erasure the same scan
finds them in MongoDB and in Redis, so the scan is shown to look where the data is.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from bson import json_util

import db
from auth.roles import Role
from demo import ids
from models import Patient
from models.audit import AuditEvent
from models.billing import BillingAccount
from models.patients import Address, Contact, fold
from services import accounts, billing, patients
from tests.conftest import GraphQLClient, token_for

PATIENT_NUMBER = 2
FIRST, LAST = "Wilhelmina", "Quoxbury-Zandt"
NATIONAL_ID = "QZ-55120-77"
EMAIL = "wilhelmina.quoxbury@example.org"
PHONE = "+49 30 5550 1987"
LINE1 = "Kranichweg 417"
BORN = date(1957, 3, 29)
PASSWORD = "a-long-enough-passphrase-1"
IDENTITY = (FIRST, LAST, NATIONAL_ID, EMAIL, PHONE, LINE1, BORN.isoformat())
NEEDLES = tuple({*IDENTITY, *(fold(v) for v in IDENTITY), fold(LAST).split("-")[1]})
"""Each identity string as given and as folded for search tokens ("quoxbury", "zandt")."""

ERASE = """
mutation($id: ID!, $reason: String!) {
  erasePatient(patientId: $id, reason: $reason) {
    id pseudonym status reason records completedAt patientId
  }
}"""


@pytest.fixture
async def demo(settings: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient, Any]]:
    from app import create_app

    seeded = settings.model_copy(
        update={
            "shms_seed_demo": True,
            "shms_demo_patients": 15,
            "shms_cache_namespace": f"erasure-proof-{uuid.uuid4().hex[:10]}",
        }
    )
    app = create_app(seeded)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as http:
            yield app, http, seeded
        redis = app.state.redis
        async for key in redis.scan_iter(match=f"{seeded.shms_cache_namespace}*"):
            await redis.delete(key)


def _hits(text: str) -> set[str]:
    low = text.casefold()
    return {n for n in NEEDLES if n.casefold() in low}


async def mongo_hits() -> dict[str, set[str]]:
    """Every document of every collection, as Extended JSON, searched for the identity."""
    database = db.collection(Patient).database
    found: dict[str, set[str]] = {}
    for name in await database.list_collection_names():
        async for doc in database[name].find({}):
            hits = _hits(json_util.dumps(doc, ensure_ascii=False))
            if hits:
                found.setdefault(f"{name}/{doc.get('_id')}", set()).update(hits)
    return found


async def _values(redis: Any, key: bytes) -> list[bytes]:
    kind = (await redis.type(key)).decode()
    if kind == "string":
        return [await redis.get(key) or b""]
    if kind == "hash":
        pairs = await redis.hgetall(key)
        return [b for kv in pairs.items() for b in kv]
    if kind == "set":
        return list(await redis.smembers(key))
    if kind == "zset":
        return list(await redis.zrange(key, 0, -1))
    if kind == "list":
        return list(await redis.lrange(key, 0, -1))
    if kind == "stream":
        return [repr(entry).encode() for entry in await redis.xrange(key)]
    return []


async def redis_hits(redis: Any, settings: Any) -> dict[str, set[str]]:
    """Every key of the deployment (its namespace and its database's prefix), name and value."""
    found: dict[str, set[str]] = {}
    patterns = {f"*{settings.shms_cache_namespace}*", f"*{settings.mongodb_db}*"}
    for pattern in patterns:
        async for key in redis.scan_iter(match=pattern):
            blobs = [key, *await _values(redis, key)]
            hits = set().union(*(_hits(b.decode("utf-8", "ignore")) for b in blobs))
            if hits:
                found[key.decode()] = hits
    return found


async def sign_in(http: httpx.AsyncClient) -> httpx.Response:
    form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    return await http.post("/oauth/token", data=form)


def reconciles(account: BillingAccount) -> None:
    """Charges are covered by payments, write-offs and what is still due (insurer, patient)."""
    assert account.total_charged == sum(c.amount for c in account.charges)
    assert account.total_paid == sum(p.amount for p in account.payments)
    assert account.written_off == sum(w.amount for w in account.write_offs)
    assert account.total_charged == (
        account.total_paid + account.written_off + account.insurer_due + account.patient_due
    )


async def test_after_erasure_nothing_anywhere_holds_the_identity(demo: Any) -> None:
    app, http, settings = demo
    redis = app.state.redis
    patient_id = ids.patient_id(PATIENT_NUMBER)
    kinds = {
        "appointments", "outpatient_visits", "lab_results", "prescriptions", "billing_accounts"
    }  # fmt: skip
    database = db.collection(Patient).database
    for name in kinds:
        assert await database[name].count_documents({"patient_id": patient_id}), name

    # A distinctive identity, an account to sign in with, and a record read through the API.
    await patients.update_patient(
        patient_id,
        {
            "first_name": FIRST,
            "last_name": LAST,
            "national_id": NATIONAL_ID,
            "date_of_birth": BORN,
            "contact": Contact(
                email=EMAIL,
                phone=PHONE,
                address=Address(line1=LINE1, city="Berlin", postal_code="10115", country="DE"),
            ),
        },
    )
    await accounts.create_account(
        EMAIL, PASSWORD, [Role.PATIENT], patient_id=patient_id, display_name=f"{FIRST} {LAST}"
    )
    signed_in = await sign_in(http)
    assert signed_in.status_code == 200, signed_in.text
    own = GraphQLClient(http, signed_in.json()["access_token"])
    me = await own.data(
        "query($id: ID!) { patient(id: $id) { firstName lastName } }", id=str(patient_id)
    )
    assert me["patient"]["lastName"] == LAST
    exported = await http.get(f"/patients/{patient_id}/export", headers=own.headers)
    assert exported.status_code == 200 and LAST in exported.text
    # The scans look where the data is: the account's username is the e-mail address (and
    # wherever encryption at rest does not seal the identity, the scans find it there too).
    assert "accounts" in {k.split("/")[0] for k in await mongo_hits()}
    assert [k async for k in redis.scan_iter(match=f"{settings.shms_cache_namespace}*")]

    admin = GraphQLClient(http, token_for(app, roles=["admin"]))
    reason = f"Written request from {FIRST} {LAST} ({EMAIL}), 2024-05-02"

    # A legal hold refuses it, naming the hold; nothing changes.
    refused = await admin.error(ERASE, id=str(patient_id), reason=reason)
    assert refused["extensions"]["code"] == "CONFLICT"
    assert refused["extensions"]["reason"] == "LEGAL_HOLD"
    assert "open_balance" in {h["hold"] for h in refused["extensions"]["holds"]}
    assert (await Patient.get(patient_id)).last_name == LAST  # type: ignore[union-attr]

    # Settled, it goes ahead.
    account = await BillingAccount.find_one({"patient_id": patient_id})
    assert account is not None and account.insurer_due == 0
    if account.patient_due:
        assert account.id is not None
        await billing.record_payment(
            account.id,
            {"amount": account.patient_due, "method": "card", "currency": account.currency},
        )
    charges_before = len(account.charges)
    audited_before = await AuditEvent.find({"patient_ids": patient_id}).count()

    done = (await admin.data(ERASE, id=str(patient_id), reason=reason))["erasePatient"]
    assert done["status"] == "DONE" and done["pseudonym"].startswith("ERASED-")
    assert not _hits(done["reason"]) and "[erased]" in done["reason"]

    # Nothing, anywhere, names them.
    assert await mongo_hits() == {}
    assert await redis_hits(redis, settings) == {}

    # What the law keeps still adds up, under the pseudonym.
    patient = await Patient.get(patient_id)
    assert patient is not None and patient.last_name == done["pseudonym"]
    assert patient.erasure == "done" and patient.national_id is None
    kept = await BillingAccount.find_one({"patient_id": patient_id})
    assert kept is not None and len(kept.charges) == charges_before and kept.balance == 0
    reconciles(kept)
    assert await AuditEvent.find({"patient_ids": patient_id}).count() > audited_before
    erased = await AuditEvent.find(
        {"patient_ids": patient_id, "action": "delete", "outcome": "allowed"}
    ).to_list()
    assert len(erased) == 1 and not _hits(erased[0].model_dump_json())

    # They cannot sign in, and the token they held is refused.
    assert (await sign_in(http)).status_code in (400, 401)
    after = await own("query($id: ID!) { patient(id: $id) { firstName } }", id=str(patient_id))
    assert after["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    # A second call is a no-op answer: the same erasure, no new audit event.
    again = (await admin.data(ERASE, id=str(patient_id), reason="again"))["erasePatient"]
    assert again == done
    assert (
        await AuditEvent.find(
            {"patient_ids": patient_id, "action": "delete", "outcome": "allowed"}
        ).count()
        == 1
    )
