"""Where a notification goes: the log by default, e-mail over SMTP when configured.

A channel raises to report a failed delivery: the dispatcher retries with backoff, except on
``PermanentDeliveryError`` (no address on file), which no retry can fix.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage
from typing import Protocol

from config import Settings
from models.notifications import Notification, RecipientKind
from models.patients import Patient
from models.staff import Doctor

log = logging.getLogger(__name__)


class PermanentDeliveryError(Exception):
    """Retrying cannot help: the notification fails at once."""


class Channel(Protocol):
    name: str

    async def send(self, notification: Notification) -> None: ...


class LogChannel:
    """Logs who gets what kind of message; never the body, which may be about their health."""

    name = "log"

    async def send(self, notification: Notification) -> None:
        log.info(
            "notification %s: %s to %s %s",
            notification.id,
            notification.kind.value,
            notification.recipient.kind.value,
            notification.recipient.id,
        )


class SmtpChannel:
    """E-mail through an SMTP relay; the blocking ``smtplib`` runs in a worker thread."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int = 587,
        sender: str = "shms@localhost",
        user: str = "",
        password: str = "",
        starttls: bool = True,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.user, self.password, self.starttls, self.timeout = user, password, starttls, timeout

    async def address(self, notification: Notification) -> str | None:
        recipient = notification.recipient
        if recipient.kind == RecipientKind.PATIENT:
            patient = await Patient.get(recipient.id)
            return str(patient.contact.email) if patient and patient.contact.email else None
        doctor = await Doctor.get(recipient.id)
        return str(doctor.contact.email) if doctor and doctor.contact.email else None

    async def send(self, notification: Notification) -> None:
        to = await self.address(notification)
        if to is None:
            raise PermanentDeliveryError(
                f"no e-mail address for this {notification.recipient.kind}"
            )
        message = EmailMessage()
        message["From"], message["To"] = self.sender, to
        message["Subject"] = notification.subject
        message.set_content(notification.body)
        await asyncio.to_thread(self._deliver, message)

    def _deliver(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password)
            smtp.send_message(message)


def create_channel(settings: Settings) -> Channel:
    if not settings.shms_smtp_host:
        return LogChannel()
    return SmtpChannel(
        settings.shms_smtp_host,
        settings.shms_smtp_port,
        settings.shms_smtp_from,
        settings.shms_smtp_user,
        settings.shms_smtp_password.get_secret_value(),
        settings.shms_smtp_starttls,
    )
