"""Accounts over GraphQL: admins create, link, re-role, disable and reset them, rotate service
client secrets and link external identities; every person changes their own password and
manages their own TOTP second factor. Every one is audited (``perform``)."""

from __future__ import annotations

from functools import partial

import strawberry
from bson import ObjectId

from auth import oauth
from auth.policy import EntityKind as K
from errors import BadUserInput, Forbidden, RateLimited
from models import accounts as m
from models.accounts import (
    CHANGE_PASSWORD,
    CREATE_ACCOUNT,
    DISABLE,
    DISABLE_TOTP,
    ENABLE,
    ENROL_TOTP,
    LINK_ACCOUNT,
    LINK_IDENTITY,
    RESET_PASSWORD,
    RESET_TOTP,
    ROTATE_SECRET,
    SET_ROLES,
    UNLINK_IDENTITY,
)
from resolvers.common import perform
from schema.access import Role
from schema.accounts import (
    Account,
    AccountCreated,
    ClientSecretRotated,
    CreateAccountInput,
    OneTimeToken,
    ServiceClient,
    TotpEnrolment,
)
from schema.common import oid, view
from schema.context import Info
from schema.enforce import acts
from schema.ratelimit import redis_of
from services import accounts, totp
from services.common import get_or_404


def _ttl(info: Info) -> int:
    return info.context.settings.shms_password_reset_ttl_seconds


MAX_REASON = 500


def _actor(info: Info) -> ObjectId | None:
    principal = info.context.principal
    return principal.account_id if principal is not None else None


async def _own(info: Info) -> m.Account:
    """The caller's own account: the only one the self-service mutations act on."""
    account_id = _actor(info)
    if account_id is None:
        raise Forbidden("Only a person signed in with an SHMS account has a password here")
    return await get_or_404(m.Account, account_id, "Account")


async def _target(account_id: strawberry.ID) -> m.Account:
    return await get_or_404(m.Account, oid(account_id), "Account")


async def _throttled(info: Info, username: str) -> tuple[oauth.LoginThrottle, oauth.Attempt]:
    """A slot of the sign-in throttle: proving the current password over GraphQL is a guess
    like any other (a stolen access token must not become a password oracle)."""
    redis = redis_of(info.context)
    if redis is None:
        raise RateLimited("Password changes are unavailable; try again later")
    throttle = oauth.LoginThrottle(redis, info.context.settings, clock=oauth.clock)
    try:
        attempt = await throttle.acquire(username, info.context.client_address or "unknown")
    except oauth.OAuthError as refused:
        retry = refused.headers.get("Retry-After")
        raise RateLimited(refused.description, retry_after=retry) from None
    return throttle, attempt


