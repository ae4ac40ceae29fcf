"""Access enforced by the schema itself, from the declared entities (``auth.policy``).

``enforce`` runs once, on the built schema, and wraps resolvers so that no resolver has to
remember a check:

* every field of a declared type must be classified by its declaration (else the schema does
  not build); a field outside the row group is resolved only if the caller's grant on that group
  holds for that row (else ``null`` with ``FORBIDDEN``; masked groups show the last four
  characters);
* every field that returns rows of a declared type (one, a list or a connection, at any depth,
  under queries and subscription events alike) hands each row to the row policy: a single row the
  caller may not see is ``FORBIDDEN``, rows of a list or connection the caller may not see are
  dropped (and logged: lists are also scoped in their query, so this is a backstop), and what is
  returned is recorded in the audit trail;
* every root field declares what it reads: a declared return type says it, other fields say
  ``reads(kind)`` or ``about_caller()``; a caller no role of whom may read that kind is refused
  before the resolver runs, so a refused query touches no database;
* every mutation declares its ``(kind, action)`` with ``acts(...)``; the role check runs before
  the resolver, which then asks the row-level question (it needs the row) through
  ``resolvers.common.perform`` or ``access.require``.

Mutation answers are not row-checked (a writer sees what they wrote), but their fields are.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql import (
    GraphQLResolveInfo as _Info,
)
from strawberry.types.info import Info as _StrawberryInfo

from auth.access import mask, value_at
from auth.policy import REGISTRY, ROW, Access, Declaration, Kind
from schema.common import Connection, Edge

log = logging.getLogger(__name__)

Info = _Info[Any]
StrawberryInfo: Any = _StrawberryInfo

READS = "shms.reads"
ACTS = "shms.acts"
CALLER = "shms.caller"
GUARDED = "__shms_guarded__"
"""Set on every wrapped resolver: the schema-walk test reads it."""


def reads(kind: Kind) -> dict[str, Any]:
    """Metadata of a root field whose answer is not itself a declared type."""
    return {READS: kind}


def about_caller() -> dict[str, Any]:
    """Metadata of a root field that answers about the caller alone (``viewer``)."""
    return {CALLER: True}


def acts(kind: Kind, action: str) -> dict[str, Any]:
    """Metadata of a mutation: the policy action it performs."""
    return {ACTS: (kind, action)}


class DeclarationError(TypeError):
    """The schema has a field the declarations do not cover: it must not serve."""


@dataclass(frozen=True)
class Returns:
    """The declared rows a field returns: their kind (None: decided per row), and how."""

    kinds: tuple[Kind, ...]
    shape: str  # "one", "list" or "connection"


def _unwrap(t: Any) -> tuple[Any, bool]:
    listed = False
    while isinstance(t, (GraphQLNonNull, GraphQLList)):
        listed = listed or isinstance(t, GraphQLList)
        t = t.of_type
    return t, listed


def _declared(named: Any) -> tuple[Kind, ...]:
    names: list[str] = []
    if isinstance(named, GraphQLObjectType):
        names = [named.name]
    elif isinstance(named, GraphQLUnionType):
        names = [t.name for t in named.types]
    elif isinstance(named, GraphQLInterfaceType):
        names = [named.name]
    found = [d.kind for n in names if (d := REGISTRY.for_type(n)) is not None]
    return tuple(dict.fromkeys(found))


def returns(field: GraphQLField, schema: GraphQLSchema) -> Returns | None:
    named, listed = _unwrap(field.type)
    if isinstance(named, GraphQLInterfaceType):
        kinds = tuple(k for t in schema.get_possible_types(named) for k in _declared(t))
        return Returns(tuple(dict.fromkeys(kinds)), "list" if listed else "one") if kinds else None
    kinds = _declared(named)
    if kinds:
        return Returns(kinds, "list" if listed else "one")
    if isinstance(named, GraphQLObjectType) and "nodes" in named.fields and "edges" in named.fields:
        node, _ = _unwrap(named.fields["nodes"].type)
        inner = _declared(node)
        if isinstance(node, GraphQLInterfaceType):
            inner = tuple(k for t in schema.get_possible_types(node) for k in _declared(t))
        if inner:
            return Returns(inner, "connection")
    return None


# -- what the client asked for (for the audit) ---------------------------------------------


def _names(selection: SelectionSetNode | None, info: Info, out: set[str]) -> None:
    if selection is None:
        return
    for node in selection.selections:
        if isinstance(node, FieldNode):
            out.add(node.name.value)
        elif isinstance(node, InlineFragmentNode):
            _names(node.selection_set, info, out)
        elif isinstance(node, FragmentSpreadNode):
            fragment = info.fragments.get(node.name.value)
            if fragment is not None:
                _names(fragment.selection_set, info, out)


def _under(selection: SelectionSetNode | None, name: str, info: Info) -> list[SelectionSetNode]:
    found: list[SelectionSetNode] = []
    if selection is None:
        return found
    for node in selection.selections:
        if isinstance(node, FieldNode):
            if node.name.value == name and node.selection_set is not None:
                found.append(node.selection_set)
        elif isinstance(node, InlineFragmentNode):
            found += _under(node.selection_set, name, info)
        elif isinstance(node, FragmentSpreadNode):
            fragment = info.fragments.get(node.name.value)
            if fragment is not None:
                found += _under(fragment.selection_set, name, info)
    return found


def requested(info: Info, shape: str = "one") -> set[str]:
    """The fields asked for on the rows this field returns."""
    out: set[str] = set()
    for field_node in info.field_nodes:
        if shape != "connection":
            _names(field_node.selection_set, info, out)
            continue
        for nodes in _under(field_node.selection_set, "nodes", info):
            _names(nodes, info, out)
        for edges in _under(field_node.selection_set, "edges", info):
            for node in _under(edges, "node", info):
                _names(node, info, out)
    return out - {"__typename"}


# -- the wrappers ---------------------------------------------------------------------------

Resolver = Callable[..., Any]


async def _value(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


def _kind_of(row: Any, fallback: tuple[Kind, ...]) -> Kind | None:
    declaration = REGISTRY.for_model(type(row))
    if declaration is not None:
        return declaration.kind
    return fallback[0] if len(fallback) == 1 else None


async def _checked_rows(
    info: Info, rows: list[Any], kinds: tuple[Kind, ...], asked: set[str], where: str
) -> list[Any]:
    access = info.context.access
    kept: list[Any] = []
    by_kind: dict[Kind, list[Any]] = {}
    for row in rows:
        kind = _kind_of(row, kinds)
        if kind is None:
            log.error("a row of an undeclared type reached %s; withheld", where)
            continue
        by_kind.setdefault(kind, []).append(row)
    seen: dict[int, bool] = {}
    for kind, group in by_kind.items():
        for row, ok in zip(group, await access.visible(kind, group), strict=True):
            seen[id(row)] = ok
        visible = [row for row in group if seen[id(row)]]
        await access.audit_rows(kind, visible, asked)
    for row in rows:
        if seen.get(id(row)):
            kept.append(row)
    if len(kept) != len(rows):
        log.error(
            "%s returned %d rows outside the caller's scope; withheld", where, len(rows) - len(kept)
        )
    return kept


def _rows_guard(resolve: Resolver, what: Returns, where: str) -> Resolver:
    async def guarded(root: Any, info: Info, **args: Any) -> Any:
        result = resolve(root, info, **args)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            return None
        asked = requested(info, what.shape)
        if what.shape == "one":
            kind = _kind_of(result, what.kinds)
            if kind is None:
                log.error("a row of an undeclared type reached %s; withheld", where)
                return None
            access = info.context.access
            if access.relations_now(kind, result) is not None:
                return access.one_now(kind, result, asked)
            return await access.one(kind, result, asked)
        if what.shape == "list":
            return await _checked_rows(info, list(result), what.kinds, asked, where)
        if isinstance(result, Connection):
            nodes = list(result.nodes)
            kept = await _checked_rows(info, nodes, what.kinds, asked, where)
            if len(kept) == len(nodes):
                return result
            ids = {id(n) for n in kept}
            edges: list[Edge[Any]] = [e for e in result.edges if id(e.node) in ids]
            return Connection(
                edges=edges, nodes=kept, page_info=result.page_info, _count=result._count
            )
        return result

    return guarded


def _shown(result: Any, access: Access) -> Any:
    return mask(result) if access == Access.MASKED and isinstance(result, str) else result


async def _shown_later(result: Awaitable[Any], access: Access) -> Any:
    return _shown(await result, access)


def _group_guard(resolve: Resolver, declaration: Declaration, group: str) -> Resolver:
    """Decides the field's group before its resolver runs. Synchronous whenever the decision
    and the resolver are: an awaitable per field would make graphql-core schedule a task for
    every scalar of every row."""
    kind = declaration.kind

    async def decided_later(root: Any, info: Info, args: dict[str, Any]) -> Any:
        access = await info.context.access.field(kind, group, root, info.field_name)
        return _shown(await _value(resolve(root, info, **args)), access)

    def guarded(root: Any, info: Info, **args: Any) -> Any:
        access = info.context.access.field_now(kind, group, root, info.field_name)
        if access is None:
            return decided_later(root, info, args)
        result = resolve(root, info, **args)
        if inspect.isawaitable(result):
            return _shown_later(result, access)
        return _shown(result, access)

    return guarded


def _ids(value: Any, key: str = "") -> Iterator[tuple[str, ObjectId]]:
    """(argument name, ObjectId) for every id-looking argument, inputs included."""
    if isinstance(value, Mapping):
        for name, item in value.items():
            yield from _ids(item, str(name))
    elif (
        isinstance(value, str)
        and (key == "id" or key.endswith(("Id", "_id")))
        and ObjectId.is_valid(value)
    ):
        yield key, ObjectId(value)


async def named(info: Info, kind: Kind, args: Mapping[str, Any]) -> tuple[Any, Any]:
    """The record and patient a refused request named, for its audit event: its ``id``
    argument (and that record's patient, read for the audit only: the answer is the same
    either way) and any ``patientId`` it carried."""
    found = dict(_ids(args))
    entity_id = found.get("id")
    patient_id = found.get("patientId") or found.get("patient_id")
    declaration = REGISTRY.get(kind)
    if declaration is not None and declaration.patient == "id":
        patient_id = patient_id or entity_id
    if (
        entity_id is not None
        and patient_id is None
        and declaration is not None
        and declaration.patient is not None
        and declaration.model is not None
    ):
        loader = getattr(info.context.loaders, f"{declaration.name}_by_id")
        row = await loader.load(entity_id)
        patient_id = value_at(row, declaration.patient) if row is not None else None
    return entity_id, patient_id


def _kind_guard(resolve: Resolver, kind: Kind) -> Resolver:
    async def guarded(root: Any, info: Info, **args: Any) -> Any:
        access = info.context.access
        if not access.may_read_kind(kind):
            access.require_kind(kind, *(await named(info, kind, args)))
        return await _value(resolve(root, info, **args))

    return guarded


def _stream_guard(subscribe: Resolver, kind: Kind) -> Resolver:
    """The refusal arrives as the stream's first (and only) item, as any stream error does."""

    def guarded(root: Any, info: Info, **args: Any) -> Any:
        access = info.context.access
        if access.may_read_kind(kind):
            return subscribe(root, info, **args)

        async def refused() -> AsyncIterator[Any]:
            access.require_kind(kind)
            yield None  # pragma: no cover (require_kind raised)

        return refused()

    return guarded


