"""Who is asking: built once per request from a verified token and the account it names."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bson import ObjectId

from auth.roles import Role


@dataclass
class Standing:
    """When the caller's account and staff record were last found active (``time.monotonic``);
    a subscription's caller is looked up again once this is old (see ``auth.status``)."""

    checked_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``subject`` is the token's ``sub`` (an account id, or a client id for service clients).
    The linked record ids say whose data is "their own" (patients) or which department and
    staff record they act as (staff), and a nurse's ward. ``glass`` holds patients opened by
    break-the-glass.
    """

    subject: str
    roles: frozenset[Role]
    patient_id: ObjectId | None = None
    staff_id: ObjectId | None = None
    department_id: ObjectId | None = None
    ward_id: ObjectId | None = None
    """A nurse's assigned ward, from their staff record as it stands now (never from a token)."""
    client_id: str | None = None
    token_id: str | None = None
    expires_at: int | None = None
    glass: dict[ObjectId, str] = field(default_factory=dict)  # patient id -> emergency reason
    standing: Standing = field(default_factory=Standing, compare=False, repr=False)

    @property
    def account_id(self) -> ObjectId | None:
        """The account this caller signed in as (password or refresh grant): ``sub`` is its id."""
        if self.client_id is None and ObjectId.is_valid(self.subject) and len(self.subject) == 24:
            return ObjectId(self.subject)
        return None

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))
