"""The per-request context every resolver receives."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import strawberry

from config import Settings
from loaders import Loaders
from services.pagination import PageArgs


@dataclass
class Context:
    settings: Settings
    request: Any = None
    loaders: Loaders = field(default_factory=Loaders)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def page(self, first: int | None, after: str | None) -> PageArgs:
        """Page arguments checked against the configured default and cap."""
        return PageArgs.of(
            first,
            after,
            default=self.settings.shms_default_page_size,
            cap=self.settings.shms_max_page_size,
        )


Info = strawberry.Info[Context, None]
