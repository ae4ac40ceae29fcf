"""Background work: reminders and notification delivery, one runner across workers."""

from jobs.lease import RedisLease
from jobs.scheduler import Scheduler, create_scheduler

__all__ = ["RedisLease", "Scheduler", "create_scheduler"]
