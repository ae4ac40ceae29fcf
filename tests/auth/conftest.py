"""Auth test fixtures: a signing-key folder per test, and cheap password hashing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from auth import passwords


@pytest.fixture
def settings(settings: Any, tmp_path: Path) -> Any:
    """The suite's settings with the embedded signing key kept in this test's own folder."""
    return settings.model_copy(update={"shms_state_dir": str(tmp_path / "state")})


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters, so sign-in tests measure behaviour rather than hashing cost."""
    monkeypatch.setattr(
        passwords, "DEFAULT_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
