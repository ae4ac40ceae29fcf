"""Delivery channels for the notification outbox (see ``services/notifications.py``)."""

from notifications.channels import (
    Channel,
    LogChannel,
    PermanentDeliveryError,
    SmtpChannel,
    create_channel,
)

__all__ = ["Channel", "LogChannel", "PermanentDeliveryError", "SmtpChannel", "create_channel"]
