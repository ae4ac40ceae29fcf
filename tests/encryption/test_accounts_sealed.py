"""Accounts at rest: a patient's account names the patient, and a TOTP secret read from a backup
would mint codes; both are sealed, and the compare-and-set steps of TOTP (enrol, confirm,
accept each step once, disable) work on the secrets' keyed hashes."""

from __future__ import annotations

from typing import Any

import pytest

import db
from crypto.fields import is_sealed
from demo import seed_demo
from models.accounts import Account
from services import totp


async def test_display_names_are_sealed_and_open_in_the_model(database: Any) -> None:
    await seed_demo(3)
    raws = await db.collection(Account).find({"display_name": {"$exists": True}}).to_list(None)
    assert raws and all(is_sealed(r["display_name"]) for r in raws)
    opened = await Account.find_all().to_list()
    assert any(a.display_name and " " in a.display_name for a in opened)  # "First Last"


async def test_totp_secrets_are_sealed_and_every_step_still_counts_once(
    database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_demo(1)
    account = await Account.find_one({"username": "doctor"})
    assert account is not None and account.id is not None
    enrolment = await totp.begin(account.id)
    raw = await db.collection(Account).find_one({"_id": account.id})
    assert raw is not None and is_sealed(raw["totp_pending_secret"]) and raw["totp_pending_key"]
    assert enrolment.secret not in repr(raw)

    step = int(totp.clock() // totp.STEP_SECONDS)
    await totp.confirm(account.id, totp.code_at(enrolment.secret, step))
    raw = await db.collection(Account).find_one({"_id": account.id})
    assert raw is not None and is_sealed(raw["totp_secret"]) and raw["totp_key"]
    assert "totp_pending_secret" not in raw and "totp_pending_key" not in raw
    assert enrolment.secret not in repr(raw)

    fresh = await Account.get(account.id)
    assert fresh is not None and fresh.totp_secret == enrolment.secret
    assert not await totp.check(fresh, totp.code_at(enrolment.secret, step))  # used to confirm
    assert await totp.check(fresh, totp.code_at(enrolment.secret, step + 1))
    assert not await totp.check(fresh, totp.code_at(enrolment.secret, step + 1))  # a replay

    later = (step + 2) * totp.STEP_SECONDS
    monkeypatch.setattr(totp, "clock", lambda: float(later))
    await totp.disable(account.id, totp.code_at(enrolment.secret, step + 2), required=False)
    raw = await db.collection(Account).find_one({"_id": account.id})
    assert raw is not None and "totp_secret" not in raw and "totp_key" not in raw
