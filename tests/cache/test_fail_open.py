"""Redis going away mid-run: every request still answers correctly from MongoDB, the failure is
counted and logged once, and when Redis is back the cache is used again, without a restart and
without serving a copy that a write made during the outage should have replaced.

The app reaches Redis through a TCP proxy the test cuts and restores; the breaker's clock is a
fake one the test moves, so nothing here waits on wall-clock time.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from cache.documents import DocumentCache
from config import Settings
from models import Patient
from tests import factories
from tests.cache.helpers import Clock, assert_cached_as_stored, cost, stat
from tests.conftest import TEST_REDIS_URL

READ = """query($id: ID!) { patient(id: $id) { lastName appointments { totalCount } } }"""
UPDATE = """mutation($id: ID!, $input: UpdatePatientInput!) {
  updatePatient(id: $id, input: $input) { lastName } }"""
SCHEDULE = """mutation($input: ScheduleAppointmentInput!) {
  scheduleAppointment(input: $input) { patient { lastName } } }"""


class Proxy:
    """Forwards TCP connections to the test Redis until cut: then refuses new ones and drops
    the open ones, as a Redis that went away would."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.links):
            writer.transport.abort()
        self.links.clear()

    async def _link(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        try:
            upstream, to_upstream = await asyncio.open_connection(*self.target)
        except OSError:
            to_client.transport.abort()
            return
        self.links |= {to_client, to_upstream}
        await asyncio.gather(self._pipe(client, to_upstream), self._pipe(upstream, to_client))

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.transport.abort()
            self.links.discard(sink)


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    target = urlsplit(TEST_REDIS_URL)
    proxy = Proxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.open()
    try:
        yield proxy
    finally:
        await proxy.cut()


@pytest.fixture
def settings(settings: Settings, proxy: Proxy) -> Settings:
    """The app's Redis is the proxy; a short timeout keeps the failing calls short."""
    path = urlsplit(TEST_REDIS_URL).path
    return settings.model_copy(
        update={
            "redis_url": f"redis://127.0.0.1:{proxy.port}{path}",
            "shms_cache_timeout_seconds": 0.2,
        }
    )


async def test_redis_going_away_and_coming_back(
    gql: Any, cache: DocumentCache, proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    cache.clock = clock
    patient = await factories.patient(last_name="Before")
    doctor = await factories.doctor()
    assert (await gql.data(READ, id=str(patient.id)))["patient"]["lastName"] == "Before"
    await assert_cached_as_stored(cache, Patient, patient.id)

    await proxy.cut()
    errors = stat("patients", "error")
    with caplog.at_level(logging.WARNING, logger="cache.documents"):
        data = await gql.data(READ, id=str(patient.id))
        assert data["patient"] == {"lastName": "Before", "appointments": {"totalCount": 0}}
        updated = await gql.data(UPDATE, id=str(patient.id), input={"lastName": "After"})
        assert updated["updatePatient"] == {"lastName": "After"}
        start = factories.FUTURE.isoformat()
        booked = await gql.data(
            SCHEDULE,
            input={
                "patientId": str(patient.id),
                "doctorId": str(doctor.id),
                "startAt": start,
                "endAt": start.replace("09:00", "09:30"),
                "reason": "Check-up",
            },
        )
        assert booked["scheduleAppointment"] == {"patient": {"lastName": "After"}}
        data = await gql.data(READ, id=str(patient.id))
        assert data["patient"] == {"lastName": "After", "appointments": {"totalCount": 1}}
    assert stat("patients", "error") == errors + 1  # then the breaker skipped Redis
    assert ("patients", patient.id) in cache.pending
    ours = [r for r in caplog.records if r.name == "cache.documents"]
    assert len(ours) == 1 and "Redis cache unavailable" in ours[0].getMessage()
    assert not {"Before", "After"} & set(ours[0].getMessage().split())  # no patient data

    await proxy.open()
    with cost(cache) as skipped:  # the breaker is still open: Redis is not asked yet
        assert (await gql.data(READ, id=str(patient.id)))["patient"]["lastName"] == "After"
    assert skipped.round_trips == 0

    clock.now += cache.breaker.seconds
    hits = stat("patients", "hit")
    # The copy Redis still holds says "Before": the missed invalidation is replayed first.
    assert (await gql.data(READ, id=str(patient.id)))["patient"]["lastName"] == "After"
    assert not cache.pending and cache.breaker.closed
    with cost(cache) as warm:
        assert (await gql.data(READ, id=str(patient.id)))["patient"]["lastName"] == "After"
    assert stat("patients", "hit") > hits
    assert warm.round_trips == 1 and not warm.reads.get("patients")
    await assert_cached_as_stored(cache, Patient, patient.id)


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_no_redis_at_all_costs_one_attempt_per_breaker_window(
    database: Any, settings: Settings
) -> None:
    clock = Clock()
    nowhere = Redis(host="127.0.0.1", port=_unused_port())
    cache = DocumentCache(nowhere, settings.model_copy(update={"shms_cache_timeout_seconds": 0.2}))
    cache.clock = clock
    patient = await factories.patient()
    try:
        with cost(cache) as first:
            assert set(await cache.get_many(Patient, [patient.id])) == {patient.id}
        with cost(cache) as skipped:
            assert set(await cache.get_many(Patient, [patient.id])) == {patient.id}
            assert await cache.store(patient) == 0
        assert (first.round_trips, skipped.round_trips) == (1, 0)
        assert first.reads == skipped.reads == {"patients": 1}
        assert list(cache.pending) == [("patients", patient.id)]
        clock.now += cache.breaker.seconds
        with cost(cache) as retried:  # one more try (the replay), and still MongoDB
            assert set(await cache.get_many(Patient, [patient.id])) == {patient.id}
        assert retried.round_trips == 1 and not cache.breaker.closed
    finally:
        await nowhere.aclose()
