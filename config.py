"""Every setting SHMS reads from the environment, in one typed place.

Empty ``MONGODB_URL`` / ``REDIS_URL`` select the embedded default (in-process mongomock-motor and
fakeredis) so a fresh checkout serves a demo facility with no services installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from auth.roles import Role

ERASURE_HOLDS = (
    "open_balance",
    "open_claim",
    "active_admission",
    "open_emergency_visit",
    "upcoming_appointment",
    "upcoming_surgery",
)
"""The legal holds ``services.legal_holds`` knows (``SHMS_ERASURE_HOLDS`` picks among them)."""

DEVELOPMENT_CORS_ORIGINS = tuple(
    f"http://{host}:{port}" for host in ("localhost", "127.0.0.1") for port in (3000, 4200, 5173)
)
"""Where front-end dev servers listen (Next.js/CRA 3000, Angular 4200, Vite 5173), so a UI under
development can call a local SHMS with no setting; production allows no other origin unless told."""


DEVELOPMENT_DEIDENTIFY_SECRET = "shms-development-deidentify-secret"
"""Published with the code: fine for the embedded default, refused in production."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    shms_env: Literal["development", "production"] = Field(
        default="development", description="`production` hardens the endpoint (see Security)."
    )
    mongodb_url: str = Field(
        default="", description="MongoDB connection string; empty runs the embedded store."
    )
    mongodb_db: str = Field(default="shms", description="Database name.")
    redis_url: str = Field(default="", description="Redis URL; empty runs in-process fakeredis.")
    shms_seed_demo: bool | None = Field(
        default=None,
        description="Seed the demo facility at start-up; default: only when embedded and empty.",
    )
    shms_demo_patients: int = Field(
        default=200, ge=1, le=1_000_000, description="Patients in the demo seed."
    )
    shms_default_page_size: int = Field(default=20, ge=1, le=1000, description="`first` default.")
    shms_max_page_size: int = Field(
        default=100, ge=1, le=1000, description="Largest `first` a list accepts."
    )
    shms_max_body_bytes: int = Field(
        default=100_000, ge=1_000, description="Largest HTTP request body; larger is 413."
    )
    shms_max_depth: int = Field(default=12, ge=1, description="Deepest selection nesting.")
    shms_max_aliases: int = Field(default=30, ge=0, description="Most aliases in one document.")
    shms_max_tokens: int = Field(default=2000, ge=10, description="Most tokens in one document.")
    shms_max_directives: int = Field(default=5, ge=0, description="Most directives on one field.")
    shms_max_root_fields: int = Field(
        default=20, ge=1, description="Most root fields in one operation."
    )
    shms_max_cost: int = Field(
        default=5000,
        ge=1,
        description="Highest estimated cost of an operation: every field counts 1, times the "
        "`first` (or default page size) of each enclosing list.",
    )
    shms_max_analysis_steps: int = Field(
        default=50_000,
        ge=1_000,
        description="Most work checking one document's limits may take: one step per selection "
        "visited, ten per pair of same-named fields validation would compare (`ANALYSIS_LIMIT`).",
    )
    shms_operation_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Wall-clock limit of a query (mutations are never cut short mid-write).",
    )
    shms_max_cost_by_role: str = Field(
        default="analyst=20000,service=2000",
        description="Per-role cost ceilings, `role=points` comma-separated; a caller gets the "
        "highest of their roles' ceilings, SHMS_MAX_COST for roles not listed.",
    )
    shms_graphiql: bool | None = Field(
        default=None, description="Serve GraphiQL; default: on except in production."
    )
    shms_log_level: str = Field(default="INFO", description="Python log level.")
    shms_log_format: Literal["plain", "json"] = Field(
        default="plain",
        description="`plain` text lines, or `json`: one JSON object per line with `request_id` "
        "and `trace_id` (python-json-logger), for a log collector.",
    )
    shms_metrics_public: bool = Field(
        default=False,
        description="Serve `GET /metrics` to anyone; false: only to a `service` or `admin` token "
        "(401 without a token, 403 with another role).",
    )
    shms_metrics_address: str = Field(
        default="",
        description="`host:port` of a second listener serving `/metrics` without a token (bind "
        "it to a private interface, e.g. `127.0.0.1:9100`); empty: none.",
    )
    shms_state_dir: str = Field(
        default=".state", description="Folder for local state: the embedded signing key."
    )
    shms_master_key: SecretStr = Field(
        default=SecretStr(""),
        description="Master key(s) of encryption at rest: base64 of 32 bytes; several, "
        "comma-separated, while rotating (the first wraps, every one unwraps). Empty: a key "
        "generated into SHMS_STATE_DIR (development only; production refuses to start).",
    )
    shms_deidentify_secret: str = Field(
        default=DEVELOPMENT_DEIDENTIFY_SECRET,
        min_length=16,
        description="Key of de-identified exports (Safe Harbor): per-patient date shifts and "
        "resource pseudonyms are keyed by it. Production refuses the published default: set "
        "your own and keep it secret; changing it changes every pseudonym and shift.",
    )
    shms_jwt_issuer: str = Field(
        default="shms-embedded", description="`iss` of tokens SHMS issues or accepts."
    )
    shms_jwt_audience: str = Field(default="shms", description="`aud` every token must carry.")
    shms_jwt_algorithms: str = Field(
        default="RS256,ES256", description="Accepted signature algorithms, comma-separated."
    )
    shms_jwt_leeway_seconds: int = Field(
        default=30, ge=0, le=300, description="Clock skew tolerated on exp/nbf/iat."
    )
    shms_oidc_jwks_url: str = Field(
        default="", description="External IdP JWKS URL; empty: SHMS is its own issuer."
    )
    shms_oidc_role_claim: str = Field(
        default="roles",
        description="Where external IdP tokens hold roles: a claim name, or a dotted path into "
        "nested claims (`realm_access.roles`); a top-level claim named with dots "
        "(`https://shms.example/roles`) is tried first.",
    )
    shms_oidc_role_map: str = Field(
        default="",
        description="JSON object from provider role to SHMS role (a name or a list of names); "
        "empty: provider roles named like SHMS roles count as themselves. Others are ignored.",
    )
    shms_oidc_jwks_refresh_seconds: float = Field(
        default=300.0,
        ge=1,
        le=86400,
        description="Refetch the IdP's JWKS when the cached copy is this old, so keys the IdP "
        "removed stop being trusted.",
    )
    shms_oidc_jwks_max_age_seconds: float = Field(
        default=3600.0,
        ge=1,
        le=7 * 86400,
        description="While the IdP is unreachable, cached keys stay trusted until this long "
        "after the last successful fetch (never less than the refresh interval).",
    )
    shms_oidc_jwks_unknown_kid_seconds: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="At most one JWKS fetch per this interval for tokens naming an unknown "
        "`kid`; other such tokens are refused at once.",
    )
    shms_access_token_ttl_seconds: int = Field(
        default=900, ge=60, le=86400, description="Lifetime of access tokens SHMS issues."
    )
    shms_refresh_token_ttl_seconds: int = Field(
        default=14 * 86400, ge=300, description="Lifetime of refresh tokens (rotated on use)."
    )
    shms_login_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins of one account from one address within the window; then "
        "that address is refused for that account (429) until the oldest failure ages out.",
    )
    shms_login_address_max_failures: int = Field(
        default=20,
        ge=1,
        description="Failed sign-ins from one address, across accounts, within the window; "
        "then that address is refused (429).",
    )
    shms_login_window_seconds: int = Field(
        default=900, ge=10, description="Sliding window over which failed sign-ins count."
    )
    shms_login_backoff_after: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins of one account, from any address, within the window "
        "before each further attempt on it must wait (from addresses it never signed in from).",
    )
    shms_login_backoff_base_seconds: float = Field(
        default=1.0, gt=0, le=60, description="The first wait; it doubles with each failure."
    )
    shms_login_backoff_max_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="The longest wait between attempts on one account: what a stranger's "
        "guesses can cost its owner at most.",
    )
    shms_login_known_address_seconds: int = Field(
        default=30 * 86400,
        ge=0,
        description="How long an address an account signed in from skips that account's wait "
        "(its own per-address limits still apply); 0: never.",
    )
    shms_totp_required_roles: str = Field(
        default="",
        description="Comma list of roles whose accounts must sign in with a TOTP code "
        "(production: at least `admin,doctor`); empty: two-factor is optional for everyone.",
    )
    shms_password_reset_ttl_seconds: int = Field(
        default=3600,
        ge=300,
        le=7 * 86400,
        description="Lifetime of one-time password-reset and password-set tokens.",
    )
    shms_auth_status_ttl_seconds: int = Field(
        default=30,
        ge=1,
        le=3600,
        description="Backstop lifetime of a cached account or staff status (every write to "
        "one drops it at once).",
    )
    shms_rate_limit_enabled: bool = Field(
        default=True,
        description="Rate-limit GraphQL operations in Redis, weighted by their estimated cost.",
    )
    shms_rate_limit_points: int = Field(
        default=10_000,
        ge=1,
        description="Cost points one viewer (token subject; anonymous: client address) may "
        "spend per window.",
    )
    shms_rate_limit_address_points: int = Field(
        default=50_000,
        ge=1,
        description="Cost points one client address may spend per window, across all viewers.",
    )
    shms_rate_limit_window_seconds: int = Field(
        default=60, ge=1, le=86400, description="Length of the fixed rate-limit window."
    )
    shms_care_relationship_days: int = Field(
        default=90,
        ge=0,
        le=3650,
        description="How long a completed appointment keeps its doctor and department in the "
        "patient's care (access to the chart).",
    )
    shms_break_glass_minutes: int = Field(
        default=60, ge=1, le=24 * 60, description="How long an emergency access grant lasts."
    )
    shms_cache: bool | None = Field(
        default=None,
        description="Cache hot documents in Redis; default: on with a real Redis (`REDIS_URL`).",
    )
    shms_cache_ttl_seconds: int = Field(
        default=300, ge=1, le=86400, description="How long a cached document may live."
    )
    shms_cache_prefix: str = Field(
        default="shms", min_length=1, description="First part of every cache key in Redis."
    )
    shms_cache_namespace: str = Field(
        default="",
        description="Share cache and live-status keys across processes that each hold an "
        "identical embedded store (the two-process tests); empty: derived from the database.",
    )
    shms_cache_timeout_seconds: float = Field(
        default=0.5, gt=0, le=10, description="Longest wait for Redis before reading MongoDB."
    )
    shms_cache_breaker_seconds: float = Field(
        default=5.0, ge=0, le=300, description="After a Redis error, use MongoDB alone this long."
    )
    shms_result_cache: bool | None = Field(
        default=None,
        description="Cache aggregate and saved-query results in Redis; default: as SHMS_CACHE.",
    )
    shms_result_cache_ttl_seconds: int = Field(
        default=600,
        ge=1,
        le=86400,
        description="Backstop lifetime of a cached result; writes to its inputs drop it sooner.",
    )
    shms_suppression_threshold: int = Field(
        default=5,
        ge=5,
        le=1000,
        description="Analysts see no aggregate group with fewer distinct patients than this.",
    )
    shms_analytics_max_buckets: int = Field(
        default=400, ge=1, le=10_000, description="Most time buckets one aggregate may return."
    )
    shms_allowlist_roles: str = Field(
        default="",
        description="Comma-separated roles that may run only saved or persisted operations "
        "(`*`: every role but admin); empty: any valid document runs.",
    )
    shms_event_queue_size: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="Events a subscriber may fall behind; one further behind is disconnected "
        "(close 4429 slow_consumer) rather than shown a gap.",
    )
    shms_ws_init_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How long a WebSocket may stay open without `connection_init` (then 4408).",
    )
    shms_shutdown_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Longest graceful shutdown: give it to uvicorn's "
        "`--timeout-graceful-shutdown`; open subscriptions get this long to complete.",
    )
    shms_ws_compression: bool = Field(
        default=False,
        description="Compress WebSocket messages (permessage-deflate) under `shms serve`; off: "
        "live events are small, and compressing each one for every subscriber cost a tenth "
        "of a delivery. Plain uvicorn takes `--ws-per-message-deflate`.",
    )
    shms_jobs_enabled: bool = Field(
        default=True,
        description="Run the background scheduler (reminders, notification delivery); one "
        "process at a time holds its Redis lease.",
    )
    shms_jobs_interval_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="Seconds between two scheduler runs."
    )
    shms_jobs_lease_seconds: float = Field(
        default=90.0,
        gt=0,
        le=3600,
        description="Lifetime of the scheduler's Redis lease (renewed every run; keep it above "
        "the interval): how soon another worker takes over from one that died.",
    )
    shms_reminder_lead_hours: float = Field(
        default=24.0, gt=0, le=24 * 14, description="How long before an appointment to remind."
    )
    shms_notify_max_attempts: int = Field(
        default=5, ge=1, le=100, description="Delivery attempts before a notification fails."
    )
    shms_notify_backoff_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="Wait after a failed delivery; doubles after each further failure.",
    )
    shms_smtp_host: str = Field(
        default="", description="SMTP relay for e-mail notifications; empty: log them instead."
    )
    shms_smtp_port: int = Field(default=587, ge=1, le=65535, description="SMTP relay port.")
    shms_smtp_from: str = Field(
        default="shms@localhost", description="Sender address of e-mail notifications."
    )
    shms_smtp_user: str = Field(default="", description="SMTP login; empty: no login.")
    shms_smtp_password: SecretStr = Field(default=SecretStr(""), description="SMTP password.")
    shms_smtp_starttls: bool = Field(default=True, description="Upgrade SMTP with STARTTLS.")

    shms_cors_origins: Annotated[tuple[str, ...] | None, NoDecode] = Field(
        default=None,
        description="Browser origins (`scheme://host[:port]`) whose pages may call the API (CORS) "
        "and open WebSockets: comma-separated or a JSON list; default: localhost dev-server "
        "origins in development, none in production.",
    )
    shms_connect_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="How long start-up waits for MongoDB and Redis before failing (naming "
        "MONGODB_URL or REDIS_URL); also bounds each later connection attempt.",
    )

    shms_facility_timezone: str = Field(
        default="Europe/Berlin",
        description="IANA time zone of the facility: working hours and leave days are read in "
        "it (daylight saving included); the API itself speaks UTC.",
    )

    shms_erasure_holds: str = Field(
        default="open_balance,open_claim,active_admission,open_emergency_visit,"
        "upcoming_appointment",
        description="Legal holds that refuse a patient's erasure while they apply, separated by "
        f"commas (any of {', '.join(ERASURE_HOLDS)}); empty: none.",
    )

    @field_validator("shms_erasure_holds")
    @classmethod
    def _known_holds(cls, value: str) -> str:
        names = [part.strip() for part in value.split(",") if part.strip()]
        unknown = sorted(set(names) - set(ERASURE_HOLDS))
        if unknown:
            raise ValueError(f"unknown erasure holds {unknown}; known: {list(ERASURE_HOLDS)}")
        return ",".join(dict.fromkeys(names))

    @property
    def erasure_holds(self) -> tuple[str, ...]:
        return tuple(part for part in self.shms_erasure_holds.split(",") if part)

    @field_validator("shms_metrics_address")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        value = value.strip()
        host, _, port = value.rpartition(":")
        if value and not (host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError("must be host:port, e.g. 127.0.0.1:9100 (or empty)")
        return value

    @field_validator("shms_cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        """The environment gives a string: a JSON list, or origins separated by commas."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except ValueError as exc:
                raise ValueError(f"not a JSON list of origins: {exc}") from None
        return [part.strip() for part in text.split(",") if part.strip()]

    @field_validator("shms_cors_origins")
    @classmethod
    def _valid_origins(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(dict.fromkeys(_origin(v) for v in value))

    @model_validator(mode="after")
    def _safe_in_production(self) -> Self:
        """Production never runs on the embedded store (in-process: lost at restart, one per
        worker) nor with the demo's published passwords; a start-up refused here names why."""
        if self.shms_env != "production":
            return self
        missing = [name for name in ("MONGODB_URL", "REDIS_URL") if not getattr(self, name.lower())]
        if missing:
            raise ValueError(
                f"SHMS_ENV=production needs {' and '.join(missing)}: without "
                f"{'them' if len(missing) > 1 else 'it'} SHMS runs its embedded in-process "
                "store (lost at restart, a separate one in every worker)"
            )
        if self.shms_seed_demo:
            raise ValueError(
                "SHMS_SEED_DEMO=true is refused with SHMS_ENV=production: demo data has "
                "published passwords and fake patients"
            )
        if not self.shms_master_key.get_secret_value().strip():
            raise ValueError(
                "SHMS_ENV=production needs SHMS_MASTER_KEY (base64 of 32 bytes): patient data "
                "is encrypted at rest under it, and a key generated on this host would be lost "
                "with it"
            )
        if self.shms_deidentify_secret == DEVELOPMENT_DEIDENTIFY_SECRET:
            raise ValueError(
                "SHMS_ENV=production needs SHMS_DEIDENTIFY_SECRET: the default is published, "
                "so anyone could undo the date shifts and pseudonyms of de-identified exports"
            )
        return self

    @property
    def cors_origins(self) -> tuple[str, ...]:
        """The origins allowed cross-origin (CORS and WebSocket), as browsers spell them."""
        if self.shms_cors_origins is not None:
            return self.shms_cors_origins
        return () if self.shms_env == "production" else DEVELOPMENT_CORS_ORIGINS

    @property
    def store_kind(self) -> Literal["embedded", "mongodb"]:
        return "embedded" if self.embedded_mongo else "mongodb"

    def several_workers_problem(self) -> str | None:
        """Why this configuration cannot serve from more than one worker process, or None."""
        missing = [name for name in ("MONGODB_URL", "REDIS_URL") if not getattr(self, name.lower())]
        if not missing:
            return None
        names = " and ".join(missing)
        return (
            f"the embedded store serves one worker only: without {names} every worker process "
            "would hold its own in-process data (answers differing between requests, refresh "
            f"tokens and live events lost); run one worker, or set {names}"
        )

    @field_validator("shms_oidc_role_map")
    @classmethod
    def _valid_role_map(cls, value: str) -> str:
        _parse_role_map(value)
        return value

    @property
    def oidc_role_map(self) -> Mapping[str, frozenset[Role]] | None:
        """Provider role -> SHMS roles; ``None`` when unset (names map to themselves)."""
        return _parse_role_map(self.shms_oidc_role_map)

    @field_validator("shms_facility_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @property
    def facility_timezone(self) -> ZoneInfo:
        return ZoneInfo(self.shms_facility_timezone)

    def cost_ceiling(self, roles: Iterable[str]) -> int:
        """The highest cost ceiling among ``roles`` (SHMS_MAX_COST where none is listed)."""
        listed = dict(
            (part.split("=", 1)[0].strip(), int(part.split("=", 1)[1]))
            for part in self.shms_max_cost_by_role.split(",")
            if "=" in part
        )
        return max(
            (listed.get(str(r), self.shms_max_cost) for r in roles), default=self.shms_max_cost
        )

    def totp_required(self, roles: Iterable[str]) -> bool:
        """Whether an account holding ``roles`` must sign in with a second factor."""
        listed = {p.strip().lower() for p in self.shms_totp_required_roles.split(",") if p.strip()}
        return bool(listed & {str(role) for role in roles})

    @property
    def jwt_algorithms(self) -> list[str]:
        return [a.strip() for a in self.shms_jwt_algorithms.split(",") if a.strip()]

    @property
    def embedded_mongo(self) -> bool:
        return not self.mongodb_url

    @property
    def embedded_redis(self) -> bool:
        return not self.redis_url

    @property
    def cache_enabled(self) -> bool:
        """Off with fakeredis by default: it has no Lua, and an in-process cache gains nothing."""
        return self.shms_cache if self.shms_cache is not None else not self.embedded_redis

    @property
    def result_cache_enabled(self) -> bool:
        return self.shms_result_cache if self.shms_result_cache is not None else self.cache_enabled

    def allowlisted(self, roles: Iterable[str]) -> bool:
        """Whether a caller holding ``roles`` may run only saved or persisted operations."""
        listed = {part.strip() for part in self.shms_allowlist_roles.split(",") if part.strip()}
        held = {str(role) for role in roles}
        if "*" in listed:
            return "admin" not in held
        return bool(held) and held <= listed

    @property
    def graphiql_enabled(self) -> bool:
        if self.shms_graphiql is not None:
            return self.shms_graphiql
        return self.shms_env != "production"

    @property
    def seed_demo_enabled(self) -> bool:
        if self.shms_env == "production":
            return False  # never: see _safe_in_production
        if self.shms_seed_demo is not None:
            return self.shms_seed_demo
        return self.embedded_mongo


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(value: str) -> str:
    """``value`` as a browser sends it in ``Origin`` (lower case, no default port), or
    ValueError: an entry that is no origin would otherwise never match and fail silently."""
    problem = ValueError(
        f"{value!r} is not an origin: give scheme://host[:port] (http or https, no path), "
        "each origin listed (no `*`)"
    )
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise problem from None
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise problem
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


def describe(error: ValidationError) -> str:
    """Invalid settings in one line, named as they are set (``SHMS_CORS_ORIGINS: ...``), for
    start-up messages: pydantic's own text spans lines and echoes every input value."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        names = ".".join(str(part) for part in item["loc"]).upper()
        problems.append(f"{names}: {message}" if names else message)
    return "; ".join(problems)


@lru_cache(maxsize=8)
def _parse_role_map(text: str) -> Mapping[str, frozenset[Role]] | None:
    """``SHMS_OIDC_ROLE_MAP`` read strictly, so a typo stops the server at start-up instead of
    silently granting nothing (or the wrong thing)."""
    if not text.strip():
        return None
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"SHMS_OIDC_ROLE_MAP is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError('SHMS_OIDC_ROLE_MAP must be a JSON object {"provider-role": "role"}')
    known = {r.value for r in Role}
    table: dict[str, frozenset[Role]] = {}
    for provider, target in raw.items():
        names = [target] if isinstance(target, str) else target
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"SHMS_OIDC_ROLE_MAP[{provider!r}] must be a role or a list of roles")
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f"SHMS_OIDC_ROLE_MAP[{provider!r}] names unknown roles {unknown}")
        table[provider] = frozenset(Role(n) for n in names)
    return MappingProxyType(table)  # cached and shared: read-only


@lru_cache
def get_settings() -> Settings:
    return Settings()
