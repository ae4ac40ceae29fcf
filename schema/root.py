"""Builds the one GraphQL schema from every domain's root fields."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from resolvers.access import AccessMutation, AccessQuery
from resolvers.analytics import AnalyticsQuery
from resolvers.audit import AuditQuery
from resolvers.billing import BillingMutation, BillingQuery
from resolvers.calendars import CalendarMutation, CalendarQuery
from resolvers.clinical import ClinicalMutation, ClinicalQuery
from resolvers.departments import DepartmentMutation, DepartmentQuery
from resolvers.equipment import EquipmentMutation, EquipmentQuery
from resolvers.notifications import NotificationQuery
from resolvers.patients import PatientMutation, PatientQuery
from resolvers.saved_queries import SavedQueryMutation, SavedQueryQuery
from resolvers.scheduling import SchedulingMutation, SchedulingQuery
from resolvers.staff import StaffMutation, StaffQuery
from resolvers.subscriptions import Subscription
from schema.common import SCALARS
from schema.errors import ErrorCodes
from schema.extensions import AuditFlush
from schema.limits import QueryLimits
from schema.ratelimit import RateLimit
from schema.staff import AdminStaff, Doctor, Nurse
from schema.subscriptions import EventExecutor

DOMAIN_QUERIES = (
    AccessQuery,
    PatientQuery,
    DepartmentQuery,
    StaffQuery,
    SchedulingQuery,
    CalendarQuery,
    ClinicalQuery,
    EquipmentQuery,
    BillingQuery,
    AuditQuery,
    NotificationQuery,
    SavedQueryQuery,
    AnalyticsQuery,
)
DOMAIN_MUTATIONS = (
    AccessMutation,
    PatientMutation,
    DepartmentMutation,
    StaffMutation,
    SchedulingMutation,
    CalendarMutation,
    ClinicalMutation,
    EquipmentMutation,
    BillingMutation,
    SavedQueryMutation,
)
Query = merge_types("Query", DOMAIN_QUERIES)
Mutation = merge_types("Mutation", DOMAIN_MUTATIONS)


class ShmsSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Logging happens in ErrorCodes, which knows expected errors from unexpected ones."""


def build_schema(**options: Any) -> ShmsSchema:
    return ShmsSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        execution_context_class=EventExecutor,  # each subscription event on its own context
        types=[Doctor, Nurse, AdminStaff],
        extensions=[ErrorCodes, QueryLimits, RateLimit, AuditFlush],  # limits inside ErrorCodes
        config=StrawberryConfig(scalar_map=SCALARS),
        **options,
    )


schema = build_schema()
