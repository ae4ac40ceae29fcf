"""Department lookups and changes."""

from __future__ import annotations

from functools import partial

import strawberry

from auth.policy import Action
from auth.policy import EntityKind as K
from resolvers.common import perform
from schema.common import Connection, connection, create_data, oid, update_data, view
from schema.context import Info
from schema.departments import CreateDepartmentInput, Department, UpdateDepartmentInput
from schema.enforce import acts
from services import departments


@strawberry.type
class DepartmentQuery:
    @strawberry.field(description="One department by id; null if there is none.")
    async def department(self, info: Info, id: strawberry.ID) -> Department | None:
        return await info.context.loaders.department_by_id.load(oid(id))

    @strawberry.field(description="Departments by name.")
    async def departments(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Department]:
        await info.context.access.scope(K.DEPARTMENT)
        page = await departments.list_departments(info.context.page(first, after))
        return connection(Department, page)


@strawberry.type
class DepartmentMutation:
    @strawberry.mutation(metadata=acts(K.DEPARTMENT, Action.CREATE))
    async def create_department(self, info: Info, input: CreateDepartmentInput) -> Department:
        data = create_data(input)
        run = partial(departments.create_department, data)
        return view(Department, await perform(info, K.DEPARTMENT, Action.CREATE, run, data))

    @strawberry.mutation(
        description="Change a department; the head must be one of its doctors.",
        metadata=acts(K.DEPARTMENT, Action.UPDATE),
    )
    async def update_department(
        self, info: Info, id: strawberry.ID, input: UpdateDepartmentInput
    ) -> Department:
        changes = update_data(input)
        run = partial(departments.update_department, oid(id), changes)
        return view(Department, await perform(info, K.DEPARTMENT, Action.UPDATE, run, changes))
