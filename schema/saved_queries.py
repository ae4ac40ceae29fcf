"""GraphQL types for saved queries, their versions, runs and the run log."""

from __future__ import annotations

import json
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from models import saved_queries as m
from schema.access import Role
from schema.common import Connection, Edge, PageInfo, view
from services.pagination import Page
from services.saved_queries import RunResult, Shown


@strawberry.type(description="One saved text of a query; versions are never changed.")
class SavedQueryVersion:
    number: int
    document: str
    description: str | None
    author: str = strawberry.field(description="The token subject that saved this version.")
    saved_at: datetime

    @strawberry.field(description="Values used for variables a run does not give.")
    @staticmethod
    def variable_defaults(root: strawberry.Parent[m.SavedQueryVersion]) -> JSON:
        return JSON(root.variable_defaults)

    @strawberry.field(description="Roles that may run it (admins and its author always may).")
    @staticmethod
    def allowed_roles(root: strawberry.Parent[m.SavedQueryVersion]) -> list[Role]:
        return list(root.allowed_roles)


@strawberry.type(description="A GraphQL query stored by name, run with `runSavedQuery`.")
class SavedQuery:
    @strawberry.field
    @staticmethod
    def id(root: strawberry.Parent[Shown]) -> strawberry.ID:
        return strawberry.ID(str(root.query.id))

    @strawberry.field
    @staticmethod
    def name(root: strawberry.Parent[Shown]) -> str:
        return root.query.name

    @strawberry.field(description="The version shown: the one asked for, else the latest.")
    @staticmethod
    def version(root: strawberry.Parent[Shown]) -> int:
        return root.version.number

    @strawberry.field(description="The newest version's number.")
    @staticmethod
    def latest_version(root: strawberry.Parent[Shown]) -> int:
        return root.query.version

    @strawberry.field
    @staticmethod
    def document(root: strawberry.Parent[Shown]) -> str:
        return root.version.document

    @strawberry.field
    @staticmethod
    def description(root: strawberry.Parent[Shown]) -> str | None:
        return root.version.description

    @strawberry.field(description="Values used for variables a run does not give.")
    @staticmethod
    def variable_defaults(root: strawberry.Parent[Shown]) -> JSON:
        return JSON(root.version.variable_defaults)

    @strawberry.field(description="Roles that may run it (admins and its author always may).")
    @staticmethod
    def allowed_roles(root: strawberry.Parent[Shown]) -> list[Role]:
        return list(root.query.allowed_roles)

    @strawberry.field(description="Who first saved it; with admins, who may change it.")
    @staticmethod
    def author(root: strawberry.Parent[Shown]) -> str:
        return root.query.author

    @strawberry.field
    @staticmethod
    def created_at(root: strawberry.Parent[Shown]) -> datetime:
        return root.query.created_at

    @strawberry.field
    @staticmethod
    def updated_at(root: strawberry.Parent[Shown]) -> datetime:
        return root.query.updated_at

    @strawberry.field(description="Every version, oldest first.")
    @staticmethod
    def versions(root: strawberry.Parent[Shown]) -> list[SavedQueryVersion]:
        return [view(SavedQueryVersion, v) for v in root.query.versions]


def shown(saved: m.SavedQuery, version: m.SavedQueryVersion | None = None) -> SavedQuery:
    """The GraphQL view of a saved query at ``version`` (its latest by default)."""
    return view(SavedQuery, Shown(saved, version or saved.latest))


def shown_page(page: Page[m.SavedQuery]) -> Connection[SavedQuery]:
    """A page of saved queries, each at its latest version."""
    nodes = [shown(doc) for doc in page.items]
    edges = [Edge(cursor=c, node=n) for c, n in zip(page.cursors, nodes, strict=True)]
    end = page.cursors[-1] if page.cursors else None
    info = PageInfo(has_next_page=page.has_next, end_cursor=end)
    return Connection(edges=edges, nodes=nodes, page_info=info, _count=page.count)


@strawberry.type(description="The answer of one run of a saved query.")
class SavedQueryResult:
    name: str
    version: int
    data: JSON | None = strawberry.field(description="The query's `data`, as it would answer.")
    errors: JSON = strawberry.field(
        description="The query's errors: a list of {message, path, extensions}; [] if none."
    )
    duration_ms: float
    cached: bool = strawberry.field(description="Served from the result cache.")
    ran_at: datetime

    @classmethod
    def of(cls, result: RunResult) -> SavedQueryResult:
        return cls(
            name=result.name,
            version=result.version,
            data=result.data,
            errors=JSON(result.errors),
            duration_ms=result.duration_ms,
            cached=result.cached,
            ran_at=result.ran_at,
        )


@strawberry.type(description="One run of a saved query, allowed or refused.")
class SavedQueryRun:
    name: str
    version: int | None = strawberry.field(description="Null when it named no version.")
    actor_subject: str
    actor_roles: list[str]
    at: datetime
    duration_ms: float
    outcome: str = strawberry.field(description='"ok", or the error codes joined by commas.')
    via: str = strawberry.field(description='"graphql" or "http".')
    cached: bool
    variable_names: list[str]

    @strawberry.field
    @staticmethod
    def id(root: strawberry.Parent[m.SavedQueryRun]) -> strawberry.ID:
        return strawberry.ID(str(root.id))

    @strawberry.field(description="The variables the run used (defaults included).")
    @staticmethod
    def variables(root: strawberry.Parent[m.SavedQueryRun]) -> JSON:
        return JSON(json.loads(root.variables_json))


@strawberry.input
class SaveQueryInput:
    name: str = strawberry.field(description="Lower-case slug: ^[a-z][a-z0-9_-]{1,63}$")
    document: str = strawberry.field(description="One GraphQL query operation.")
    description: str | None = None
    variable_defaults: JSON | None = strawberry.field(
        default=None, description="An object: declared variable -> default value."
    )
    allowed_roles: list[Role] = strawberry.field(
        description="Roles that may run it; admins and its author always may."
    )
