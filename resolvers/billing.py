"""Billing accounts, charges, payments and insurance."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any

import strawberry

from auth.policy import Action
from auth.policy import EntityKind as K
from models import BillingAccount as AccountDoc
from resolvers.common import perform
from schema.billing import (
    AddChargeInput,
    BillingAccount,
    InsuranceInput,
    OpenBillingAccountInput,
    RecordPaymentInput,
)
from schema.common import (
    Connection,
    IdempotencyKey,
    connection,
    create_data,
    oid,
    view,
)
from schema.context import Info
from schema.enforce import acts
from services import billing
from services.idempotency import idempotent


def _with_money(data: dict[str, Any]) -> dict[str, Any]:
    """Flatten ``amount: {amount, currency}`` into the service's amount and currency."""
    money = data.pop("amount")
    return {**data, "amount": money["amount"], "currency": money["currency"]}


def _subject(info: Info) -> str | None:
    principal = info.context.principal
    return principal.subject if principal is not None else None


def _replay(
    info: Info, action: Action, fields: Iterable[str]
) -> Callable[[AccountDoc, str], Awaitable[AccountDoc]]:
    """How a retry with a used idempotency key is answered: the account as the first call
    returned it, if the caller may still do ``action``; audited like that first write (same
    action and fields) with a note saying it is a replay."""

    async def answer(first: AccountDoc, note: str) -> AccountDoc:
        await info.context.access.require(K.BILLING_ACCOUNT, action)
        info.context.access.wrote(K.BILLING_ACCOUNT, first, action, fields, note=note)
        return first

    return answer


@strawberry.type
class BillingQuery:
    @strawberry.field(description="One billing account by id; null if there is none.")
    async def billing_account(self, info: Info, id: strawberry.ID) -> BillingAccount | None:
        return await info.context.loaders.billing_account_by_id.load(oid(id))

    @strawberry.field(description="Billing accounts, oldest first.")
    async def billing_accounts(
        self,
        info: Info,
        patient_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[BillingAccount]:
        access = info.context.access
        page = await billing.list_billing_accounts(
            oid(patient_id, "patientId") if patient_id else None,
            info.context.page(first, after),
            await access.scope(K.BILLING_ACCOUNT),
        )
        return connection(BillingAccount, page)


@strawberry.type
class BillingMutation:
    @strawberry.mutation(
        description="Open the billing account of a patient (one per patient).",
        metadata=acts(K.BILLING_ACCOUNT, Action.CREATE),
    )
    async def open_billing_account(
        self, info: Info, input: OpenBillingAccountInput, idempotency_key: IdempotencyKey = None
    ) -> BillingAccount:
        data = create_data(input)
        run = partial(
            billing.open_billing_account,
            data["patient_id"],
            data.get("currency", "EUR"),
            data.get("insurance"),
        )
        opened = await idempotent(
            _subject(info),
            "openBillingAccount",
            idempotency_key,
            {"input": data},
            AccountDoc,
            partial(perform, info, K.BILLING_ACCOUNT, Action.CREATE, run, data),
            _replay(info, Action.CREATE, data),
        )
        return view(BillingAccount, opened)

    @strawberry.mutation(
        description="Bill a treatment, a device's use, or a manual item.",
        metadata=acts(K.BILLING_ACCOUNT, Action.CHARGE),
    )
    async def add_charge(
        self,
        info: Info,
        account_id: strawberry.ID,
        input: AddChargeInput,
        idempotency_key: IdempotencyKey = None,
    ) -> BillingAccount:
        data = _with_money(create_data(input))
        account = oid(account_id, "accountId")
        run = partial(billing.add_charge, account, data)
        charged = await idempotent(
            _subject(info),
            "addCharge",
            idempotency_key,
            {"account_id": account, "input": data},
            AccountDoc,
            partial(perform, info, K.BILLING_ACCOUNT, Action.CHARGE, run, ["charges"]),
            _replay(info, Action.CHARGE, ["charges"]),
        )
        return view(BillingAccount, charged)

    @strawberry.mutation(
        description="Record a payment; it may not exceed what is owed.",
        metadata=acts(K.BILLING_ACCOUNT, Action.PAY),
    )
    async def record_payment(
        self,
        info: Info,
        account_id: strawberry.ID,
        input: RecordPaymentInput,
        idempotency_key: IdempotencyKey = None,
    ) -> BillingAccount:
        data = _with_money(create_data(input))
        account = oid(account_id, "accountId")
        run = partial(billing.record_payment, account, data)
        paid = await idempotent(
            _subject(info),
            "recordPayment",
            idempotency_key,
            {"account_id": account, "input": data},
            AccountDoc,
            partial(perform, info, K.BILLING_ACCOUNT, Action.PAY, run, ["payments"]),
            _replay(info, Action.PAY, ["payments"]),
        )
        return view(BillingAccount, paid)

    @strawberry.mutation(
        description="Set or (with null) remove the account's insurance.",
        metadata=acts(K.BILLING_ACCOUNT, Action.UPDATE),
    )
    async def update_insurance(
        self, info: Info, account_id: strawberry.ID, insurance: InsuranceInput | None
    ) -> BillingAccount:
        account = await billing.get_billing_account(oid(account_id, "accountId"))
        data = create_data(insurance) if insurance is not None else None
        run = partial(billing.update_insurance, oid(account_id, "accountId"), data)
        changed = await perform(
            info, K.BILLING_ACCOUNT, Action.UPDATE, run, ["insurance"], row=account
        )
        return view(BillingAccount, changed)
