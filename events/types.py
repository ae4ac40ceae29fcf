"""The domain event every service write publishes, in one shape for every entity."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from auth.policy import REGISTRY
from models.base import Entity, utcnow


@dataclass(frozen=True)
class DomainEvent:
    entity: str  # the collection name, e.g. "appointments"
    id: str
    change: str  # "created", "updated", "cancelled", "rescheduled", "status_changed", ...
    refs: dict[str, str] = field(default_factory=dict)
    at: str = field(default_factory=lambda: utcnow().isoformat())
    version: int = 0  # the cache version the write produced (0 when the cache was unavailable)
    trace: str = ""  # the publisher's W3C traceparent while tracing is on (else left out)

    @classmethod
    def of(cls, doc: Entity, change: str, version: int = 0) -> DomainEvent:
        # The declaration's reference fields, so subscribers can filter without loading the row.
        declaration = REGISTRY.for_model(type(doc))
        names = declaration.refs if declaration is not None else ()
        refs = {
            name: str(value) for name in names if (value := getattr(doc, name, None)) is not None
        }
        return cls(doc.get_collection_name(), str(doc.id), change, refs, version=version)

    def to_json(self) -> str:
        data = asdict(self)
        if not self.trace:  # the message stays as it was while tracing is off
            del data["trace"]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> DomainEvent:
        data: dict[str, Any] = json.loads(raw)
        return cls(**data)

    @property
    def happened_at(self) -> datetime:
        return datetime.fromisoformat(self.at)
