"""Password sign-in throttling over HTTP: guessing is slow, and nobody can lock an owner out.

Time is a fake clock the throttle reads (``auth.oauth.clock``): a test moves it instead of
sleeping. Throttle keys live under the test database's namespace, so tests never share counts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from auth import oauth, passwords
from auth.oauth import LoginThrottle, OAuthError
from auth.roles import Role
from config import Settings
from models.accounts import Account
from services import accounts
from tests.conftest import random_address

PASSWORD = "correct horse battery"
Client = Callable[..., httpx.AsyncClient]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "DEFAULT_HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(oauth, "clock", fake)
    return fake


@pytest.fixture
async def owner(app: Any) -> Account:
    return await accounts.create_account(f"owner-{uuid.uuid4().hex[:8]}", PASSWORD, [Role.ANALYST])


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    form = {"grant_type": "password", "username": username, "password": password}
    return await client.post("/oauth/token", data=form)


def wait_of(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "temporarily_unavailable"
    return int(response.headers["retry-after"])


async def test_the_accounts_wait_doubles_with_each_failure_up_to_the_cap(
    client_from: Client, owner: Account, settings: Settings, clock: FakeClock
) -> None:
    """Each guess comes from a new address: only the per-account wait applies."""
    for _ in range(settings.shms_login_backoff_after):
        assert (await sign_in(client_from(), owner.username, "guess")).status_code == 400
    waits = []
    for _ in range(8):
        wait = wait_of(await sign_in(client_from(), owner.username, "guess"))
        waits.append(wait)
        clock.advance(wait - 0.5)
        assert wait_of(await sign_in(client_from(), owner.username, "guess")) == 1  # not yet
        clock.advance(0.5)
        assert (await sign_in(client_from(), owner.username, "guess")).status_code == 400
    assert settings.shms_login_backoff_base_seconds == 1
    assert settings.shms_login_backoff_max_seconds == 60
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]


async def test_a_strangers_guesses_from_many_addresses_do_not_lock_the_owner_out(
    client_from: Client, owner: Account, settings: Settings, clock: FakeClock
) -> None:
    home = random_address()
    assert (await sign_in(client_from(home), owner.username, PASSWORD)).status_code == 200
    guesses = 0
    for _ in range(60):  # the stranger guesses as fast as they are let
        response = await sign_in(client_from(), owner.username, "guess")
        if response.status_code == 429:
            wait = wait_of(response)
            assert wait <= settings.shms_login_backoff_max_seconds
            clock.advance(wait)
        else:
            assert response.status_code == 400
            guesses += 1
    assert guesses < 60  # slowed down...
    # ...but the owner, from the address they signed in from before, does not wait at all,
    assert (await sign_in(client_from(home), owner.username, PASSWORD)).status_code == 200
    # and from a new address waits no longer than the cap.
    for _ in range(settings.shms_login_backoff_after):
        await sign_in(client_from(), owner.username, "guess")
    elsewhere = client_from()
    response = await sign_in(elsewhere, owner.username, PASSWORD)
    wait = wait_of(response)
    assert wait <= settings.shms_login_backoff_max_seconds
    clock.advance(wait)
    assert (await sign_in(elsewhere, owner.username, PASSWORD)).status_code == 200


async def test_one_address_is_refused_for_an_account_after_its_own_failures(
    client_from: Client, owner: Account, settings: Settings, clock: FakeClock
) -> None:
    attacker = random_address()
    for _ in range(settings.shms_login_max_failures):
        response = await sign_in(client_from(attacker), owner.username, "guess")
        if response.status_code == 429:  # the account's short wait: sit it out
            clock.advance(wait_of(response))
            response = await sign_in(client_from(attacker), owner.username, "guess")
        assert response.status_code == 400
    clock.advance(settings.shms_login_backoff_max_seconds)  # well past any account wait
    locked = await sign_in(client_from(attacker), owner.username, PASSWORD)
    wait = wait_of(locked)  # even the right password: this address used up its guesses
    assert settings.shms_login_backoff_max_seconds < wait <= settings.shms_login_window_seconds
    assert (await sign_in(client_from(), owner.username, PASSWORD)).status_code == 200
    clock.advance(wait)  # the window slides past the oldest failure
    assert (await sign_in(client_from(attacker), owner.username, PASSWORD)).status_code == 200


async def test_one_address_is_refused_after_failures_across_accounts(
    app: Any, client_from: Client, owner: Account, settings: Settings, clock: FakeClock
) -> None:
    sprayer = random_address()
    for n in range(settings.shms_login_address_max_failures):
        response = await sign_in(client_from(sprayer), f"nobody-{n}-{uuid.uuid4().hex}", "x")
        assert response.status_code == 400
    wait = wait_of(await sign_in(client_from(sprayer), owner.username, PASSWORD))
    assert settings.shms_login_backoff_max_seconds < wait <= settings.shms_login_window_seconds
    assert (await sign_in(client_from(), owner.username, PASSWORD)).status_code == 200


async def test_concurrent_guesses_from_many_addresses_get_one_check_per_wait(
    client_from: Client, owner: Account, settings: Settings, clock: FakeClock
) -> None:
    responses = await asyncio.gather(
        *(sign_in(client_from(), owner.username, f"guess {n}") for n in range(20))
    )
    codes = sorted(r.status_code for r in responses)
    # Below the threshold every guess is checked; at it, one takes the account's wait.
    assert codes == [400] * settings.shms_login_backoff_after + [429] * (
        20 - settings.shms_login_backoff_after
    )


async def test_concurrent_guesses_from_one_address_stop_at_its_limit(
    client_from: Client, owner: Account, settings: Settings, clock: FakeClock
) -> None:
    client = client_from()
    responses = await asyncio.gather(
        *(sign_in(client, owner.username, f"guess {n}") for n in range(20))
    )
    codes = [r.status_code for r in responses]
    assert codes.count(400) == settings.shms_login_max_failures
    assert codes.count(429) == 20 - settings.shms_login_max_failures


async def test_the_accounts_wait_is_taken_by_exactly_one_attempt_at_a_time(
    app: Any, settings: Settings, clock: FakeClock
) -> None:
    """The gate itself, without HTTP in between: 50 attempts at one instant, one gets it."""
    throttle = LoginThrottle(app.state.redis, settings, clock=clock)
    username = f"target-{uuid.uuid4().hex}"
    for _ in range(settings.shms_login_backoff_after - 1):
        await throttle.acquire(username, random_address())  # failures: their records stay

    async def attempt() -> int:
        try:
            await throttle.acquire(username, random_address())
        except OAuthError as error:
            return error.status
        return 200

    outcomes = await asyncio.gather(*(attempt() for _ in range(50)))
    assert sorted(outcomes) == [200] + [429] * 49
    clock.advance(throttle.delay(settings.shms_login_backoff_after))
    outcomes = await asyncio.gather(*(attempt() for _ in range(50)))
    assert sorted(outcomes) == [200] + [429] * 49
