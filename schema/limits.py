"""Limits on what one GraphQL document may ask for, enforced before any database work.

``QueryLimits`` (a schema extension) runs for every operation — HTTP and WebSocket alike:

* the parser stops after ``SHMS_MAX_TOKENS`` tokens (``TOKEN_LIMIT``);
* then, before graphql-core validates anything, ``check`` refuses documents deeper than
  ``SHMS_MAX_DEPTH`` (``DEPTH_LIMIT``), with more than ``SHMS_MAX_ALIASES`` aliases
  (``ALIAS_LIMIT``), more than ``SHMS_MAX_DIRECTIVES`` directives on one field
  (``DIRECTIVE_LIMIT``), more than ``SHMS_MAX_ROOT_FIELDS`` root fields in an operation
  (``ROOT_FIELD_LIMIT``), an estimated cost above the caller's ceiling (``COST_LIMIT``), or
  that would take more than ``SHMS_MAX_ANALYSIS_STEPS`` steps to check (``ANALYSIS_LIMIT``);
* in production, callers without the ``admin`` role get no introspection
  (``INTROSPECTION_DISABLED``) and no "Did you mean" suggestions in error messages.

Why before validation, and why counted: graphql-core's own rules (overlapping fields above all)
work quadratically on a document that repeats a field or fragment, and a naive expansion of
fragments is exponential. ``check`` measures every fragment once (dependencies first), so depth,
cost and root fields take steps linear in the document. It then predicts the comparisons
validation would make (pairs of fields answering to one response path, pairs of fragments
spread side by side) and charges them to the same ceiling of steps as its own work. A refused
document is never validated; one it lets through is cheap to validate. ``BodySizeLimit``
refuses request bodies over ``SHMS_MAX_BODY_BYTES`` with 413 before the body is parsed at all.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    parse,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from auth.roles import Role
from config import Settings, get_settings

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
_TOKEN_MESSAGE = re.compile(r"Document contains more than (\d+) tokens")
_INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})

PAIR_STEPS = 10
"""Steps charged per pair of same-named fields (or of fragments) that validation would compare:
graphql-core spends about ten times as long on one as ``check`` spends on one step."""

_HUGE = 10**18  # stands for an integer literal too long to be worth converting


def hardened_for(settings: Settings, context: Any) -> bool:
    """Production hides the schema (introspection, suggestions) from all but admins."""
    if settings.shms_env != "production":
        return False
    principal = getattr(context, "principal", None)
    return principal is None or Role.ADMIN not in principal.roles


def _error(message: str, node: Any, code: str, limit: str, value: int) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": code, "limit": limit, "max": value})


class _OutOfSteps(Exception):
    """The analysis spent its ceiling of steps: the document is refused unchecked."""


class _Steps:
    """The hard ceiling on ``check``'s own work (and on the validation work it predicts)."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = self.left = limit

    def spend(self, count: int = 1) -> None:
        self.left -= count
        if self.left < 0:
            raise _OutOfSteps

    @property
    def used(self) -> int:
        return self.limit - self.left


class _Size(NamedTuple):
    """A selection set measured with fragments expanded (introspection fields count for none
    but ``fields``, the number of fields it contributes to its own level)."""

    depth: int
    cost: int
    fields: int


_NOTHING = _Size(0, 0, 0)


class _Node:
    """One response name at one path, merged over the whole definition: how many fields
    answer to it there (validation compares them pairwise) and the names below it."""

    __slots__ = ("children", "count")

    def __init__(self) -> None:
        self.count = 0
        self.children: dict[str, _Node] = {}