def _action_guard(resolve: Resolver, kind: Kind, action: str) -> Resolver:
    async def guarded(root: Any, info: Info, **args: Any) -> Any:
        access = info.context.access
        if not access.may_ever(kind, action):
            access.require_role(kind, action, *(await named(info, kind, args)))
        return await _value(resolve(root, info, **args))

    return guarded


def _metadata(field: GraphQLField) -> Mapping[str, Any]:
    definition = (field.extensions or {}).get("strawberry-definition")
    return getattr(definition, "metadata", None) or {}


def _mark(fn: Resolver, *labels: str) -> Resolver:
    setattr(fn, GUARDED, frozenset(labels) | getattr(fn, GUARDED, frozenset()))
    return fn


def _default_resolve(field_name: str) -> Resolver:
    def resolve(root: Any, info: Info, **args: Any) -> Any:
        return getattr(root, field_name, None)

    return resolve


def _lean(field: GraphQLField) -> Resolver | None:
    """A direct call for a resolver that only reads its parent, and maybe ``info``.

    Strawberry runs every resolver through its argument conversion and extension chain, even
    one that takes no arguments; on a page of 100 rows that was a fifth of the request for
    fields like ``id`` and relations (``patient(root, info)``). Resolvers with arguments,
    extensions, permission classes or directives keep strawberry's path."""
    definition: Any = (field.extensions or {}).get("strawberry-definition")
    resolver = getattr(definition, "base_resolver", None)
    if (
        resolver is None
        or resolver.arguments
        or getattr(definition, "extensions", None)
        or getattr(definition, "permission_classes", None)
        or getattr(definition, "directives", None)
    ):
        return None
    func: Callable[..., Any] = getattr(resolver.wrapped_func, "__func__", resolver.wrapped_func)
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return None
    info_parameter = resolver.info_parameter
    parents = [p for p in parameters if info_parameter is None or p.name != info_parameter.name]
    if len(parents) != 1 or any(
        p.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        and p.kind != inspect.Parameter.POSITIONAL_ONLY
        for p in parameters
    ):
        return None  # not (parent) or (parent, info)
    if info_parameter is None:

        def resolve(root: Any, info: Any, **args: Any) -> Any:
            return func(root)

        return resolve
    parent, info_name = parents[0].name, info_parameter.name
    if parameters[0].kind == inspect.Parameter.POSITIONAL_ONLY:
        return None

    def with_info(root: Any, info: Any, **args: Any) -> Any:
        # The same Info strawberry would build: the resolver may use any of it.
        return func(**{parent: root, info_name: StrawberryInfo(_raw_info=info, _field=definition)})

    return with_info


