"""Limits on what one GraphQL document may ask for, enforced before any database work.

``QueryLimits`` (a schema extension) runs for every operation — HTTP and WebSocket alike:

* the parser stops after ``SHMS_MAX_TOKENS`` tokens (``TOKEN_LIMIT``);
* a validation rule rejects documents deeper than ``SHMS_MAX_DEPTH`` (``DEPTH_LIMIT``), with
  more than ``SHMS_MAX_ALIASES`` aliases (``ALIAS_LIMIT``), more than ``SHMS_MAX_DIRECTIVES``
  directives on one field (``DIRECTIVE_LIMIT``), more than ``SHMS_MAX_ROOT_FIELDS`` root fields
  in an operation (``ROOT_FIELD_LIMIT``) or an estimated cost above ``SHMS_MAX_COST``
  (``COST_LIMIT``);
* in production, callers without the ``admin`` role get no introspection
  (``INTROSPECTION_DISABLED``) and no "Did you mean" suggestions in error messages.

Validation runs after parsing and before execution, so a rejected document reads nothing.
``BodySizeLimit`` refuses request bodies over ``SHMS_MAX_BODY_BYTES`` with 413 before the body
is parsed at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    VariableNode,
    get_named_type,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from auth.roles import Role
from config import Settings, get_settings

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
_TOKEN_MESSAGE = re.compile(r"Document contains more than (\d+) tokens")
_INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})


def hardened_for(settings: Settings, context: Any) -> bool:
    """Production hides the schema (introspection, suggestions) from all but admins."""
    if settings.shms_env != "production":
        return False
    principal = getattr(context, "principal", None)
    return principal is None or Role.ADMIN not in principal.roles


def _error(message: str, node: Any, code: str, limit: str, value: int) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": code, "limit": limit, "max": value})


class _Measure:
    """Depth and cost of one operation, following fragments (cycles are another rule's job)."""

    def __init__(
        self, rule: _LimitsRule, context: ValidationContext, variables: Mapping[str, Any]
    ) -> None:
        self.rule, self.context, self.variables = rule, context, variables
        self.settings = rule.settings

    def _fields(
        self, selections: SelectionSetNode, parent: Any, seen: frozenset[str]
    ) -> Iterator[tuple[FieldNode, Any]]:
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                yield selection, parent
            elif isinstance(selection, InlineFragmentNode):
                inner = parent
                if selection.type_condition is not None:
                    inner = self.context.schema.get_type(selection.type_condition.name.value)
                yield from self._fields(selection.selection_set, inner, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.context.get_fragment(name)
                if fragment is None or name in seen:
                    continue
                inner = self.context.schema.get_type(fragment.type_condition.name.value)
                yield from self._fields(fragment.selection_set, inner, seen | {name})

    def _first(self, node: FieldNode, definition: GraphQLField | None) -> int:
        """What a field multiplies its selections by: its page size, if it takes ``first``."""
        if definition is None or "first" not in definition.args:
            return 1
        value: Any = None
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            value = self.settings.shms_default_page_size
        # A larger ``first`` is refused by the resolver (BAD_USER_INPUT) before it reads.
        return min(value, self.settings.shms_max_page_size)

    def walk(
        self, selections: SelectionSetNode, parent: Any, seen: frozenset[str] = frozenset()
    ) -> tuple[int, int]:
        """(depth, cost) of a selection set; introspection fields count for neither."""
        depth = cost = 0
        for node, owner in self._fields(selections, parent, seen):
            if node.name.value.startswith("__"):
                continue
            definition = None
            if isinstance(owner, GraphQLObjectType | GraphQLInterfaceType):
                definition = owner.fields.get(node.name.value)
            inner_depth = inner_cost = 0
            if node.selection_set is not None:
                child = get_named_type(definition.type) if definition else None
                inner_depth, inner_cost = self.walk(node.selection_set, child, seen)
            depth = max(depth, 1 + inner_depth)
            cost += 1 + self._first(node, definition) * inner_cost
        return depth, cost


class _LimitsRule(ASTValidationRule):
    """Subclassed per request by ``QueryLimits`` with the settings and variables bound."""

    settings: Settings
    variables: Mapping[str, Any]
    hide_schema: bool
    aliases: int
    sink: Any  # the request context: receives ``query_cost`` of the operation that runs
    operation_name: str | None

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self.aliases = 0

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        s, context = self.settings, self.context
        assert isinstance(context, ValidationContext)
        root = {
            "query": context.schema.query_type,
            "mutation": context.schema.mutation_type,
            "subscription": context.schema.subscription_type,
        }[node.operation.value]
        measure = _Measure(self, context, self.variables)
        roots = sum(1 for _ in measure._fields(node.selection_set, root, frozenset()))
        if roots > s.shms_max_root_fields:
            self.report_error(
                _error(
                    f"The operation selects {roots} root fields; at most "
                    f"{s.shms_max_root_fields} are allowed (SHMS_MAX_ROOT_FIELDS).",
                    node,
                    "ROOT_FIELD_LIMIT",
                    "SHMS_MAX_ROOT_FIELDS",
                    s.shms_max_root_fields,
                )
            )
        depth, cost = measure.walk(node.selection_set, root)
        chosen = self.operation_name is None or (
            node.name is not None and node.name.value == self.operation_name
        )
        if chosen and hasattr(self.sink, "query_cost"):
            self.sink.query_cost = cost  # for the rate limiter (schema/ratelimit.py)
        if depth > s.shms_max_depth:
            self.report_error(
                _error(
                    f"The operation is {depth} levels deep; at most {s.shms_max_depth} are "
                    "allowed (SHMS_MAX_DEPTH).",
                    node,
                    "DEPTH_LIMIT",
                    "SHMS_MAX_DEPTH",
                    s.shms_max_depth,
                )
            )
        principal = getattr(self.sink, "principal", None)
        ceiling = s.cost_ceiling(principal.roles if principal is not None else ())
        if cost > ceiling:
            self.report_error(
                _error(
                    f"The operation's estimated cost is {cost}; at most {ceiling} is allowed "
                    "for your role (SHMS_MAX_COST, SHMS_MAX_COST_BY_ROLE; lists count once per "
                    "row of `first`).",
                    node,
                    "COST_LIMIT",
                    "SHMS_MAX_COST",
                    ceiling,
                )
            )

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        s = self.settings
        if node.alias is not None:
            self.aliases += 1
            if self.aliases == s.shms_max_aliases + 1:  # reported once per document
                self.report_error(
                    _error(
                        f"The document uses more than {s.shms_max_aliases} aliases "
                        "(SHMS_MAX_ALIASES).",
                        node,
                        "ALIAS_LIMIT",
                        "SHMS_MAX_ALIASES",
                        s.shms_max_aliases,
                    )
                )
        directives = len(node.directives or ())
        if directives > s.shms_max_directives:
            self.report_error(
                _error(
                    f"The field '{node.name.value}' carries {directives} directives; "
                    f"at most {s.shms_max_directives} are allowed (SHMS_MAX_DIRECTIVES).",
                    node,
                    "DIRECTIVE_LIMIT",
                    "SHMS_MAX_DIRECTIVES",
                    s.shms_max_directives,
                )
            )
        if self.hide_schema and node.name.value in _INTROSPECTION_ROOTS:
            self.report_error(
                GraphQLError(
                    "Introspection is disabled in production.",
                    node,
                    extensions={"code": "INTROSPECTION_DISABLED"},
                )
            )


class QueryLimits(SchemaExtension):
    """Binds the request's settings, variables and caller into the limits rule."""

    def on_operation(self) -> Iterator[None]:
        ec = self.execution_context
        settings = getattr(ec.context, "settings", None)
        if not isinstance(settings, Settings):
            settings = get_settings()
        hide_schema = hardened_for(settings, ec.context)
        ec.parse_options["max_tokens"] = settings.shms_max_tokens
        rule = type(
            "LimitsRule",
            (_LimitsRule,),
            {
                "settings": settings,
                "variables": ec.variables or {},
                "hide_schema": hide_schema,
                "sink": ec.context,
                "operation_name": ec.operation_name,
            },
        )
        ec.validation_rules = (*ec.validation_rules, rule)
        yield
        errors = getattr(ec.result, "errors", None)
        if ec.result is None or not errors:
            return
        ec.result.errors = [_finish(error, hide_schema) for error in errors]


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
