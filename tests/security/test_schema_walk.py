"""The whole schema, walked: every field is classified and every path to data is guarded.

``schema.enforce`` refuses to build a schema with an undeclared field; these tests read what it
did to the schema that serves, so a resolver that forgets a check cannot exist unnoticed.
"""

import pytest
import strawberry
from graphql import GraphQLObjectType

from api.schema import schema
from auth.policy import REGISTRY, ROW
from schema.enforce import (
    CALLER,
    DeclarationError,
    _metadata,
    enforce,
    guarded_labels,
    returns,
    walk,
)

GRAPHQL = schema._schema
ROOTS = {"Query", "Mutation", "Subscription"}


def test_every_field_of_a_declared_type_is_classified() -> None:
    unclassified = [
        f"{type_name}.{name}"
        for type_name, name, _ in walk(GRAPHQL)
        if (d := REGISTRY.for_type(type_name)) is not None and d.group_of(name) is None
    ]
    assert unclassified == []


def test_every_guarded_group_is_enforced_by_the_schema() -> None:
    missing = [
        f"{type_name}.{name}"
        for type_name, name, field in walk(GRAPHQL)
        if (d := REGISTRY.for_type(type_name)) is not None
        and (d.group_of(name) or ROW) != ROW
        and "group" not in guarded_labels(field)
    ]
    assert missing == []


def test_every_path_to_declared_rows_is_row_checked() -> None:
    """Lists, connections and nested relations of declared types, at any depth (mutation
    answers aside: a writer sees what they wrote, and their fields are still checked)."""
    unchecked = [
        f"{type_name}.{name}"
        for type_name, name, field in walk(GRAPHQL)
        if type_name not in ("Mutation", "Subscription")
        and returns(field, GRAPHQL) is not None
        and "rows" not in guarded_labels(field)
    ]
    assert unchecked == []


def test_patient_linked_lists_are_scoped() -> None:
    patient_kinds = {d.kind for d in REGISTRY if d.patient_data}
    lists = [
        (type_name, name, field)
        for type_name, name, field in walk(GRAPHQL)
        if (what := returns(field, GRAPHQL)) is not None
        and what.shape != "one"
        and patient_kinds & set(what.kinds)
        and type_name != "Mutation"
    ]
    assert lists, "the walk found the patient-linked lists"
    assert all("rows" in guarded_labels(f) for _, _, f in lists)


def test_every_root_field_declares_what_it_reads_or_does() -> None:
    undeclared: list[str] = []
    for root in ROOTS:
        gtype = GRAPHQL.get_type(root)
        assert isinstance(gtype, GraphQLObjectType)
        for name, field in gtype.fields.items():
            labels = guarded_labels(field) | frozenset(
                "caller" for _ in [1] if _metadata(field).get(CALLER)
            )
            wanted = {"Mutation": "action", "Query": "kind", "Subscription": "kind"}[root]
            if wanted not in labels and "caller" not in labels:
                undeclared.append(f"{root}.{name}")
    assert undeclared == []


def _schema_with(extra_field: bool, mutation_declared: bool) -> strawberry.Schema:
    @strawberry.type(name="Department")
    class Department:
        id: strawberry.ID
        name: str
        if extra_field:
            secret: str = "leak"

    @strawberry.type
    class Query:
        @strawberry.field
        def department(self) -> Department:
            return Department(id=strawberry.ID("1"), name="x")

    @strawberry.type
    class Mutation:
        @strawberry.mutation(  # type: ignore[untyped-decorator]
            metadata={"shms.acts": ("Department", "create")} if mutation_declared else {}
        )
        def touch(self) -> bool:
            return True

    return strawberry.Schema(query=Query, mutation=Mutation)


@pytest.mark.parametrize(
    ("extra_field", "mutation_declared", "problem"),
    [(True, True, "Department.secret"), (False, False, "Mutation.touch")],
)
def test_an_undeclared_field_stops_the_build(
    extra_field: bool, mutation_declared: bool, problem: str
) -> None:
    with pytest.raises(DeclarationError, match=problem):
        enforce(_schema_with(extra_field, mutation_declared)._schema)


def test_a_declared_schema_builds() -> None:
    enforce(_schema_with(False, True)._schema)
