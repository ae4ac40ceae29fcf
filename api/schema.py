"""Builds the one GraphQL schema from every domain's root fields, then enforces the policy.

Root fields are found, not listed: every module of ``resolvers`` contributes its classes named
``...Query`` and ``...Mutation`` (and ``Subscription``), so a new module adds its own resolver
file. ``schema.enforce`` then wraps the built schema's resolvers from the declared entities; a
field the declarations do not cover stops the build.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext
from strawberry.types.base import has_object_definition

import resolvers
from observability.graphql import OperationObserved, trace_root_fields
from schema.common import SCALARS
from schema.enforce import enforce
from schema.errors import ErrorCodes
from schema.extensions import AuditFlush
from schema.limits import ParsedDocuments, QueryLimits
from schema.ratelimit import RateLimit
from schema.staff import AdminStaff, Doctor, Nurse
from schema.subscriptions import EventExecutor


def _roots() -> tuple[list[type[Any]], list[type[Any]], list[type[Any]]]:
    queries: list[type[Any]] = []
    mutations: list[type[Any]] = []
    subscriptions: list[type[Any]] = []
    for info in sorted(pkgutil.iter_modules(resolvers.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{resolvers.__name__}.{info.name}")
        for value in vars(module).values():
            if not (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and has_object_definition(value)
            ):
                continue
            if value.__name__.endswith("Query"):
                queries.append(value)
            elif value.__name__.endswith("Mutation"):
                mutations.append(value)
            elif value.__name__.endswith("Subscription"):
                subscriptions.append(value)
    return queries, mutations, subscriptions


class ShmsSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Logging happens in ErrorCodes, which knows expected errors from unexpected ones."""


def build_schema(**options: Any) -> ShmsSchema:
    queries, mutations, subscriptions = _roots()
    built = ShmsSchema(
        query=merge_types("Query", tuple(queries)),
        mutation=merge_types("Mutation", tuple(mutations)),
        subscription=merge_types("Subscription", tuple(subscriptions)),
        execution_context_class=EventExecutor,  # each subscription event on its own context
        types=[Doctor, Nurse, AdminStaff],
        # Limits inside ErrorCodes; parsed documents are reused by query text (bounded LRU).
        # OperationObserved first: its span holds the others; it reads the coded errors last.
        extensions=[
            OperationObserved,
            ErrorCodes,
            ParsedDocuments,
            QueryLimits,
            RateLimit,
            AuditFlush,
        ],
        config=StrawberryConfig(scalar_map=SCALARS),
        **options,
    )
    enforce(built._schema)
    trace_root_fields(built._schema)  # spans for root fields, while tracing is on
    return built


schema = build_schema()
