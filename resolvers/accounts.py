"""Linking an external identity provider's subjects to SHMS accounts (admins only)."""

from __future__ import annotations

from functools import partial

import strawberry

from auth.policy import EntityKind as K
from models.accounts import LINK_IDENTITY, UNLINK_IDENTITY
from resolvers.common import perform
from schema.access import Role
from schema.accounts import Account
from schema.common import oid, view
from schema.context import Info
from schema.enforce import acts
from services import accounts


@strawberry.type
class AccountMutation:
    @strawberry.mutation(
        description=(
            "Let an external identity provider's subject (its token `sub`) sign in as an "
            "account, named by `accountId` or `username` (a new username creates an account "
            "that signs in only through the provider; `roles` required). `roles`, `patientId` "
            "and `staffId` given replace the account's. With a provider, these links are the "
            "only source of a caller's records: tokens cannot name them."
        ),
        metadata=acts(K.ACCOUNT, LINK_IDENTITY),
    )
    async def link_external_identity(
        self,
        info: Info,
        subject: str,
        account_id: strawberry.ID | None = None,
        username: str | None = None,
        roles: list[Role] | None = None,
        patient_id: strawberry.ID | None = None,
        staff_id: strawberry.ID | None = None,
        display_name: str | None = None,
    ) -> Account:
        given = {
            "external_subject": subject,
            "roles": roles,
            "patient_id": patient_id,
            "staff_id": staff_id,
            "display_name": display_name,
        }
        run = partial(
            accounts.link_identity,
            subject,
            account_id=oid(account_id, "accountId") if account_id is not None else None,
            username=username,
            roles=roles,
            patient_id=oid(patient_id, "patientId") if patient_id is not None else None,
            staff_id=oid(staff_id, "staffId") if staff_id is not None else None,
            display_name=display_name,
        )
        fields = [name for name, value in given.items() if value is not None]
        linked = await perform(info, K.ACCOUNT, LINK_IDENTITY, run, fields)
        return view(Account, linked)

    @strawberry.mutation(
        description="Stop an external subject signing in as its account (the account stays).",
        metadata=acts(K.ACCOUNT, UNLINK_IDENTITY),
    )
    async def unlink_external_identity(self, info: Info, subject: str) -> Account:
        run = partial(accounts.unlink_identity, subject)
        unlinked = await perform(info, K.ACCOUNT, UNLINK_IDENTITY, run, ["external_subject"])
        return view(Account, unlinked)