def _whole(value: Any) -> int | None:
    """A variable's value as ``first`` would be coerced: a whole number, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _literal(text: str) -> int:
    # int() refuses numerals over 4300 digits, and any over 18 is beyond every ceiling anyway.
    return int(text) if len(text) <= 18 else _HUGE


def _field(parent: Any, name: str) -> GraphQLField | None:
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return parent.fields.get(name)
    return None


WEIGHT = "shms_weight"


def weighs(points: int) -> dict[str, Any]:
    """Metadata of a field whose work does not show in its selection (a whole record exported
    as one scalar, say): its answer costs ``points`` more, so the cost ceiling and the rate
    limiter see it."""
    return {WEIGHT: points}


def _weight(definition: GraphQLField | None) -> int:
    strawberry_field = (
        (definition.extensions or {}).get("strawberry-definition") if definition else None
    )
    metadata = getattr(strawberry_field, "metadata", None) or {}
    return int(metadata.get(WEIGHT, 0))


@dataclass
class Verdict:
    """What ``check`` found: the errors (none: go on to validation), the estimated cost of
    the operation that runs, and the steps the analysis took."""

    errors: list[GraphQLError]
    cost: int
    steps: int


@dataclass
class _Analysis:
    schema: GraphQLSchema
    document: DocumentNode
    settings: Settings
    variables: Mapping[str, Any]
    steps: _Steps
    operations: list[OperationDefinitionNode] = field(default_factory=list)
    fragments: dict[str, FragmentDefinitionNode] = field(default_factory=dict)
    duplicates: list[FragmentDefinitionNode] = field(default_factory=list)
    spreads: dict[int, list[str]] = field(default_factory=dict)  # by id() of the definition
    errors: list[GraphQLError] = field(default_factory=list)

    def __post_init__(self) -> None:
        for definition in self.document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                self.operations.append(definition)
            elif isinstance(definition, FragmentDefinitionNode):
                if definition.name.value in self.fragments:
                    self.duplicates.append(definition)  # invalid; validated all the same
                else:
                    self.fragments[definition.name.value] = definition

    # -- one pass over the text: aliases, directives, introspection, who spreads what --------

    def scan(self, hide_schema: bool) -> None:
        s = self.settings
        aliases = 0
        for definition in self.document.definitions:
            if not isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
                continue
            spreads = self.spreads.setdefault(id(definition), [])
            stack = [definition.selection_set]
            while stack:
                for selection in stack.pop().selections:
                    self.steps.spend()
                    if isinstance(selection, FragmentSpreadNode):
                        spreads.append(selection.name.value)
                        continue
                    if isinstance(selection, InlineFragmentNode):
                        stack.append(selection.selection_set)
                        continue
                    if not isinstance(selection, FieldNode):
                        continue
                    if selection.selection_set is not None:
                        stack.append(selection.selection_set)
                    if selection.alias is not None:
                        aliases += 1
                        if aliases == s.shms_max_aliases + 1:  # reported once per document
                            self.errors.append(
                                _error(
                                    f"The document uses more than {s.shms_max_aliases} aliases "
                                    "(SHMS_MAX_ALIASES).",
                                    selection,
                                    "ALIAS_LIMIT",
                                    "SHMS_MAX_ALIASES",
                                    s.shms_max_aliases,
                                )
                            )
                    directives = len(selection.directives or ())
                    if directives > s.shms_max_directives:
                        self.errors.append(
                            _error(
                                f"The field '{selection.name.value}' carries {directives} "
                                f"directives; at most {s.shms_max_directives} are allowed "
                                "(SHMS_MAX_DIRECTIVES).",
                                selection,
                                "DIRECTIVE_LIMIT",
                                "SHMS_MAX_DIRECTIVES",
                                s.shms_max_directives,
                            )
                        )
                    if hide_schema and selection.name.value in _INTROSPECTION_ROOTS:
                        self.errors.append(
                            GraphQLError(
                                "Introspection is disabled in production.",
                                selection,
                                extensions={"code": "INTROSPECTION_DISABLED"},
                            )
                        )

    def order(self) -> list[str]:
        """Fragment names, each after every fragment it spreads. A spread that closes a cycle
        (invalid: validation names it) is left out, so the walk ends."""
        state: dict[str, bool] = {}  # False: on the current path; True: placed
        placed: list[str] = []
        for start in self.fragments:
            if start in state:
                continue
            state[start] = False
            path = [(start, iter(self.spreads[id(self.fragments[start])]))]
            while path:
                name, pending = path[-1]
                following = next(pending, None)
                if following is None:
                    path.pop()
                    state[name] = True
                    placed.append(name)
                    continue
                self.steps.spend()
                if following in self.fragments and following not in state:
                    state[following] = False
                    path.append((following, iter(self.spreads[id(self.fragments[following])])))
        return placed

    # -- depth, cost and root fields of each operation ---------------------------------------

    def environment(self, operation: OperationDefinitionNode) -> dict[str, int | None]:
        """What each variable holds: the request's value, else the declared default."""
        env: dict[str, int | None] = {}
        for definition in operation.variable_definitions or ():
            self.steps.spend()
            name = definition.variable.name.value
            if name in self.variables:
                env[name] = _whole(self.variables[name])
            elif isinstance(definition.default_value, IntValueNode):
                env[name] = _literal(definition.default_value.value)
        return env

    def reachable(self, operation: OperationDefinitionNode) -> set[str]:
        found: set[str] = set()
        pending = list(self.spreads[id(operation)])
        while pending:
            self.steps.spend()
            name = pending.pop()
            if name in found or name not in self.fragments:
                continue
            found.add(name)
            pending.extend(self.spreads[id(self.fragments[name])])
        return found

    def first(self, node: FieldNode, definition: GraphQLField, env: Mapping[str, Any]) -> int:
        """What a field multiplies its selections by: its page size, if it takes ``first``."""
        if "first" not in definition.args:
            return 1
        value: int | None = None
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                value = _literal(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = env.get(argument.value.name.value)
        if value is None:
            value = _whole(definition.args["first"].default_value)
        if value is None or value < 1:
            value = self.settings.shms_default_page_size
        # A larger ``first`` is refused by the resolver (BAD_USER_INPUT) before it reads.
        return min(value, self.settings.shms_max_page_size)

    def size(
        self,
        selections: SelectionSetNode,
        parent: Any,
        env: Mapping[str, Any],
        known: Mapping[str, _Size],
    ) -> _Size:
        """A spread costs one lookup in ``known`` (fragments measured already), never a walk."""
        depth = cost = fields = 0
        for selection in selections.selections:
            self.steps.spend()
            if isinstance(selection, FieldNode):
                fields += 1
                name = selection.name.value
                if name.startswith("__"):
                    continue
                definition = _field(parent, name)
                inner = _NOTHING
                if selection.selection_set is not None:
                    child = get_named_type(definition.type) if definition is not None else None
                    inner = self.size(selection.selection_set, child, env, known)
                times = 1 if definition is None else self.first(selection, definition, env)
                depth = max(depth, 1 + inner.depth)
                cost += 1 + _weight(definition) + times * inner.cost
                continue
            if isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                within = parent if condition is None else self.schema.get_type(condition.name.value)
                inner = self.size(selection.selection_set, within, env, known)
            elif isinstance(selection, FragmentSpreadNode):
                inner = known.get(selection.name.value, _NOTHING)
            else:
                continue
            depth = max(depth, inner.depth)
            cost += inner.cost
            fields += inner.fields
        return _Size(depth, cost, fields)

    def measure(self, order: list[str], operation_name: str | None, roles: Iterable[str]) -> int:
        """Refuse operations over the depth, root-field or cost ceilings; the cost of the one
        that runs (the highest, when the request does not name one)."""
        s = self.settings
        ceiling = s.cost_ceiling(roles)
        roots = {
            "query": self.schema.query_type,
            "mutation": self.schema.mutation_type,
            "subscription": self.schema.subscription_type,
        }
        measured: dict[frozenset[tuple[str, int | None]], dict[str, _Size]] = {}
        chosen_cost = 0
        for operation in self.operations:
            env = self.environment(operation)
            reachable = self.reachable(operation)
            known = measured.setdefault(frozenset(env.items()), {})
            for name in order:  # dependencies first: a spread finds its fragment measured
                if name in reachable and name not in known:
                    fragment = self.fragments[name]
                    condition = self.schema.get_type(fragment.type_condition.name.value)
                    known[name] = self.size(fragment.selection_set, condition, env, known)
            size = self.size(operation.selection_set, roots[operation.operation.value], env, known)
            if operation_name is None or (
                operation.name is not None and operation.name.value == operation_name
            ):
                chosen_cost = max(chosen_cost, size.cost)
            if size.fields > s.shms_max_root_fields:
                self.errors.append(
                    _error(
                        f"The operation selects {size.fields} root fields; at most "
                        f"{s.shms_max_root_fields} are allowed (SHMS_MAX_ROOT_FIELDS).",
                        operation,
                        "ROOT_FIELD_LIMIT",
                        "SHMS_MAX_ROOT_FIELDS",
                        s.shms_max_root_fields,
                    )
                )
            if size.depth > s.shms_max_depth:
                self.errors.append(
                    _error(
                        f"The operation is {size.depth} levels deep; at most {s.shms_max_depth} "
                        "are allowed (SHMS_MAX_DEPTH).",
                        operation,
                        "DEPTH_LIMIT",
                        "SHMS_MAX_DEPTH",
                        s.shms_max_depth,
                    )
                )
            if size.cost > ceiling:
                self.errors.append(
                    _error(
                        f"The operation's estimated cost is {_shown(size.cost)}; at most "
                        f"{ceiling} is allowed for your role (SHMS_MAX_COST, "
                        "SHMS_MAX_COST_BY_ROLE; lists count once per row of `first`).",
                        operation,
                        "COST_LIMIT",
                        "SHMS_MAX_COST",
                        ceiling,
                    )
                )
        return chosen_cost

    # -- the work validation would do: pairs of fields answering to the same path -----------

    def comparisons(self, order: list[str]) -> None:
        """Charge the pairs validation's overlapping-fields rule would compare, as if every
        fragment were expanded where it is spread (its caches only ever do less). Each
        definition's fields are merged into one tree of response names; a spread merges the
        spread fragment's tree, built once."""
        trees: dict[str, dict[str, _Node]] = {}
        for name in order:
            trees[name] = self.tree(self.fragments[name].selection_set, trees)
            self.charge(trees[name])
        for definition in [*self.duplicates, *self.operations]:
            self.charge(self.tree(definition.selection_set, trees))

    def tree(
        self, selections: SelectionSetNode, trees: Mapping[str, dict[str, _Node]]
    ) -> dict[str, _Node]:
        level: dict[str, _Node] = {}
        self.grow(selections, level, trees)
        return level

    def grow(
        self,
        selections: SelectionSetNode,
        level: dict[str, _Node],
        trees: Mapping[str, dict[str, _Node]],
    ) -> None:
        spreads: dict[str, int] = {}
        self.collect(selections, level, trees, spreads)
        # Validation compares every two fragments spread at one level, and each with the fields.
        self.steps.spend(PAIR_STEPS * (len(spreads) * (len(spreads) + 1) // 2))
        for name, times in spreads.items():
            if name in trees:
                self.merge(trees[name], level, times)

    def collect(
        self,
        selections: SelectionSetNode,
        level: dict[str, _Node],
        trees: Mapping[str, dict[str, _Node]],
        spreads: dict[str, int],
    ) -> None:
        for selection in selections.selections:
            self.steps.spend()
            if isinstance(selection, FieldNode):
                key = (selection.alias or selection.name).value
                node = level.get(key)
                if node is None:
                    node = level[key] = _Node()
                node.count += 1
                if selection.selection_set is not None:
                    self.grow(selection.selection_set, node.children, trees)
            elif isinstance(selection, InlineFragmentNode):
                self.collect(selection.selection_set, level, trees, spreads)  # same level
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                spreads[name] = spreads.get(name, 0) + 1

    def merge(self, source: dict[str, _Node], into: dict[str, _Node], times: int) -> None:
        pending = [(source, into)]
        while pending:
            origin, target = pending.pop()
            for key, node in origin.items():
                self.steps.spend()
                copy = target.get(key)
                if copy is None:
                    copy = target[key] = _Node()
                copy.count += node.count * times
                if node.children:
                    pending.append((node.children, copy.children))

    def charge(self, level: dict[str, _Node]) -> None:
        pending = [level]
        while pending:
            for node in pending.pop().values():
                self.steps.spend(1 + PAIR_STEPS * (node.count * (node.count - 1) // 2))
                if node.children:
                    pending.append(node.children)


def _shown(number: int) -> str:
    """A cost as a message shows it: exact, or its order of magnitude when it is enormous."""
    if number < 10**12:
        return str(number)
    return f"about 10^{int(math.log10(number))}"


def check(
    schema: GraphQLSchema,
    document: DocumentNode,
    settings: Settings,
    *,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
    roles: Iterable[str] = (),
    hide_schema: bool = False,
) -> Verdict:
    """Every SHMS limit of a parsed, not yet validated document, in never more than
    ``SHMS_MAX_ANALYSIS_STEPS`` steps: a document that needs more is refused for that."""
    steps = _Steps(settings.shms_max_analysis_steps)
    analysis = _Analysis(schema, document, settings, variables or {}, steps)
    cost = 0
    try:
        analysis.scan(hide_schema)
        order = analysis.order()
        cost = analysis.measure(order, operation_name, roles)
        if not analysis.errors:  # a refused document is not validated: nothing to predict
            analysis.comparisons(order)
    except _OutOfSteps:
        limit = settings.shms_max_analysis_steps
        analysis.errors.append(
            _error(
                f"The document needs more than {limit} steps to check "
                "(SHMS_MAX_ANALYSIS_STEPS): it repeats fields or fragments, or nests them, "
                "too often.",
                None,
                "ANALYSIS_LIMIT",
                "SHMS_MAX_ANALYSIS_STEPS",
                limit,
            )
        )
    return Verdict(analysis.errors, cost, min(steps.used, steps.limit))


class _ValidDocuments:
    """Query texts graphql-core has already found valid against this schema (bounded LRU).

    Validation is a pure function of the text, the schema and the rules, and for a short
    document it cost more than the rest of the request. Only successes are kept: an invalid
    document is validated again each time, so its errors (which ``_finish`` edits per caller)
    are never shared, and the limits above still measure every document before this."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._seen: OrderedDict[tuple[str, Any], None] = OrderedDict()

    def known(self, query: str, rules: Any) -> bool:
        key = (query, tuple(rules))
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        return False

    def remember(self, query: str, rules: Any) -> None:
        self._seen[(query, tuple(rules))] = None
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)


_VALID = _ValidDocuments()


@lru_cache(maxsize=512)
def _parsed(query: str, max_tokens: int | None) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


class ParsedDocuments(SchemaExtension):
    """Reuses the parsed document of a query text seen before (bounded LRU, shared).

    Before ``QueryLimits``: the token cap is part of the key, and a text that does not parse
    is left to strawberry, which parses it again and reports the error the usual way (an
    exception here would escape its handling)."""

    def on_parse(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.query and ec.graphql_document is None:
            with suppress(GraphQLError):
                ec.graphql_document = _parsed(ec.query, ec.parse_options.get("max_tokens"))
        yield


class QueryLimits(SchemaExtension):
    """Caps parsing, then runs ``check`` between parsing and validation: a document it refuses
    is answered with its errors and never reaches graphql-core's validation."""

    settings: Settings
    hide_schema: bool

    def on_operation(self) -> Iterator[None]:
        ec = self.execution_context
        settings = getattr(ec.context, "settings", None)
        self.settings = settings if isinstance(settings, Settings) else get_settings()
        self.hide_schema = hardened_for(self.settings, ec.context)
        ec.parse_options["max_tokens"] = self.settings.shms_max_tokens
        yield
        errors = getattr(ec.result, "errors", None)
        if ec.result is None or not errors:
            return
        ec.result.errors = [_finish(error, self.hide_schema) for error in errors]

    def on_validate(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.graphql_document is not None and ec.pre_execution_errors is None:
            principal = getattr(ec.context, "principal", None)
            verdict = check(
                ec.schema._schema,
                ec.graphql_document,
                self.settings,
                variables=ec.variables,
                operation_name=ec.operation_name,
                roles=principal.roles if principal is not None else (),
                hide_schema=self.hide_schema,
            )
            if hasattr(ec.context, "query_cost"):
                ec.context.query_cost = verdict.cost  # for the rate limiter (schema/ratelimit.py)
            if verdict.errors:
                ec.pre_execution_errors = verdict.errors  # strawberry then skips validation
            elif ec.query is not None and _VALID.known(ec.query, ec.validation_rules):
                ec.pre_execution_errors = []  # validated before: strawberry skips it
        yield
        if (
            ec.query is not None
            and ec.graphql_document is not None
            and ec.pre_execution_errors == []
        ):
            _VALID.remember(ec.query, ec.validation_rules)
        _finish_all(ec.pre_execution_errors, self.hide_schema)

    def on_parse(self) -> Iterator[None]:
        yield
        _finish_all(self.execution_context.pre_execution_errors, self.hide_schema)

    def on_execute(self) -> Iterator[None]:
        yield  # variables are coerced here: their errors may suggest names too
        _finish_all(getattr(self.execution_context.result, "errors", None), self.hide_schema)


def _finish_all(errors: list[GraphQLError] | None, hide_schema: bool) -> None:
    """Finish errors where they arise, in place: over WebSocket a refused operation's errors
    are sent before ``on_operation`` resumes (strawberry holds these same error objects)."""
    for error in errors or ():
        finished = _finish(error, hide_schema)
        if finished is not error:
            error.message, error.extensions = finished.message, finished.extensions


def _finish(error: GraphQLError, hide_schema: bool) -> GraphQLError:
    message, extensions = error.message, dict(error.extensions or {})
    match = _TOKEN_MESSAGE.search(message)
    if match and not extensions.get("code"):
        message = (
            f"The document has more than {match.group(1)} tokens (SHMS_MAX_TOKENS); "
            "parsing stopped."
        )
        extensions.update(code="TOKEN_LIMIT", limit="SHMS_MAX_TOKENS", max=int(match.group(1)))
    if hide_schema:
        message = _SUGGESTION.sub("", message)
    if message == error.message and extensions == (error.extensions or {}):
        return error
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=extensions,
    )


class BodySizeLimit:
    """ASGI middleware: 413 for an HTTP body over ``max_bytes``, before anything parses it.

    A declared ``Content-Length`` over the limit is refused unread; otherwise the body is read
    (counting streamed chunks, so a missing or false length does not help) up to the limit and
    replayed to the wrapped app.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app will see the same
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        text = f"Request body exceeds {self.max_bytes} bytes (SHMS_MAX_BODY_BYTES).".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(text)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": text})
