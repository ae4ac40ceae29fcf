"""Builds the one GraphQL schema from every domain's root fields."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from resolvers.clinical import ClinicalMutation, ClinicalQuery
from resolvers.patients import PatientMutation, PatientQuery
from resolvers.scheduling import SchedulingMutation, SchedulingQuery
from schema.errors import ErrorCodes
from schema.staff import AdminStaff, Doctor, Nurse

Query = merge_types("Query", (PatientQuery, SchedulingQuery, ClinicalQuery))
Mutation = merge_types("Mutation", (PatientMutation, SchedulingMutation, ClinicalMutation))


class ShmsSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Logging happens in ErrorCodes, which knows expected errors from unexpected ones."""


def build_schema(**options: Any) -> ShmsSchema:
    return ShmsSchema(
        query=Query,
        mutation=Mutation,
        types=[Doctor, Nurse, AdminStaff],
        extensions=[ErrorCodes],
        **options,
    )


schema = build_schema()
