"""Saved queries: save, list, show, delete, run by name, and the run log."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from auth.policy import Action
from auth.policy import EntityKind as K
from schema import saved_documents
from schema.common import Connection, connection
from schema.context import Info
from schema.enforce import acts, reads
from schema.limits import hardened_for
from schema.saved_queries import (
    SavedQuery,
    SavedQueryResult,
    SavedQueryRun,
    SaveQueryInput,
    shown,
    shown_page,
)
from services import saved_queries


@strawberry.type
class SavedQueryQuery:
    @strawberry.field(
        description="Saved queries the caller may run: those allowing one of their roles, "
        "their own, and every one for admins; by name."
    )
    async def saved_queries(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[SavedQuery]:
        await info.context.access.scope(K.SAVED_QUERY)
        principal = info.context.access.principal
        page = await saved_queries.list_visible(principal, info.context.page(first, after))
        return shown_page(page)

    @strawberry.field(description="One saved query with its history; `version` picks the text.")
    async def saved_query(self, info: Info, name: str, version: int | None = None) -> SavedQuery:
        found = await saved_queries.show(info.context.access.principal, name, version)
        return shown(found.query, found.version)

    @strawberry.field(
        description="Run a saved query as yourself (the access policy applies inside); "
        "`variables` override its defaults, `version` runs an older text.",
        metadata=reads(K.SAVED_QUERY),
    )
    async def run_saved_query(
        self,
        info: Info,
        name: str,
        variables: JSON | None = None,
        version: int | None = None,
    ) -> SavedQueryResult:
        result = await saved_documents.run(
            info.schema, info.context, name, version=version, variables=variables, via="graphql"
        )
        return SavedQueryResult.of(result)

    @strawberry.field(description="Runs of saved queries, newest first. Admin and compliance.")
    async def saved_query_runs(
        self,
        info: Info,
        name: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SavedQueryRun]:
        saved_queries.require_run_reader(info.context.access.principal)
        page = await saved_queries.list_runs(name, info.context.page(first, after))
        return connection(SavedQueryRun, page)


@strawberry.type
class SavedQueryMutation:
    @strawberry.mutation(
        description="Save a query under a name; saving a name again adds a version. Analysts "
        "and admins; a new version is for the author or an admin.",
        metadata=acts(K.SAVED_QUERY, Action.CREATE),
    )
    async def save_query(self, info: Info, input: SaveQueryInput) -> SavedQuery:
        access = info.context.access
        data = saved_queries.SaveInput(
            name=input.name,
            document=input.document,
            description=input.description,
            variable_defaults=input.variable_defaults,
            allowed_roles=input.allowed_roles,
        )
        settings = info.context.settings
        saved = await saved_documents.save(
            info.schema,
            access.principal,
            data,
            max_tokens=settings.shms_max_tokens,
            hide_suggestions=hardened_for(settings, info.context),
        )
        return shown(saved)

    @strawberry.mutation(
        description="Delete a saved query and its versions (the run log stays).",
        metadata=acts(K.SAVED_QUERY, Action.UPDATE),
    )
    async def delete_saved_query(self, info: Info, name: str) -> SavedQuery:
        access = info.context.access
        return shown(await saved_queries.delete(access.principal, name))
