"""The drug master over GraphQL: search by name prefix, create, update."""

from __future__ import annotations

from functools import partial

import strawberry

from auth.policy import Action
from auth.policy import EntityKind as K
from resolvers.common import perform
from schema.common import Connection, connection, create_data, oid, update_data, view
from schema.context import Info
from schema.drugs import ControlledSchedule, CreateDrugInput, Drug, DrugForm, UpdateDrugInput
from schema.enforce import acts
from services import drugs


@strawberry.type
class DrugsQuery:
    @strawberry.field
    async def drug(self, info: Info, id: strawberry.ID) -> Drug | None:
        return await info.context.loaders.drug_by_id.load(oid(id))

    @strawberry.field(
        description="The drug master by generic name. `search`: every word prefixes a generic "
        "or brand name word ('amox' finds amoxicillin); `atcCode`: a code or its start."
    )
    async def drugs(
        self,
        info: Info,
        search: str | None = None,
        active: bool | None = None,
        form: DrugForm | None = None,
        schedule: ControlledSchedule | None = None,
        controlled: bool | None = None,
        atc_code: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Drug]:
        query = drugs.drug_filter(
            search=search,
            active=active,
            form=form,
            schedule=schedule,
            controlled=controlled,
            atc_prefix=atc_code,
        )
        page = await drugs.list_drugs(
            query, info.context.page(first, after), await info.context.access.scope(K.DRUG)
        )
        return connection(Drug, page)


@strawberry.type
class DrugsMutation:
    @strawberry.mutation(
        description="Add a product to the drug master.",
        metadata=acts(K.DRUG, Action.CREATE),
    )
    async def create_drug(self, info: Info, input: CreateDrugInput) -> Drug:
        data = create_data(input)
        run = partial(drugs.create_drug, data)
        return view(Drug, await perform(info, K.DRUG, Action.CREATE, run, data))

    @strawberry.mutation(
        description="Change a product; past dispenses keep their price.",
        metadata=acts(K.DRUG, Action.UPDATE),
    )
    async def update_drug(self, info: Info, id: strawberry.ID, input: UpdateDrugInput) -> Drug:
        changes = update_data(input)
        row = await drugs.get_drug(oid(id))
        run = partial(drugs.update_drug, oid(id), changes)
        done = await perform(info, K.DRUG, Action.UPDATE, run, changes, row=row)
        return view(Drug, done)
