"""Saved queries (named GraphQL documents analysts run by name) and the log of their runs.

A saved query keeps every version it ever had inside its one document, so appending a version
is a single atomic update (a compare-and-set on ``version``) and the unique ``name`` index is
the judge between two first saves of one name.
"""

from __future__ import annotations

from typing import Any

import pymongo
from beanie import Document
from pydantic import BaseModel, Field

from auth.policy import EVERYONE, A, Action, S, declare, each, grant, group, row
from auth.policy import Classification as Class
from auth.roles import Role
from models.base import Entity, UtcDatetime, utcnow


class SavedQueryVersion(BaseModel):
    """One saved text of a query; never changed once appended."""

    number: int = Field(ge=1)
    document: str
    description: str | None = None
    variable_defaults: dict[str, Any] = Field(default_factory=dict)
    allowed_roles: list[Role] = Field(default_factory=list)
    author: str = Field(description="The token subject that saved this version.")
    saved_at: UtcDatetime = Field(default_factory=utcnow)


class SavedQuery(Entity):
    name: str
    author: str = Field(
        description="Who first saved it: with admins, the only one who may change it."
    )
    version: int = Field(ge=1, description="The latest version's number (the CAS token).")
    allowed_roles: list[Role] = Field(
        default_factory=list, description="The latest version's roles, kept here for listing."
    )
    versions: list[SavedQueryVersion]

    @property
    def latest(self) -> SavedQueryVersion:
        return self.versions[-1]

    def at(self, number: int | None) -> SavedQueryVersion | None:
        """Version ``number`` (the latest when ``None``), or ``None`` if it never existed."""
        if number is None:
            return self.latest
        return next((v for v in self.versions if v.number == number), None)

    class Settings:
        name = "saved_queries"
        indexes = [
            pymongo.IndexModel("name", unique=True),
            pymongo.IndexModel([("allowed_roles", 1), ("name", 1)]),
            pymongo.IndexModel([("author", 1), ("name", 1)]),
        ]


class SavedQueryRun(Document):
    """One run of a saved query, allowed or not: who ran which version, when, and how it went.

    A log like the audit trail, so not an ``Entity``: runs are only ever inserted.
    """

    name: str
    version: int | None = None  # None when the name or version did not exist
    actor_subject: str
    actor_roles: list[str] = Field(default_factory=list)
    at: UtcDatetime = Field(default_factory=utcnow)
    duration_ms: float = 0.0
    outcome: str = Field(description='"ok", or the error codes of the run joined by commas.')
    via: str = Field(description='"graphql" or "http".')
    cached: bool = False
    variable_names: list[str] = Field(default_factory=list)
    # JSON text, not a sub-document: client keys may hold "$" or "." which MongoDB refuses.
    variables_json: str = "{}"
    request_id: str | None = None

    class Settings:
        name = "saved_query_runs"
        indexes = [
            pymongo.IndexModel([("name", 1), ("at", -1), ("_id", -1)]),
            pymongo.IndexModel([("at", -1), ("_id", -1)]),
        ]


# The run log names who ran what with which variables: admin and compliance only.
_RUN_READERS = each((Role.ADMIN, Role.COMPLIANCE), grant(A))

# Any role may be among a saved query's allowedRoles (services.saved_queries filters by them).
# A new version, or deleting one, is for its author (SELF) or an admin.
SAVED_QUERY = declare(
    "SavedQuery",
    SavedQuery,
    row(
        Class.OPERATIONAL,
        (
            "id",
            "name",
            "version",
            "latestVersion",
            "document",
            "description",
            "variableDefaults",
            "allowedRoles",
            "author",
            "createdAt",
            "updatedAt",
            "versions",
        ),
        each(EVERYONE, grant(A)),
    ),
    group("runs", Class.SECURITY, (), _RUN_READERS),
    actions={
        Action.CREATE: each((Role.ADMIN, Role.ANALYST), grant(A)),
        Action.UPDATE: {Role.ADMIN: grant(A), Role.ANALYST: grant(S)},
    },
    own=(("author", "subject"),),
)
SAVED_QUERY_RUN = declare(
    "SavedQueryRun",
    SavedQueryRun,
    row(
        Class.SECURITY,
        (
            "name",
            "version",
            "actorSubject",
            "actorRoles",
            "at",
            "durationMs",
            "outcome",
            "via",
            "cached",
            "variableNames",
            "id",
            "variables",
        ),
        _RUN_READERS,
    ),
    published=False,
)
