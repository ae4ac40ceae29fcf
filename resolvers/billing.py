"""Billing accounts, charges, payments and insurance."""

from __future__ import annotations

from functools import partial
from typing import Any

import strawberry

from auth.policy import Action
from auth.policy import EntityKind as K
from resolvers.common import perform
from schema.billing import (
    AddChargeInput,
    BillingAccount,
    InsuranceInput,
    OpenBillingAccountInput,
    RecordPaymentInput,
)
from schema.common import Connection, connection, create_data, oid, requested, requested_nodes, view
from schema.context import Info
from services import billing


def _with_money(data: dict[str, Any]) -> dict[str, Any]:
    """Flatten ``amount: {amount, currency}`` into the service's amount and currency."""
    money = data.pop("amount")
    return {**data, "amount": money["amount"], "currency": money["currency"]}


@strawberry.type
class BillingQuery:
    @strawberry.field(description="One billing account by id; null if there is none.")
    async def billing_account(self, info: Info, id: strawberry.ID) -> BillingAccount | None:
        found = await info.context.loaders.billing_account_by_id.load(oid(id))
        return await info.context.access.one(K.BILLING_ACCOUNT, found, requested(info))

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
        await access.page(K.BILLING_ACCOUNT, page, requested_nodes(info))
        return connection(BillingAccount, page)


@strawberry.type
class BillingMutation:
    @strawberry.mutation(description="Open the billing account of a patient (one per patient).")
    async def open_billing_account(
        self, info: Info, input: OpenBillingAccountInput
    ) -> BillingAccount:
        data = create_data(input)
        run = partial(
            billing.open_billing_account,
            data["patient_id"],
            data.get("currency", "EUR"),
            data.get("insurance"),
        )
        return view(
            BillingAccount, await perform(info, K.BILLING_ACCOUNT, Action.CREATE, run, data)
        )

    @strawberry.mutation(description="Bill a treatment, a device's use, or a manual item.")
    async def add_charge(
        self, info: Info, account_id: strawberry.ID, input: AddChargeInput
    ) -> BillingAccount:
        data = _with_money(create_data(input))
        run = partial(billing.add_charge, oid(account_id, "accountId"), data)
        charged = await perform(info, K.BILLING_ACCOUNT, Action.CHARGE, run, ["charges"])
        return view(BillingAccount, charged)

    @strawberry.mutation(description="Record a payment; it may not exceed what is owed.")
    async def record_payment(
        self, info: Info, account_id: strawberry.ID, input: RecordPaymentInput
    ) -> BillingAccount:
        data = _with_money(create_data(input))
        run = partial(billing.record_payment, oid(account_id, "accountId"), data)
        paid = await perform(info, K.BILLING_ACCOUNT, Action.PAY, run, ["payments"])
        return view(BillingAccount, paid)

    @strawberry.mutation(description="Set or (with null) remove the account's insurance.")
    async def update_insurance(
        self, info: Info, account_id: strawberry.ID, insurance: InsuranceInput | None
    ) -> BillingAccount:
        info.context.access.require_role(K.BILLING_ACCOUNT, Action.UPDATE)
        account = await billing.get_billing_account(oid(account_id, "accountId"))
        data = create_data(insurance) if insurance is not None else None
        run = partial(billing.update_insurance, oid(account_id, "accountId"), data)
        changed = await perform(
            info, K.BILLING_ACCOUNT, Action.UPDATE, run, ["insurance"], row=account
        )
        return view(BillingAccount, changed)
