"""The published access matrix must be the policy the server enforces."""

from __future__ import annotations

from pathlib import Path

from auth.matrix import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "access-policy.md"


def test_access_matrix_document_is_current() -> None:
    assert DOC.read_text() == render(), "docs/access-policy.md is stale: run `make docs`"
