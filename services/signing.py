"""What a signature covers, and its hash: shared by every signed clinical document."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical_json(content: Mapping[str, Any]) -> str:
    """Canonical JSON: sorted keys, no insignificant whitespace, UTF-8 (RFC 8785's subset for
    strings, integers and nulls, which is all a signed document holds)."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(text: str) -> str:
    """SHA-256 of ``text`` in UTF-8, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
