"""TOTP two-factor sign-in (RFC 6238, through ``pyotp``): enrolment, checking a code, disabling.

Enrolment has two steps so a typo in the authenticator app cannot lock anyone out: ``begin``
stores a pending secret and returns it (and its ``otpauth://`` URI for a QR code); ``confirm``
turns it on once a code from it checks. A code is accepted in the current 30-second step or
one either side (clock drift), and each step at most once per account: accepting one is a
compare-and-set raising ``totp_last_step``, so a code seen over a shoulder or replayed from a
log is refused, even by two concurrent sign-ins.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyotp
from bson import ObjectId

from crypto.fields import blind
from errors import BadUserInput, Conflict
from models.accounts import ACCOUNT_SEALED, Account
from services.common import get_or_404, update

STEP_SECONDS = 30
DRIFT_STEPS = 1
ISSUER = "SHMS"
clock: Callable[[], float] = time.time
"""Where codes are checked against (tests replace it to move between time steps)."""


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str


def _is(field: str, secret: str) -> dict[str, str]:
    """A filter matching ``secret`` as stored: its keyed hash (the secret itself is sealed)."""
    return {field: blind(ACCOUNT_SEALED.collection, field, secret)}


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, interval=STEP_SECONDS).at(step * STEP_SECONDS)


def matching_step(secret: str, code: str) -> int | None:
    """The time step ``code`` belongs to, within the drift allowed; ``None`` if none."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    now = int(clock() // STEP_SECONDS)
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(code_at(secret, step), code):
            found = step  # no early exit: every candidate costs the same
    return found


async def begin(account_id: ObjectId) -> Enrolment:
    """A new pending secret (replacing an unconfirmed one); ``CONFLICT`` while TOTP is on."""
    account = await get_or_404(Account, account_id, "Account")
    if account.totp_secret is not None:
        raise Conflict("Two-factor sign-in is already on; disable it first", fields=["totp"])
    secret = pyotp.random_base32(32)
    await update(
        account, {"totp_pending_secret": secret}, "account", expected={"totp_secret": None}
    )
    uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=account.username, issuer_name=ISSUER
    )
    return Enrolment(secret, uri)


async def confirm(account_id: ObjectId, code: str) -> Account:
    """Turn TOTP on with a code from the pending secret; that code's step is then used up."""
    account = await get_or_404(Account, account_id, "Account")
    pending = account.totp_pending_secret
    if account.totp_secret is not None:
        raise Conflict("Two-factor sign-in is already on", fields=["totp"])
    if pending is None:
        raise Conflict("No enrolment is in progress; begin one first", fields=["totp"])
    step = matching_step(pending, code)
    if step is None:
        raise BadUserInput("code: is not the current code", {"code": "is not the current code"})
    return await update(
        account,
        {"totp_secret": pending, "totp_pending_secret": None, "totp_last_step": step},
        "account",
        expected={**_is("totp_pending_key", pending), "totp_secret": None},
    )


async def check(account: Account, code: str) -> bool:
    """Whether ``code`` is good for ``account`` now and was not used before (then it is)."""
    secret = account.totp_secret
    if secret is None:
        return False
    step = matching_step(secret, code)
    if step is None:
        return False
    try:
        await update(
            account,
            {"totp_last_step": step},
            "account",
            expected={**_is("totp_key", secret), "totp_last_step": {"$lt": step}},
        )
    except Conflict:
        return False  # this step (or a later one) was accepted already: a replay
    return True


async def disable(account_id: ObjectId, code: str, *, required: bool) -> Account:
    """Turn TOTP off with a current code; ``required``: the account's roles need it (refused)."""
    account = await get_or_404(Account, account_id, "Account")
    secret = account.totp_secret
    if secret is None:
        raise Conflict("Two-factor sign-in is not on", fields=["totp"])
    if required:
        raise Conflict("Your role requires two-factor sign-in", fields=["totp"])
    if not await check(account, code):
        raise BadUserInput("code: is not the current code", {"code": "is not the current code"})
    current = await get_or_404(Account, account_id, "Account")
    return await update(
        current,
        {"totp_secret": None, "totp_pending_secret": None, "totp_last_step": None},
        "account",
        expected=_is("totp_key", secret),
    )
