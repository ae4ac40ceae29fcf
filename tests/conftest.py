"""Fixtures: a fresh database per test (embedded, or a real MongoDB via SHMS_TEST_MONGODB_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

import db

TEST_MONGODB_URL = os.environ.get("SHMS_TEST_MONGODB_URL", "")


@pytest.fixture
async def database() -> AsyncIterator[Any]:
    """Beanie bound to an empty database; dropped afterwards when it is a real server."""
    client = db.create_client(TEST_MONGODB_URL)
    name = f"shms_test_{uuid.uuid4().hex[:12]}"
    database = await db.init_database(client, name)
    try:
        yield database
    finally:
        if TEST_MONGODB_URL:
            await client.drop_database(name)
        db.close_client(client)
