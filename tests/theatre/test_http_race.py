"""Issue 15's "Done when" for theatres, over real HTTP against one uvicorn process: a theatre
booked by 50 concurrent requests for overlapping times (different surgeons, anaesthetists and
patients, the same theatre): exactly one wins, 49 get ``CONFLICT`` naming the theatre, and the
reservations stay consistent (the theatre holds the winner's case and cleaning only; every
loser's people are free at that time)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth.tokens import TokenService
from config import Settings
from tests.conftest import TEST_REDIS_URL
from tests.e2e.servers import Server, servers

CARDIOLOGY = "6955b9000100000000000001"  # a demo department: hosts the test's theatres
REQUESTS = 50
START = datetime(2031, 9, 1, 10, 0, tzinfo=UTC)

BOOK = """mutation($input: BookSurgeryInput!) { bookSurgery(input: $input) { id } }"""
THEATRE = """mutation($input: CreateOperatingTheatreInput!) {
  createOperatingTheatre(input: $input) { id } }"""
DOCTOR = """mutation($input: CreateDoctorInput!) { createDoctor(input: $input) { id } }"""
PATIENT = """mutation($input: RegisterPatientInput!) { registerPatient(input: $input) { id } }"""
DAY = """query($theatreId: ID!, $day: Date!) { theatreSchedule(theatreId: $theatreId, day: $day) {
  blocks { kind startAt endAt booking { id } } } }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    state: Path = tmp_path_factory.mktemp("state")
    TokenService.from_settings(Settings(shms_state_dir=str(state)))
    run = uuid.uuid4().hex[:10]
    env = {
        "REDIS_URL": TEST_REDIS_URL,
        "MONGODB_DB": f"shms_e2e_{run}",
        "SHMS_CACHE_NAMESPACE": f"shms-e2e-{run}",
        "SHMS_STATE_DIR": str(state),
        "SHMS_DEMO_PATIENTS": "10",
        "SHMS_LOG_LEVEL": "WARNING",
        "SHMS_RATE_LIMIT_ENABLED": "false",
    }
    with servers(1, env) as started:
        yield started[0]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Api:
    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http, self.token = http, token

    async def body(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {self.token}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def id(self, query: str, field: str, **variables: Any) -> str:
        body = await self.body(query, **variables)
        assert "errors" not in body, body["errors"]
        return str(body["data"][field]["id"])


async def _sign_in(http: httpx.AsyncClient) -> str:
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "admin", "password": "demo-admin-pass"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def _people(api: Api, tag: str) -> list[dict[str, str]]:
    async def doctor(n: int, specialty: str) -> str:
        given = {
            "firstName": "Race",
            "lastName": f"{specialty[:5]}{n}",
            "departmentId": CARDIOLOGY,
            "specialty": specialty,
            "licenceNumber": f"RACE-{tag}-{specialty[:3]}-{n}",
        }
        return await api.id(DOCTOR, "createDoctor", input=given)

    async def patient(n: int) -> str:
        given = {"firstName": "Race", "lastName": f"Patient{n}", "dateOfBirth": "1970-01-01"}
        return await api.id(PATIENT, "registerPatient", input=given)

    surgeons = await asyncio.gather(*(doctor(n, "General Surgery") for n in range(REQUESTS)))
    anaesthetists = await asyncio.gather(*(doctor(n, "Anaesthesia") for n in range(REQUESTS)))
    patients = await asyncio.gather(*(patient(n) for n in range(REQUESTS)))
    return [
        {"surgeonId": s, "anaesthetistId": a, "patientId": p}
        for s, a, p in zip(surgeons, anaesthetists, patients, strict=True)
    ]


def _case(theatre: str, people: dict[str, str], start: datetime, minutes: int) -> dict[str, Any]:
    return {
        **people,
        "theatreId": theatre,
        "startAt": iso(start),
        "endAt": iso(start + timedelta(minutes=minutes)),
        "procedure": {"description": "Appendicectomy", "codes": ["0DTJ4ZZ"]},
        "priority": "URGENT",
    }


async def test_fifty_concurrent_bookings_of_one_theatre_one_wins(server: Server) -> None:
    async with server.client(timeout=60, connections=REQUESTS) as http:
        api = Api(http, await _sign_in(http))
        tag = uuid.uuid4().hex[:6]
        theatre = await api.id(
            THEATRE,
            "createOperatingTheatre",
            input={"name": "Race theatre", "code": f"R{tag.upper()}", "departmentId": CARDIOLOGY},
        )
        people = await _people(api, tag)
        # Every request overlaps every other: 60-minute cases starting within 45 minutes.
        answers = await asyncio.gather(
            *(
                api.body(BOOK, input=_case(theatre, p, START + timedelta(minutes=5 * (i % 10)), 60))
                for i, p in enumerate(people)
            )
        )
        won = [a for a in answers if "errors" not in a]
        lost = [a["errors"][0] for a in answers if "errors" in a]
        assert len(won) == 1, [e["message"] for e in lost][:3]
        assert len(lost) == REQUESTS - 1
        assert {e["extensions"]["code"] for e in lost} == {"CONFLICT"}
        assert all(e["extensions"]["clashes"] == ["theatre"] for e in lost)
        winner = won[0]["data"]["bookSurgery"]["id"]
        winner_at = people[answers.index(won[0])]

        # The theatre holds the winner's case and its cleaning, nothing else.
        day = await api.body(DAY, theatreId=theatre, day=START.date().isoformat())
        blocks = day["data"]["theatreSchedule"]["blocks"]
        assert [(b["kind"], b["booking"]["id"]) for b in blocks] == [
            ("CASE", winner),
            ("CLEANING", winner),
        ]
        # The losers hold nothing: each can be booked at that time in another theatre.
        spare = await api.id(
            THEATRE,
            "createOperatingTheatre",
            input={
                "name": "Spare theatre",
                "code": f"S{tag.upper()}",
                "departmentId": CARDIOLOGY,
                "turnoverMinutes": 0,
            },
        )
        losers = [p for p in people if p is not winner_at]
        for n, p in enumerate(losers[:6]):
            case = _case(spare, p, START + timedelta(minutes=10 * n), 10)
            body = await api.body(BOOK, input=case)
            assert "errors" not in body, body["errors"]
        # And the winner's theatre is free right after its cleaning.
        after_cleaning = datetime.fromisoformat(blocks[-1]["endAt"])
        body = await api.body(BOOK, input=_case(theatre, losers[-1], after_cleaning, 30))
        assert "errors" not in body, body["errors"]
