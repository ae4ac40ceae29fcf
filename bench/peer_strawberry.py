"""The reference peer of ``bench.peers``: plain Strawberry + Starlette + aiodataloader, from memory.

    .venv/bin/python -m bench.peer_strawberry --data documents.json --port 8001

What a team would otherwise write for the same page: the GraphQL shape of SHMS's nested
appointment read (``appointments(first:) { nodes { ... patient doctor { department } equipment
} }``), each relation resolved through a per-request DataLoader, the rows held in dictionaries,
no authentication, policy or audit. ``bench.peers`` writes ``--data`` from SHMS's own answer, so
both serve the same documents and their answers can be compared byte for byte.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import strawberry
import uvicorn
from aiodataloader import DataLoader
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.types import Info

Row = dict[str, Any]


@strawberry.enum
class AppointmentStatus(Enum):
    SCHEDULED = "SCHEDULED"
    CHECKED_IN = "CHECKED_IN"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    NO_SHOW = "NO_SHOW"


@dataclass
class Store:
    """The documents, by collection and id, as loaded at start-up."""

    appointments: list[Row] = field(default_factory=list)
    patients: dict[str, Row] = field(default_factory=dict)
    doctors: dict[str, Row] = field(default_factory=dict)
    departments: dict[str, Row] = field(default_factory=dict)
    equipment: dict[str, Row] = field(default_factory=dict)


class ById(DataLoader[str, Row | None]):
    """Rows of one collection by id, batched per tick as a database-backed loader would be."""

    def __init__(self, rows: Mapping[str, Row]) -> None:
        super().__init__()
        self.rows = rows

    async def batch_load_fn(self, keys: Sequence[str]) -> list[Row | None]:
        return [self.rows.get(k) for k in keys]


@dataclass
class Context:
    """Fresh loaders per request, so nothing is shared between requests but the store."""

    patients: ById
    doctors: ById
    departments: ById
    equipment: ById


PeerInfo = Info[Context, None]


@strawberry.type
class Department:
    id: strawberry.ID
    name: str


@strawberry.type
class Patient:
    id: strawberry.ID
    last_name: str


@strawberry.type
class MedicalEquipment:
    id: strawberry.ID
    serial_number: str


@strawberry.type
class Doctor:
    id: strawberry.ID
    last_name: str
    department_id: strawberry.Private[str]

    @strawberry.field
    async def department(self, info: PeerInfo) -> Department | None:
        row = await info.context.departments.load(self.department_id)
        return Department(id=strawberry.ID(row["id"]), name=row["name"]) if row else None


@strawberry.type
class Appointment:
    id: strawberry.ID
    start_at: datetime
    status: AppointmentStatus
    patient_id: strawberry.Private[str | None]
    doctor_id: strawberry.Private[str | None]
    equipment_id: strawberry.Private[str | None]

    @strawberry.field
    async def patient(self, info: PeerInfo) -> Patient | None:
        row = await _load(info.context.patients, self.patient_id)
        return Patient(id=strawberry.ID(row["id"]), last_name=row["lastName"]) if row else None

    @strawberry.field
    async def doctor(self, info: PeerInfo) -> Doctor | None:
        row = await _load(info.context.doctors, self.doctor_id)
        if row is None:
            return None
        return Doctor(
            id=strawberry.ID(row["id"]),
            last_name=row["lastName"],
            department_id=row["departmentId"],
        )

    @strawberry.field
    async def equipment(self, info: PeerInfo) -> MedicalEquipment | None:
        row = await _load(info.context.equipment, self.equipment_id)
        if row is None:
            return None
        return MedicalEquipment(id=strawberry.ID(row["id"]), serial_number=row["serialNumber"])


async def _load(loader: ById, key: str | None) -> Row | None:
    return None if key is None else await loader.load(key)


@strawberry.type
class AppointmentConnection:
    nodes: list[Appointment]


def _appointment(row: Row) -> Appointment:
    return Appointment(
        id=strawberry.ID(row["id"]),
        start_at=datetime.fromisoformat(row["startAt"]),
        status=AppointmentStatus(row["status"]),
        patient_id=row["patientId"],
        doctor_id=row["doctorId"],
        equipment_id=row["equipmentId"],
    )


STORE = Store()


@strawberry.type
class Query:
    @strawberry.field
    def appointments(self, first: int | None = None) -> AppointmentConnection:
        """By start time, as stored; ``first`` defaults to 20 like SHMS's page size."""
        rows = STORE.appointments[: 20 if first is None else first]
        return AppointmentConnection(nodes=[_appointment(r) for r in rows])


class PeerGraphQL(GraphQL[Context, None]):
    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        return Context(
            patients=ById(STORE.patients),
            doctors=ById(STORE.doctors),
            departments=ById(STORE.departments),
            equipment=ById(STORE.equipment),
        )


def load(path: Path) -> None:
    """Fill ``STORE`` from the documents ``bench.peers`` exported."""
    documents = json.loads(path.read_text(encoding="utf-8"))
    STORE.appointments = documents["appointments"]
    for name in ("patients", "doctors", "departments", "equipment"):
        setattr(STORE, name, {row["id"]: row for row in documents[name]})


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


def create_app() -> Starlette:
    schema = strawberry.Schema(query=Query)
    graphql = PeerGraphQL(schema, graphql_ide=None)
    return Starlette(routes=[Route("/graphql", graphql), Route("/health", health)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="documents from bench.peers")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    load(args.data)
    uvicorn.run(
        create_app(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
