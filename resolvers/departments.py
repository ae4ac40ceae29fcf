"""Department lookups and changes."""

from __future__ import annotations

import strawberry

from schema.common import Connection, connection, create_data, oid, update_data, view
from schema.context import Info
from schema.departments import CreateDepartmentInput, Department, UpdateDepartmentInput
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
        page = await departments.list_departments(info.context.page(first, after))
        return connection(Department, page)


@strawberry.type
class DepartmentMutation:
    @strawberry.mutation
    async def create_department(self, input: CreateDepartmentInput) -> Department:
        return view(Department, await departments.create_department(create_data(input)))

    @strawberry.mutation(description="Change a department; the head must be one of its doctors.")
    async def update_department(
        self, id: strawberry.ID, input: UpdateDepartmentInput
    ) -> Department:
        changed = await departments.update_department(oid(id), update_data(input))
        return view(Department, changed)
