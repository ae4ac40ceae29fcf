"""A clock tests move by hand, and channels that record or fail deliveries."""

from __future__ import annotations

from datetime import datetime, timedelta

from models.notifications import Notification


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class RecordingChannel:
    name = "recording"

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification)


class FailingChannel:
    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, notification: Notification) -> None:
        self.calls += 1
        raise ConnectionError("relay down")