@strawberry.type
class AccountMutation:
    @strawberry.mutation(
        description=(
            "Let an external identity provider's subject (its token `sub`) sign in as an "
            "account, named by `accountId` or `username` (a new username creates an account "
            "that signs in only through the provider; `roles` required). `roles`, `patientId` "
            "and `staffId` given replace the account's. With a provider, these links are the "
            "only source of a caller's records: tokens cannot name them."
        ),
        metadata=acts(K.ACCOUNT, LINK_IDENTITY),
    )
    async def link_external_identity(
        self,
        info: Info,
        subject: str,
        account_id: strawberry.ID | None = None,
        username: str | None = None,
        roles: list[Role] | None = None,
        patient_id: strawberry.ID | None = None,
        staff_id: strawberry.ID | None = None,
        display_name: str | None = None,
    ) -> Account:
        given = {
            "external_subject": subject,
            "roles": roles,
            "patient_id": patient_id,
            "staff_id": staff_id,
            "display_name": display_name,
        }
        run = partial(
            accounts.link_identity,
            subject,
            account_id=oid(account_id, "accountId") if account_id is not None else None,
            username=username,
            roles=roles,
            patient_id=oid(patient_id, "patientId") if patient_id is not None else None,
            staff_id=oid(staff_id, "staffId") if staff_id is not None else None,
            display_name=display_name,
        )
        fields = [name for name, value in given.items() if value is not None]
        linked = await perform(info, K.ACCOUNT, LINK_IDENTITY, run, fields)
        return view(Account, linked)

    @strawberry.mutation(
        description="Stop an external subject signing in as its account (the account stays).",
        metadata=acts(K.ACCOUNT, UNLINK_IDENTITY),
    )
    async def unlink_external_identity(self, info: Info, subject: str) -> Account:
        run = partial(accounts.unlink_identity, subject)
        unlinked = await perform(info, K.ACCOUNT, UNLINK_IDENTITY, run, ["external_subject"])
        return view(Account, unlinked)

    @strawberry.mutation(
        description="Create an account with no password: the answer's one-time token lets its "
        "owner set one (`/oauth/password-reset`). Staff roles need `staffId` (a record in the "
        "role's collection); the patient role is held alone and needs `patientId`.",
        metadata=acts(K.ACCOUNT, CREATE_ACCOUNT),
    )
    async def create_account(self, info: Info, input: CreateAccountInput) -> AccountCreated:
        access = info.context.access
        await access.require(K.ACCOUNT, CREATE_ACCOUNT)
        created, token, expires = await accounts.create_account_with_ticket(
            input.username,
            input.roles,
            ttl=_ttl(info),
            staff_id=oid(input.staff_id, "staffId") if input.staff_id is not None else None,
            patient_id=oid(input.patient_id, "patientId") if input.patient_id is not None else None,
            display_name=input.display_name,
        )
        fields = ["username", "roles", "display_name", "staff_id", "patient_id"]
        access.wrote(K.ACCOUNT, created, CREATE_ACCOUNT, fields)
        return AccountCreated(
            account=view(Account, created),
            password_set=OneTimeToken(token=token, expires_at=expires),
        )

    @strawberry.mutation(
        description="Point an account at its staff or patient record (replacing its links); "
        "the record must exist and fit the account's roles.",
        metadata=acts(K.ACCOUNT, LINK_ACCOUNT),
    )
    async def link_account(
        self,
        info: Info,
        id: strawberry.ID,
        staff_id: strawberry.ID | None = None,
        patient_id: strawberry.ID | None = None,
    ) -> Account:
        account = await _target(id)
        assert account.id is not None
        run = partial(
            accounts.link_account,
            account.id,
            staff_id=oid(staff_id, "staffId") if staff_id is not None else None,
            patient_id=oid(patient_id, "patientId") if patient_id is not None else None,
        )
        fields = ["staff_id", "patient_id", "department_id"]
        linked = await perform(info, K.ACCOUNT, LINK_ACCOUNT, run, fields, row=account)
        return view(Account, linked)

    @strawberry.mutation(
        description="Replace an account's roles; its tokens lose dropped roles at their next "
        "request. An admin cannot drop their own admin role.",
        metadata=acts(K.ACCOUNT, SET_ROLES),
    )
    async def set_account_roles(self, info: Info, id: strawberry.ID, roles: list[Role]) -> Account:
        account = await _target(id)
        assert account.id is not None
        run = partial(accounts.set_roles, account.id, roles, actor=_actor(info))
        done = await perform(info, K.ACCOUNT, SET_ROLES, run, ["roles"], row=account)
        return view(Account, done)

    @strawberry.mutation(
        description="Disable an account: its tokens are refused from their next request (live "
        "subscriptions end at their next event) and its refresh tokens are revoked.",
        metadata=acts(K.ACCOUNT, DISABLE),
    )
    async def disable_account(self, info: Info, id: strawberry.ID) -> Account:
        account = await _target(id)
        assert account.id is not None
        run = partial(accounts.set_active, account.id, False, actor=_actor(info))
        done = await perform(info, K.ACCOUNT, DISABLE, run, ["active"], row=account)
        return view(Account, done)

    @strawberry.mutation(
        description="Enable a disabled account again (its revoked refresh tokens stay revoked).",
        metadata=acts(K.ACCOUNT, ENABLE),
    )
    async def enable_account(self, info: Info, id: strawberry.ID) -> Account:
        account = await _target(id)
        assert account.id is not None
        run = partial(accounts.set_active, account.id, True, actor=_actor(info))
        done = await perform(info, K.ACCOUNT, ENABLE, run, ["active"], row=account)
        return view(Account, done)

    @strawberry.mutation(
        description="A one-time token (single use, expires) with which the account's owner sets "
        "a new password at `/oauth/password-reset`; the old password works until then, and "
        "only the newest token does.",
        metadata=acts(K.ACCOUNT, RESET_PASSWORD),
    )
    async def reset_password(self, info: Info, account_id: strawberry.ID) -> OneTimeToken:
        account = await get_or_404(m.Account, oid(account_id, "accountId"), "Account")
        assert account.id is not None
        run = partial(accounts.reset_password, account.id, ttl=_ttl(info))
        access = info.context.access
        await access.require(K.ACCOUNT, RESET_PASSWORD, row=account)
        _, token, expires = await run()
        access.wrote(K.ACCOUNT, account, RESET_PASSWORD, ["password"])
        return OneTimeToken(token=token, expires_at=expires)

    @strawberry.mutation(
        description="Turn off someone's TOTP two-factor sign-in when they lost their "
        "authenticator (not your own); `reason` (how their identity was checked) goes to the "
        "audit trail. Their refresh tokens are revoked; where their role requires TOTP, their "
        "next sign-in asks them to enrol again.",
        metadata=acts(K.ACCOUNT, RESET_TOTP),
    )
    async def reset_totp(self, info: Info, account_id: strawberry.ID, reason: str) -> Account:
        account = await _target(account_id)
        assert account.id is not None
        why = reason.strip()
        if not why or len(why) > MAX_REASON:
            raise BadUserInput(f"reason: 1 to {MAX_REASON} characters", {"reason": "is required"})
        run = partial(accounts.reset_totp, account.id, actor=_actor(info))
        done = await perform(info, K.ACCOUNT, RESET_TOTP, run, ["totp"], note=why, row=account)
        return view(Account, done)

    @strawberry.mutation(
        description="A new secret for a service client, shown only in this answer; the old "
        "one stops working at once (tokens it already obtained live until they expire).",
        metadata=acts(K.SERVICE_CLIENT, ROTATE_SECRET),
    )
    async def rotate_client_secret(self, info: Info, client_id: str) -> ClientSecretRotated:
        access = info.context.access
        await access.require(K.SERVICE_CLIENT, ROTATE_SECRET)
        client, secret = await accounts.rotate_client_secret(client_id)
        access.wrote(K.SERVICE_CLIENT, client, ROTATE_SECRET, ["secret"])
        return ClientSecretRotated(client=view(ServiceClient, client), secret=secret)

    # -- self-service: the caller's own account only --------------------------------------------

    @strawberry.mutation(
        description="Change your own password, proving the current one (attempts are throttled "
        "like sign-in). At least 12 characters, not containing your username, not a common "
        "password. Every refresh token of your account is revoked: sign in again elsewhere.",
        metadata=acts(K.ACCOUNT, CHANGE_PASSWORD),
    )
    async def change_password(self, info: Info, current_password: str, new_password: str) -> bool:
        account = await _own(info)
        assert account.id is not None
        throttle, attempt = await _throttled(info, account.username)
        run = partial(accounts.change_password, account.id, current_password, new_password)
        try:
            await perform(info, K.ACCOUNT, CHANGE_PASSWORD, run, ["password"], row=account)
        except BadUserInput as refused:
            if "currentPassword" not in refused.fields:
                await throttle.succeeded(attempt)  # the current password was right
            raise
        await throttle.succeeded(attempt)
        return True

    @strawberry.mutation(
        description="Begin TOTP two-factor sign-in on your own account: add the secret to an "
        "authenticator app, then confirm with a code (`confirmTotpEnrolment`).",
        metadata=acts(K.ACCOUNT, ENROL_TOTP),
    )
    async def begin_totp_enrolment(self, info: Info) -> TotpEnrolment:
        account = await _own(info)
        assert account.id is not None
        await info.context.access.require(K.ACCOUNT, ENROL_TOTP, row=account)
        enrolment = await totp.begin(account.id)
        info.context.access.wrote(K.ACCOUNT, account, ENROL_TOTP, ["totp"], note="begun")
        return TotpEnrolment(secret=enrolment.secret, uri=enrolment.uri)

    @strawberry.mutation(
        description="Turn on TOTP with a current code from the secret begun; from then on the "
        "password grant needs a `totp` code too.",
        metadata=acts(K.ACCOUNT, ENROL_TOTP),
    )
    async def confirm_totp_enrolment(self, info: Info, code: str) -> bool:
        account = await _own(info)
        assert account.id is not None
        throttle, attempt = await _throttled(info, account.username)
        run = partial(totp.confirm, account.id, code)
        await perform(info, K.ACCOUNT, ENROL_TOTP, run, ["totp"], note="confirmed", row=account)
        await throttle.succeeded(attempt)
        return True

    @strawberry.mutation(
        description="Turn off TOTP with a current code (refused when your role requires it).",
        metadata=acts(K.ACCOUNT, DISABLE_TOTP),
    )
    async def disable_totp(self, info: Info, code: str) -> bool:
        account = await _own(info)
        assert account.id is not None
        required = info.context.settings.totp_required(account.roles)
        throttle, attempt = await _throttled(info, account.username)
        run = partial(totp.disable, account.id, code, required=required)
        await perform(info, K.ACCOUNT, DISABLE_TOTP, run, ["totp"], row=account)
        await throttle.succeeded(attempt)
        return True
