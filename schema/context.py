"""The per-request context every resolver receives: who asks, what they may see, the audit."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any

import strawberry

from auth.access import AccessControl
from auth.audit import AuditTrail
from auth.policy import EntityKind
from auth.principal import Principal
from config import Settings
from errors import Unauthenticated
from loaders import Loaders
from services.pagination import PageArgs, Query


@dataclass
class Context:
    settings: Settings
    request: Any = None
    principal: Principal | None = None
    auth_error: Unauthenticated | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    client_address: str | None = None
    connection_params: Any = None  # a WebSocket's connection_init payload
    query_cost: int = 0  # the operation's estimated cost, set by QueryLimits
    rate_headers: Any = field(default_factory=dict)  # RateLimit-* headers for the HTTP reply
    loaders: Loaders = field(init=False)
    audit: AuditTrail = field(init=False)
    access: AccessControl = field(init=False)

    def __post_init__(self) -> None:
        self.audit = AuditTrail(self.principal, self.request_id, self.client_address)
        self.loaders = Loaders(scope=self._scope)
        self.access = AccessControl(self.principal, self.loaders, self.audit, self.auth_error)

    def sign_in(self, principal: Principal) -> None:
        """Adopt the caller a WebSocket authenticated at ``connection_init``."""
        self.principal, self.auth_error = principal, None
        self.__post_init__()

    def for_event(self, operation: str | None = None) -> Context:
        """A copy for one subscription event: the same caller, but fresh loaders, access
        decisions and audit trail, so no event is served rows cached by an earlier one and
        each event's reads are audited (and flushed) on their own."""
        fresh = dataclasses.replace(self)  # __post_init__ builds the fresh parts
        fresh.audit.operation = operation
        return fresh

    async def _scope(self, kind: EntityKind) -> Query:
        return await self.access.scope(kind)

    def page(self, first: int | None, after: str | None) -> PageArgs:
        """Page arguments checked against the configured default and cap."""
        return PageArgs.of(
            first,
            after,
            default=self.settings.shms_default_page_size,
            cap=self.settings.shms_max_page_size,
        )


Info = strawberry.Info[Context, None]
