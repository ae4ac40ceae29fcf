"""Account tests: cheap password hashing, a TOTP clock the tests move, HTTP helpers."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pyotp
import pytest
from argon2 import PasswordHasher

from auth import passwords
from services import totp

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "DEFAULT_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


class Clock:
    """The time TOTP codes are checked at; ``step()`` moves to the next 30-second step."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now

    def step(self, steps: int = 1) -> None:
        self.now += totp.STEP_SECONDS * steps

    def code(self, secret: str, steps: int = 0) -> str:
        return pyotp.TOTP(secret).at(self.now + totp.STEP_SECONDS * steps)


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moving = Clock()
    monkeypatch.setattr(totp, "clock", moving)
    return moving


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def sign_in(
    http: httpx.AsyncClient, username: str, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    form = {"grant_type": "password", "username": username, "password": password, **extra}
    return await http.post("/oauth/token", data=form)


async def gql(http: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def ok(http: httpx.AsyncClient, token: str, query: str, **variables: Any) -> Any:
    body = await gql(http, token, query, **variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


async def code_of(http: httpx.AsyncClient, token: str, query: str, **variables: Any) -> str:
    """The ``extensions.code`` of the single error of a refused request."""
    body = await gql(http, token, query, **variables)
    assert body.get("errors"), body
    (error,) = body["errors"]
    code: str = error["extensions"]["code"]
    return code
