"""The ``shms`` command: seed a MongoDB with the demo facility, serve the API, export the schema,
link external identities to accounts.

Each subcommand is one small function taking the parsed arguments and returning an exit code,
so tests call ``main([...])`` directly instead of spawning processes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

import config
from auth.roles import Role

# db and demo (the driver, the models) are imported by the commands that use them: `shms serve`
# refuses a bad configuration before loading them, in a fraction of a second.

EXIT_USAGE = 2

EMBEDDED_SEED_MESSAGE = """\
shms seed: MONGODB_URL is not set, so there is no database to seed.
Without MONGODB_URL the server runs an embedded in-process store that lives and dies with the
server process; nothing outside it can reach that store. The embedded server seeds itself at
start-up (set SHMS_DEMO_PATIENTS to choose how many patients). To seed a real MongoDB, set
MONGODB_URL (and optionally MONGODB_DB) and run `shms seed` again."""


def _seed(args: argparse.Namespace) -> int:
    """Seed the configured MongoDB; the embedded store can only be seeded by the server itself,
    and a production database never (the demo's accounts have published passwords)."""
    settings = config.get_settings()
    if settings.shms_env == "production":
        print(
            "shms seed: SHMS_ENV=production: demo data is never seeded into a production "
            "database (to seed a test database, run with SHMS_ENV=development)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if settings.embedded_mongo:
        print(EMBEDDED_SEED_MESSAGE, file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_seed_database(settings.mongodb_url, settings.mongodb_db, args))


async def _seed_database(url: str, name: str, args: argparse.Namespace) -> int:
    import db
    from demo import drop_seeded_collections, is_empty, seed_demo

    client = db.create_client(url)
    try:
        await db.init_database(client, name)
        if not await is_empty():
            if not args.drop:
                print(
                    f"shms seed: database {name!r} already holds data; the demo uses fixed ids "
                    "and would collide with it. Re-run with --drop to replace the demo "
                    "collections.",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            await drop_seeded_collections()
            await db.init_database(client, name)  # dropping removed the indexes too
        started = time.perf_counter()
        summary = await seed_demo(args.patients, progress=True)
        elapsed = time.perf_counter() - started
    finally:
        db.close_client(client)
    print(f"Seeded database {name!r} in {elapsed:.1f} s:")
    for collection, count in summary.as_dict().items():
        print(f"  {collection:<17} {count:>9,}")
    return 0


def _metrics_folder() -> str:
    """Several workers report one view of the metrics through files in one folder
    (``PROMETHEUS_MULTIPROC_DIR``, inherited by the workers): a fresh temporary folder unless
    one is set, and a set one emptied of an earlier run's files (their counts would be summed)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        folder = tempfile.mkdtemp(prefix="shms-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    else:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):
            stale.unlink(missing_ok=True)
    return folder


def _serve(args: argparse.Namespace) -> int:
    """Run the ASGI app under uvicorn; ``--reload`` is for development only.

    What can be known without a server is refused here, before uvicorn starts: invalid settings
    (production without MONGODB_URL or REDIS_URL) and the embedded store under several workers.
    Stores that do not answer are refused by the app's start-up (uvicorn then exits 3).
    """
    settings = config.get_settings()
    problem = settings.several_workers_problem() if args.workers > 1 else None
    if problem is not None:
        print(f"shms serve: --workers {args.workers}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if args.workers > 1:
        _metrics_folder()
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import ChangeReload, Multiprocess

    from app import ShmsServer

    # What uvicorn.run does, but serving through ShmsServer: at shutdown every subscription gets
    # `complete` and its WebSocket 1001 before uvicorn closes connections itself (with 1012).
    # Worker processes (--workers) are uvicorn's own servers, and close with 1012.
    server_config = uvicorn.Config(
        "app:app",
        host=args.host,
        port=args.port,
        reload=args.reload,
        workers=args.workers,
        log_level=settings.shms_log_level.lower(),
        # In-flight requests get this long to finish on SIGTERM (see README, Security).
        timeout_graceful_shutdown=int(settings.shms_shutdown_timeout_seconds),
        ws_per_message_deflate=settings.shms_ws_compression,
    )
    server = ShmsServer(server_config)
    try:
        if server_config.should_reload:
            sockets = [server_config.bind_socket()]
            ChangeReload(server_config, target=server.run, sockets=sockets).run()
        elif server_config.workers > 1:
            Multiprocess(server_config, sockets=[server_config.bind_socket()]).run()
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    one_server = not server_config.should_reload and server_config.workers == 1
    return STARTUP_FAILURE if one_server and not server.started else 0  # as uvicorn.run exits


def _export_schema(args: argparse.Namespace) -> int:
    """Write the GraphQL SDL, for front-end code generation and the schema snapshot test."""
    from api.schema import schema

    text = schema.as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"Wrote {args.output}", file=sys.stderr)
    return 0


PERSIST_DRY_RUN_MESSAGE = """\
shms persist: MONGODB_URL is not set, so nothing was stored (dry run); the hashes follow.
The embedded store lives inside the server process: persist into a real MongoDB by setting
MONGODB_URL (and optionally MONGODB_DB), or let a non-restricted client register the documents
by automatic persisted queries."""


def _persist(args: argparse.Namespace) -> int:
    """Register GraphQL documents for allow-listed callers at deploy time (one per file).

    The hash is of the file's exact text, which clients must send byte for byte; ``--print``
    stores graphql's printed form instead, as Apollo's persisted-query link hashes by default.
    """
    from graphql import print_ast

    from errors import BadUserInput
    from schema import persisted_documents
    from services import persisted

    documents: list[tuple[str, str]] = []
    for name in args.files:
        try:
            text = Path(name).read_text(encoding="utf-8")
            document = persisted_documents.parse_document(text)
        except (OSError, UnicodeDecodeError) as error:
            print(f"shms persist: {name}: cannot read: {error}", file=sys.stderr)
            return EXIT_USAGE
        except BadUserInput as error:
            print(f"shms persist: {name}: {error.message}", file=sys.stderr)
            return EXIT_USAGE
        documents.append((name, print_ast(document) if args.print else text))
    settings = config.get_settings()
    if settings.embedded_mongo:
        print(PERSIST_DRY_RUN_MESSAGE, file=sys.stderr)
    else:
        asyncio.run(_store_documents(settings.mongodb_url, settings.mongodb_db, documents))
    for name, text in documents:
        print(f"{persisted.digest(text)}  {name}")
    return 0


async def _store_documents(url: str, name: str, documents: list[tuple[str, str]]) -> None:
    import db
    from schema import persisted_documents

    client = db.create_client(url)
    try:
        await db.init_database(client, name)
        for _, text in documents:
            await persisted_documents.register(text, "cli")
    finally:
        db.close_client(client)


STAFF_ROLES = ("doctor", "nurse", "admin_staff", "billing")
MAX_CLI_TOKEN_TTL = 30 * 86400


def _token(args: argparse.Namespace) -> int:
    """Sign an access token with the embedded key (made in SHMS_STATE_DIR if absent).

    For trying the API by role without accounts: ``--subject`` is the patient id (``pid``)
    for a patient and the staff record id (``sid``) for staff; ``sub`` is
    ``cli:<role>:<subject>``.
    """
    from bson import ObjectId

    from auth.tokens import TokenService

    settings = config.get_settings()
    if settings.shms_oidc_jwks_url:
        print(
            "shms token: SHMS_OIDC_JWKS_URL is set, so the server accepts only the external "
            "identity provider's tokens; get one from it instead.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    claims: dict[str, object] = {"sub": f"cli:{args.role}:{args.subject}", "roles": [args.role]}
    links = {"pid": args.subject} if args.role == "patient" else {}
    if args.role in STAFF_ROLES:
        links["sid"] = args.subject
    if args.department:
        links["did"] = args.department
    for value in links.values():
        if not ObjectId.is_valid(value):
            print(f"shms token: {value!r} is not an ObjectId (24 hex digits)", file=sys.stderr)
            return EXIT_USAGE
    print(TokenService.from_settings(settings).issue({**claims, **links}, args.ttl))
    return 0


LINK_EMBEDDED_MESSAGE = """\
shms link-identity: MONGODB_URL is not set, so there is no database to write the link to.
The embedded store lives inside the server process; link identities there with the
linkExternalIdentity mutation (as an admin), or set MONGODB_URL (and MONGODB_DB)."""
EXIT_REFUSED = 1


def _link_identity(args: argparse.Namespace) -> int:
    """Link (or ``--unlink``) an external IdP subject and an account, in MONGODB_URL's database.

    The same service as the ``linkExternalIdentity`` mutation, for the first admin (who cannot
    yet be linked by anyone) and for scripts. With ``REDIS_URL`` set, running servers see the
    change on the subject's next request; otherwise within ``SHMS_AUTH_STATUS_TTL_SECONDS``.
    """
    from bson import ObjectId

    settings = config.get_settings()
    if settings.embedded_mongo:
        print(LINK_EMBEDDED_MESSAGE, file=sys.stderr)
        return EXIT_USAGE
    if not args.unlink and (args.username is None) == (args.account_id is None):
        print("shms link-identity: give --username or --account-id", file=sys.stderr)
        return EXIT_USAGE
    for flag in ("account_id", "patient_id", "staff_id"):
        value = getattr(args, flag)
        if value is not None and not ObjectId.is_valid(value):
            print(f"shms link-identity: {value!r} is not an ObjectId", file=sys.stderr)
            return EXIT_USAGE
    return asyncio.run(_link_in_database(settings, args))


async def _link_in_database(settings: config.Settings, args: argparse.Namespace) -> int:
    from bson import ObjectId

    import db
    from auth import status
    from cache.connection import connect_redis
    from errors import ShmsError
    from services import accounts

    def object_id(value: str | None) -> ObjectId | None:
        return ObjectId(value) if value is not None else None

    client = db.create_client(settings.mongodb_url)
    redis = connect_redis(settings.redis_url) if settings.redis_url else None
    try:
        await db.init_database(client, settings.mongodb_db)
        # Writes then drop the servers' cached sign-in status of the account and subject.
        status.install(status.StatusCache(redis, settings) if redis is not None else None)
        if args.unlink:
            account = await accounts.unlink_identity(args.subject)
        else:
            account = await accounts.link_identity(
                args.subject,
                account_id=object_id(args.account_id),
                username=args.username,
                roles=[Role(r) for r in args.role] if args.role else None,
                patient_id=object_id(args.patient_id),
                staff_id=object_id(args.staff_id),
                display_name=args.display_name,
            )
    except ShmsError as error:
        print(f"shms link-identity: {error.message}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        status.install(None)
        if redis is not None:
            await redis.aclose()
        db.close_client(client)
    verb = "Unlinked" if args.unlink else "Linked"
    roles = ",".join(r.value for r in account.roles)
    print(f"{verb} {args.subject!r} and account {account.username} ({account.id}, {roles})")
    return 0


KEYS_EMBEDDED_MESSAGE = """\
shms keys: MONGODB_URL is not set: the embedded store lives inside the server process, so its
data keys can only be used there. Set MONGODB_URL to manage the keys of a MongoDB database."""


def _keys(args: argparse.Namespace) -> int:
    """``shms keys status|rotate``: the master keys wrapping each data key (crypto.keyring)."""
    settings = config.get_settings()
    if settings.embedded_mongo:
        print(KEYS_EMBEDDED_MESSAGE, file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_keys_in_database(settings, args))


async def _keys_in_database(settings: config.Settings, args: argparse.Namespace) -> int:
    import db
    from crypto import keyring
    from crypto.keys import add_state_key, provider_for

    client = db.create_client(settings.mongodb_url)
    try:
        store = db.key_store(client[settings.mongodb_db])
        if args.action == "rotate":
            if args.new_key:
                if settings.shms_master_key.get_secret_value().strip():
                    print(
                        "shms keys rotate --new-key: SHMS_MASTER_KEY is set: put the new key "
                        "first in it (the old one after it) and run `shms keys rotate`",
                        file=sys.stderr,
                    )
                    return EXIT_USAGE
                print(f"Added master key {add_state_key(settings.shms_state_dir)}")
            provider = provider_for(settings)  # read now: --new-key just changed it
            changed = await keyring.rotate(store, provider, retire=args.retire)
            what = "wrapped only" if args.retire else "wrapped"
            print(f"{changed} data key(s) changed; every one is {what} by {provider.primary}")
        primary = provider_for(settings).primary
        print(f"primary master key: {primary}")
        for key in await keyring.status(store):
            mark = "" if primary in key.wrapped_by else "  (not yet wrapped by the primary)"
            print(f"  {key.collection:<17} {key.key_id:<28} {','.join(key.wrapped_by)}{mark}")
    finally:
        db.close_client(client)
    return 0


def _ttl(value: str) -> int:
    number = int(value)
    if not 60 <= number <= MAX_CLI_TOKEN_TTL:
        raise argparse.ArgumentTypeError(f"must be between 60 and {MAX_CLI_TOKEN_TTL} seconds")
    return number


def _at_least_one(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shms", description="Smart Healthcare Management System: GraphQL API server."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    seed = commands.add_parser(
        "seed", help="fill MONGODB_URL's database with the deterministic demo facility"
    )
    seed.add_argument("--patients", type=_positive, default=200, help="patients (default 200)")
    seed.add_argument(
        "--drop", action="store_true", help="drop the demo collections first if they hold data"
    )
    seed.set_defaults(handler=_seed)

    serve = commands.add_parser("serve", help="run the API server with uvicorn")
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--reload", action="store_true", help="restart on code changes (dev)")
    serve.add_argument(
        "--workers",
        type=_at_least_one,
        default=1,
        help="worker processes (default 1; more need MONGODB_URL and REDIS_URL)",
    )
    serve.set_defaults(handler=_serve)

    export = commands.add_parser("export-schema", help="write the GraphQL schema (SDL)")
    export.add_argument(
        "--output",
        "-o",
        default="schema.graphql",
        help="file, or - for stdout (default %(default)s)",
    )
    export.set_defaults(handler=_export_schema)

    token = commands.add_parser("token", help="print an access token signed with the embedded key")
    token.add_argument("--role", required=True, choices=[r.value for r in Role], help="role")
    token.add_argument(
        "--subject", required=True, help="patient id (patient) or staff record id (staff roles)"
    )
    token.add_argument("--department", help="department id (did claim)")
    token.add_argument("--ttl", type=_ttl, default=3600, help="lifetime, seconds (default 3600)")
    token.set_defaults(handler=_token)

    link = commands.add_parser(
        "link-identity",
        help="let an external identity provider's subject sign in as an account (MONGODB_URL)",
    )
    link.add_argument("--subject", required=True, help="the provider's `sub` for this person")
    link.add_argument("--username", help="the account's username (a new one creates it)")
    link.add_argument("--account-id", help="or the account's id")
    link.add_argument(
        "--role",
        action="append",
        choices=[r.value for r in Role],
        help="the account's roles (repeat; replaces them; required for a new account)",
    )
    link.add_argument("--patient-id", help="the patient record this account is")
    link.add_argument("--staff-id", help="the staff record this account acts as")
    link.add_argument("--display-name", help="name shown for a new account")
    link.add_argument(
        "--unlink", action="store_true", help="remove the subject's link instead (account stays)"
    )
    link.set_defaults(handler=_link_identity)

    keys = commands.add_parser(
        "keys", help="encryption at rest: show or rotate the master keys wrapping the data keys"
    )
    keys.add_argument("action", choices=("status", "rotate"))
    keys.add_argument(
        "--new-key",
        action="store_true",
        help="rotate: first add a generated master key to SHMS_STATE_DIR (development)",
    )
    keys.add_argument(
        "--retire",
        action="store_true",
        help="rotate: drop the wrappings by every other master key (once every server has the "
        "primary key)",
    )
    keys.set_defaults(handler=_keys)

    persist = commands.add_parser(
        "persist", help="register .graphql documents as persisted operations (allow-list mode)"
    )
    persist.add_argument("files", nargs="+", metavar="FILE", help="one GraphQL document each")
    persist.add_argument(
        "--print", action="store_true", help="store the printed form (as Apollo clients hash it)"
    )
    persist.set_defaults(handler=_persist)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ValidationError as error:  # settings: one line naming each, not pydantic's report
        print(f"shms {args.command}: {config.describe(error)}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    raise SystemExit(main())
