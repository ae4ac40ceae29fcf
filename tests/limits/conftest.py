"""Helpers for the limits tests: a production app, and requests that count database work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

import db
from tests.conftest import token_for

MUTATION = 'mutation { createDepartment(input: {name: "X", code: "XX"}) { id } }'


async def measured(request: Any) -> tuple[httpx.Response, int]:
    """The response to an awaited request, and how many database operations it ran."""
    with db.operations.measure() as ops:
        response = await request
    return response, ops.total


@pytest.fixture
async def prod(settings: Any) -> AsyncIterator[Any]:
    """An HTTP client on an app running with ``SHMS_ENV=production``."""
    from app import create_app

    application = create_app(settings.model_copy(update={"shms_env": "production"}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://shms.test") as c:
            c.app = application  # type: ignore[attr-defined]
            yield c


def bearer(app: Any, *roles: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token_for(app, roles=list(roles))}"}