def enforce(schema: GraphQLSchema) -> None:
    """Wrap the resolvers of ``schema`` as the module says; raise if a field is undeclared."""
    roots = {
        t.name: kind
        for t, kind in (
            (schema.query_type, "query"),
            (schema.mutation_type, "mutation"),
            (schema.subscription_type, "subscription"),
        )
        if t is not None
    }
    problems: list[str] = []
    for type_name, gtype in schema.type_map.items():
        if not isinstance(gtype, GraphQLObjectType) or type_name.startswith("__"):
            continue
        root = roots.get(type_name)
        declaration = REGISTRY.for_type(type_name)
        for name, field in gtype.fields.items():
            where = f"{type_name}.{name}"
            lean = _lean(field)
            if lean is not None:
                field.resolve = lean
            resolve = field.resolve or _default_resolve(name)
            meta = _metadata(field)
            what = returns(field, schema)
            labels: list[str] = []
            if root == "mutation":
                declared = meta.get(ACTS)
                if declared is None:
                    problems.append(f"{where}: a mutation must declare acts(kind, action)")
                    continue
                resolve = _action_guard(resolve, *declared)
                labels.append("action")
            elif root in ("query", "subscription"):
                kind = meta.get(READS) or (what.kinds[0] if what and len(what.kinds) == 1 else None)
                if kind is None and not meta.get(CALLER):
                    problems.append(
                        f"{where}: a root field must return a declared type or "
                        "declare reads(kind) / about_caller()"
                    )
                    continue
                if kind is not None and REGISTRY.get(kind) is None:
                    problems.append(f"{where}: reads undeclared kind {kind!r}")
                    continue
                if what is not None and root == "query":
                    resolve = _rows_guard(resolve, what, where)
                    labels.append("rows")
                if kind is not None:
                    if root == "subscription":
                        field.subscribe = _stream_guard(field.subscribe or resolve, kind)
                    else:
                        resolve = _kind_guard(resolve, kind)
                    labels.append("kind")
            else:
                if declaration is not None:
                    group = declaration.group_of(name)
                    if group is None:
                        problems.append(
                            f"{where}: not classified in {declaration.kind}'s declaration"
                        )
                        continue
                    if group != ROW:
                        labels.append("group")
                        if isinstance(field.type, GraphQLNonNull):
                            problems.append(
                                f"{where}: in group {group!r}, so it must be nullable (a "
                                "withheld value is null; non-null would null the whole row)"
                            )
                if what is not None:
                    resolve = _rows_guard(resolve, what, where)
                    labels.append("rows")
                if "group" in labels and declaration is not None:
                    resolve = _group_guard(resolve, declaration, declaration.group_of(name) or ROW)
            if labels:
                field.resolve = _mark(resolve, *labels)
    if problems:
        raise DeclarationError("Undeclared schema fields:\n  " + "\n  ".join(problems))


def guarded_labels(field: GraphQLField) -> frozenset[str]:
    return frozenset(getattr(field.resolve, GUARDED, frozenset()))


def walk(schema: GraphQLSchema) -> Iterable[tuple[str, str, GraphQLField]]:
    for type_name, gtype in schema.type_map.items():
        if isinstance(gtype, GraphQLObjectType) and not type_name.startswith("__"):
            for name, field in gtype.fields.items():
                yield type_name, name, field
