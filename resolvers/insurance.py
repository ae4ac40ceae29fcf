"""Payers, insurance policies and the claim cycle over GraphQL, with a live claim feed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from functools import partial
from typing import Annotated, Any, TypeVar

import strawberry
from beanie import Document

from auth.policy import EntityKind as K
from events.types import DomainEvent
from models.billing import BillingAccount as AccountDoc
from models.billing import WriteOffKind
from models.insurance import Claim as ClaimDoc
from models.insurance import ClaimStatus, RemainderTo
from resolvers.common import perform
from resolvers.subscriptions import _Filter, _ref, _refuse_unfollowable, _visible
from schema.billing import BillingAccount
from schema.common import (
    Connection,
    IdempotencyKey,
    Long,
    connection,
    create_data,
    oid,
    view,
)
from schema.context import Info
from schema.enforce import acts, reads
from schema.insurance import (
    AdjudicateClaimInput,
    Claim,
    ClaimEvent,
    ClaimFilter,
    CreateClaimInput,
    CreateInsurancePolicyInput,
    CreatePayerInput,
    InsurancePolicy,
    InsurancePolicyFilter,
    Payer,
)
from services import insurance
from services.idempotency import idempotent

D = TypeVar("D", bound=Document)
CLAIMS = str(ClaimDoc.Settings.name)
FIELD = "claimChanged"
ExpectedVersion = Annotated[
    int | None,
    strawberry.argument(
        description="The claim's version as you last read it: CONFLICT if it moved since."
    ),
]


def _subject(info: Info) -> str | None:
    principal = info.context.principal
    return principal.subject if principal is not None else None


def _replay(
    info: Info, kind: str, action: str, fields: Iterable[str]
) -> Callable[[D, str], Awaitable[D]]:
    """A retry with a used key: the first answer, if the caller may still act; audited like
    the first write, noted as a replay."""

    async def answer(first: D, note: str) -> D:
        await info.context.access.require(kind, action, row=first)
        info.context.access.wrote(kind, first, action, fields, note=note)
        return first

    return answer


async def _claim_step(
    info: Info,
    operation: str,
    action: str,
    claim_id: strawberry.ID,
    key: str | None,
    payload: dict[str, Any],
    run: Callable[[], Awaitable[ClaimDoc]],
    fields: Iterable[str] = ("status",),
) -> Claim:
    """One transition of an existing claim: allowed on that row, run once per key."""
    id = oid(claim_id)

    async def checked() -> ClaimDoc:
        row = await insurance.get_claim(id)
        return await perform(info, K.CLAIM, action, run, fields, row=row)

    done = await idempotent(
        _subject(info),
        operation,
        key,
        {"id": id, **payload},
        ClaimDoc,
        checked,
        _replay(info, K.CLAIM, action, fields),
    )
    return view(Claim, done)


@strawberry.type
class InsuranceQuery:
    @strawberry.field(description="Payers, oldest first.")
    async def payers(
        self,
        info: Info,
        active: bool | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Payer]:
        await info.context.access.scope(K.PAYER)
        page = await insurance.list_payers(active, info.context.page(first, after))
        return connection(Payer, page)

    @strawberry.field(description="One payer by id; null if there is none.")
    async def payer(self, info: Info, id: strawberry.ID) -> Payer | None:
        return await info.context.loaders.payer_by_id.load(oid(id))

    @strawberry.field(description="Insurance policies, oldest first.")
    async def insurance_policies(
        self,
        info: Info,
        filter: InsurancePolicyFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[InsurancePolicy]:
        f = filter or InsurancePolicyFilter()
        found = insurance.PolicyFilter(
            patient_id=oid(f.patient_id, "filter.patientId") if f.patient_id else None,
            payer_id=oid(f.payer_id, "filter.payerId") if f.payer_id else None,
            active=f.active,
        )
        scope = await info.context.access.scope(K.INSURANCE_POLICY)
        page = await insurance.list_policies(found, info.context.page(first, after), scope)
        return connection(InsurancePolicy, page)

    @strawberry.field(description="One insurance policy by id; null if there is none.")
    async def insurance_policy(self, info: Info, id: strawberry.ID) -> InsurancePolicy | None:
        return await info.context.loaders.insurance_policy_by_id.load(oid(id))

    @strawberry.field(description="Claims, oldest first; submittedFrom/To is a half-open window.")
    async def claims(
        self,
        info: Info,
        filter: ClaimFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Claim]:
        f = filter or ClaimFilter()
        found = insurance.ClaimFilter(
            payer_id=oid(f.payer_id, "filter.payerId") if f.payer_id else None,
            patient_id=oid(f.patient_id, "filter.patientId") if f.patient_id else None,
            status=f.status,
            submitted_from=f.submitted_from,
            submitted_to=f.submitted_to,
        )
        scope = await info.context.access.scope(K.CLAIM)
        page = await insurance.list_claims(found, info.context.page(first, after), scope)
        return connection(Claim, page)

    @strawberry.field(description="One claim by id; null if there is none.")
    async def claim(self, info: Info, id: strawberry.ID) -> Claim | None:
        return await info.context.loaders.claim_by_id.load(oid(id))


@strawberry.type
class InsuranceMutation:
    @strawberry.mutation(description="Register a payer.", metadata=acts(K.PAYER, "create"))
    async def create_payer(self, info: Info, input: CreatePayerInput) -> Payer:
        data = create_data(input)
        run = partial(insurance.create_payer, data)
        return view(Payer, await perform(info, K.PAYER, "create", run, data))

    @strawberry.mutation(
        description="Activate or deactivate a payer; claims to an inactive one are refused.",
        metadata=acts(K.PAYER, "update"),
    )
    async def set_payer_active(self, info: Info, id: strawberry.ID, active: bool) -> Payer:
        payer = await insurance.get_payer(oid(id))
        run = partial(insurance.set_payer_active, oid(id), active)
        return view(Payer, await perform(info, K.PAYER, "update", run, ["active"], row=payer))

    @strawberry.mutation(
        description="Record a patient's policy with a payer.",
        metadata=acts(K.INSURANCE_POLICY, "create"),
    )
    async def create_insurance_policy(
        self, info: Info, input: CreateInsurancePolicyInput
    ) -> InsurancePolicy:
        data = create_data(input)
        if "copay_basis_points" in data:
            data["copay_bp"] = data.pop("copay_basis_points")
        run = partial(insurance.create_policy, data)
        created = await perform(
            info, K.INSURANCE_POLICY, "create", run, data, patient_id=data["patient_id"]
        )
        return view(InsurancePolicy, created)

    @strawberry.mutation(
        description="Cancel a policy: new claims on it are refused, open ones go on.",
        metadata=acts(K.INSURANCE_POLICY, "cancel"),
    )
    async def cancel_insurance_policy(self, info: Info, id: strawberry.ID) -> InsurancePolicy:
        policy = await insurance.get_policy(oid(id))
        run = partial(insurance.cancel_policy, oid(id))
        done = await perform(info, K.INSURANCE_POLICY, "cancel", run, ["status"], row=policy)
        return view(InsurancePolicy, done)

    @strawberry.mutation(
        description="A draft claim over charges of the policy's patient; their covered part "
        "becomes the insurer's due.",
        metadata=acts(K.CLAIM, "create"),
    )
    async def create_claim(
        self, info: Info, input: CreateClaimInput, idempotency_key: IdempotencyKey = None
    ) -> Claim:
        data = create_data(input)
        by = _subject(info)
        run = partial(
            insurance.create_claim, data["policy_id"], data["charge_ids"], data.get("notes"), by
        )
        created = await idempotent(
            by,
            "createClaim",
            idempotency_key,
            {"input": data},
            ClaimDoc,
            partial(perform, info, K.CLAIM, "create", run, ["lines"]),
            _replay(info, K.CLAIM, "create", ["lines"]),
        )
        return view(Claim, created)

    @strawberry.mutation(description="Send a draft claim.", metadata=acts(K.CLAIM, "submit"))
    async def submit_claim(
        self,
        info: Info,
        id: strawberry.ID,
        version: ExpectedVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Claim:
        run = partial(insurance.submit_claim, oid(id), version, _subject(info))
        payload = {"version": version}
        return await _claim_step(info, "submitClaim", "submit", id, idempotency_key, payload, run)

    @strawberry.mutation(
        description="Record the payer's decision on every line of a submitted claim.",
        metadata=acts(K.CLAIM, "adjudicate"),
    )
    async def adjudicate_claim(
        self,
        info: Info,
        id: strawberry.ID,
        input: AdjudicateClaimInput,
        version: ExpectedVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Claim:
        data = create_data(input)
        decisions = [
            insurance.LineDecision(
                charge_id=d["charge_id"],
                approved=d["approved"],
                adjustment=d.get("adjustment", 0),
                denial_reason=d.get("denial_reason"),
            )
            for d in data["lines"]
        ]
        run = partial(
            insurance.adjudicate_claim,
            oid(id),
            decisions,
            data.get("denial_reason"),
            version,
            _subject(info),
        )
        payload = {"input": data, "version": version}
        return await _claim_step(
            info, "adjudicateClaim", "adjudicate", id, idempotency_key, payload, run,
            ("status", "lines", "outcome"),
        )  # fmt: skip

    @strawberry.mutation(
        description="The payer paid (part of) what it approved on the claim.",
        metadata=acts(K.CLAIM, "recordInsurerPayment"),
    )
    async def record_insurer_payment(
        self,
        info: Info,
        id: strawberry.ID,
        amount: Long,
        reference: str | None = None,
        version: ExpectedVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Claim:
        run = partial(
            insurance.record_insurer_payment, oid(id), amount, reference, version, _subject(info)
        )
        payload = {"amount": amount, "reference": reference, "version": version}
        return await _claim_step(
            info, "recordInsurerPayment", "recordInsurerPayment", id, idempotency_key, payload,
            run, ("status", "insurerPaid"),
        )  # fmt: skip

    @strawberry.mutation(
        description="Appeal a denial or a partial approval.", metadata=acts(K.CLAIM, "appeal")
    )
    async def appeal_claim(
        self,
        info: Info,
        id: strawberry.ID,
        reason: str,
        version: ExpectedVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Claim:
        run = partial(insurance.appeal_claim, oid(id), reason, version, _subject(info))
        payload = {"reason": reason, "version": version}
        return await _claim_step(info, "appealClaim", "appeal", id, idempotency_key, payload, run)

    @strawberry.mutation(
        description="Send an appealed claim again for a new decision.",
        metadata=acts(K.CLAIM, "resubmit"),
    )
    async def resubmit_claim(
        self,
        info: Info,
        id: strawberry.ID,
        version: ExpectedVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Claim:
        run = partial(insurance.resubmit_claim, oid(id), version, _subject(info))
        payload = {"version": version}
        return await _claim_step(
            info, "resubmitClaim", "resubmit", id, idempotency_key, payload, run
        )

    @strawberry.mutation(
        description="Close a decided claim; what the payer approved and did not pay goes to "
        "the patient (default) or is written off.",
        metadata=acts(K.CLAIM, "close"),
    )
    async def close_claim(
        self,
        info: Info,
        id: strawberry.ID,
        remainder_to: RemainderTo = RemainderTo.PATIENT,
        version: ExpectedVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Claim:
        run = partial(insurance.close_claim, oid(id), remainder_to, version, _subject(info))
        payload = {"remainder_to": remainder_to, "version": version}
        return await _claim_step(info, "closeClaim", "close", id, idempotency_key, payload, run)

    @strawberry.mutation(
        description="Withdraw a claim not yet decided; its charges may be claimed again.",
        metadata=acts(K.CLAIM, "void"),
    )
    async def void_claim(
        self,
        info: Info,
        id: strawberry.ID,
        reason: str,
        version: ExpectedVersion = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Claim:
        run = partial(insurance.void_claim, oid(id), reason, version, _subject(info))
        payload = {"reason": reason, "version": version}
        return await _claim_step(info, "voidClaim", "void", id, idempotency_key, payload, run)

    @strawberry.mutation(
        description="Write off part of what the patient owes (bad debt, charity, small balance).",
        metadata=acts(K.BILLING_ACCOUNT, "writeOff"),
    )
    async def write_off(
        self,
        info: Info,
        account_id: strawberry.ID,
        amount: Long,
        kind: WriteOffKind,
        reason: str,
        idempotency_key: IdempotencyKey = None,
    ) -> BillingAccount:
        account = oid(account_id, "accountId")
        run = partial(insurance.write_off, account, amount, kind, reason)

        async def checked() -> AccountDoc:
            row = await insurance.get_account(account)
            return await perform(info, K.BILLING_ACCOUNT, "writeOff", run, ["writeOffs"], row=row)

        done = await idempotent(
            _subject(info),
            "writeOff",
            idempotency_key,
            {"account_id": account, "amount": amount, "kind": kind, "reason": reason},
            AccountDoc,
            checked,
            _replay(info, K.BILLING_ACCOUNT, "writeOff", ["writeOffs"]),
        )
        return view(BillingAccount, done)


@strawberry.type
class InsuranceSubscription:
    @strawberry.subscription(
        description="Claims created or moving through their cycle, optionally of one payer "
        "or reaching one status: billing dashboards.",
        metadata=reads(K.CLAIM),
    )
    async def claim_changed(
        self,
        info: Info,
        payer_id: strawberry.ID | None = None,
        status: ClaimStatus | None = None,
    ) -> AsyncGenerator[ClaimEvent, None]:
        payer = _ref(payer_id, "payerId")
        check = _Filter(info)
        if payer is not None:
            await check.load("payer_by_id", "Payer", payer)
        await _refuse_unfollowable(K.CLAIM, check)

        def wanted(event: DomainEvent) -> bool:
            return payer is None or event.refs.get("payer_id") == payer

        def keep(event: DomainEvent, row: Any) -> bool:
            return status is None or row.status == status

        events = _visible(info, FIELD, K.CLAIM, CLAIMS, "claim_by_id", "claim", wanted, keep)
        async with contextlib.aclosing(events):
            async for event, row, context in events:
                yield ClaimEvent(
                    change=event.change,
                    claim_id=strawberry.ID(event.id),
                    at=event.happened_at,
                    claim=view(Claim, row),
                    context=context,
                )
