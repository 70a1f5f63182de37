"""The one configuration object. Every value comes from the environment (or `.env`)."""

from __future__ import annotations

import io
import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The well-known `supabase start` secret: fine on this machine, never for a real project.
DEV_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
ENV_FILE = Path(".env")  # in the working directory, like pydantic-settings reads it


class Settings(BaseSettings):
    """Backline configuration; see README "Configuration" for every variable."""

    model_config = SettingsConfigDict(env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "SUPABASE_DB_URL"),
        description="Postgres to use. Unset: run the embedded server in data_dir.",
    )
    data_dir: Path = Field(
        default=Path(".backline"),
        validation_alias=AliasChoices("BACKLINE_DATA_DIR"),
        description="Where the embedded server keeps its cluster, socket and state.",
    )
    migrations_dir: Path = Field(
        default=PROJECT_ROOT / "migrations",
        validation_alias=AliasChoices("BACKLINE_MIGRATIONS_DIR"),
    )
    exposed_schemas: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("public", "graphql_public"),
        validation_alias=AliasChoices("BACKLINE_EXPOSED_SCHEMAS"),
        description="Schemas the Data API exposes; db check applies its rules to them.",
    )
    default_privileges: Literal["legacy", "none"] = Field(
        default="legacy",
        validation_alias=AliasChoices("BACKLINE_DEFAULT_PRIVILEGES"),
        description=(
            "Default privileges the platform stand-in gives new public objects: legacy"
            " (supabase start, self-hosted, older projects: ALL to the API roles) or none"
            " (hosted since 2026). Only used when the stand-in is created."
        ),
    )
    jwt_secret: str = Field(
        default=DEV_JWT_SECRET,
        validation_alias=AliasChoices("SUPABASE_JWT_SECRET", "BACKLINE_JWT_SECRET"),
        description="HS256 secret for user tokens (the `supabase start` default locally).",
    )
    jwt_expiry_seconds: int | None = Field(
        default=None,
        ge=60,
        validation_alias=AliasChoices("BACKLINE_JWT_EXPIRY"),
        description=(
            "Lifetime of tokens `backline token` mints. Unset: supabase/config.toml [auth] jwt_expiry,"
            " the lifetime Supabase Auth gives its tokens."
        ),
    )
    supabase_url: str | None = Field(default=None, validation_alias=AliasChoices("SUPABASE_URL"))
    supabase_service_role_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_SECRET_KEY"),
    )

    # == ai ==
    ai_master_keys: str = Field(
        default="",
        validation_alias=AliasChoices("BACKLINE_AI_MASTER_KEYS"),
        description="Master keys wrapping AI key data keys: 'id1:base64(32 bytes),id2:...'.",
    )
    ai_master_key_id: str = Field(
        default="",
        validation_alias=AliasChoices("BACKLINE_AI_MASTER_KEY_ID"),
        description="Which master key wraps new data keys (default: the last one listed).",
    )
    ai_host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("BACKLINE_AI_HOST"))
    ai_port: int = Field(default=8787, validation_alias=AliasChoices("BACKLINE_AI_PORT"))
    ai_allow_anonymous: bool = Field(
        default=True,
        validation_alias=AliasChoices("BACKLINE_AI_ALLOW_ANONYMOUS"),
        description="Whether anonymous (is_anonymous) users may use the AI proxy.",
    )
    ai_jwt_audience: str = Field(
        default="authenticated", validation_alias=AliasChoices("BACKLINE_AI_JWT_AUDIENCE")
    )
    ai_jwks_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("BACKLINE_AI_JWKS_URL"),
        description="Default: <SUPABASE_URL>/auth/v1/.well-known/jwks.json.",
    )
    ai_jwks_ttl_seconds: int = Field(
        default=600, validation_alias=AliasChoices("BACKLINE_AI_JWKS_TTL_SECONDS")
    )
    ai_cors_origins: tuple[str, ...] = Field(
        default=(),
        validation_alias=AliasChoices("BACKLINE_AI_CORS_ORIGINS"),
        description="Origins allowed to call the AI proxy from a browser (JSON list).",
    )
    ai_max_body_bytes: int = Field(
        default=1_048_576, validation_alias=AliasChoices("BACKLINE_AI_MAX_BODY_BYTES")
    )
    ai_max_upload_bytes: int = Field(
        default=10_485_760, validation_alias=AliasChoices("BACKLINE_AI_MAX_UPLOAD_BYTES")
    )
    ai_pool_min: int = Field(default=2, validation_alias=AliasChoices("BACKLINE_AI_POOL_MIN"))
    ai_pool_max: int = Field(default=20, validation_alias=AliasChoices("BACKLINE_AI_POOL_MAX"))
    ai_provider_timeout_seconds: float = Field(
        default=60.0, validation_alias=AliasChoices("BACKLINE_AI_PROVIDER_TIMEOUT_SECONDS")
    )
    ai_openai_base_url: str = Field(
        default="https://api.openai.com/v1", validation_alias=AliasChoices("BACKLINE_AI_OPENAI_BASE_URL")
    )
    ai_openai_compat_base_url: str = Field(
        default="http://127.0.0.1:11434/v1",
        validation_alias=AliasChoices("BACKLINE_AI_OPENAI_COMPAT_BASE_URL"),
    )
    ai_anthropic_base_url: str = Field(
        default="https://api.anthropic.com", validation_alias=AliasChoices("BACKLINE_AI_ANTHROPIC_BASE_URL")
    )
    ai_gemini_base_url: str = Field(
        default="https://generativelanguage.googleapis.com",
        validation_alias=AliasChoices("BACKLINE_AI_GEMINI_BASE_URL"),
    )
    ai_operator_keys: dict[str, str] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("BACKLINE_AI_OPERATOR_KEYS"),
        description='Operator provider keys used when the user gives none: JSON {"gemini": "..."}.',
    )
    ai_fallback: str | None = Field(
        default=None,
        validation_alias=AliasChoices("BACKLINE_AI_FALLBACK"),
        description="Secondary 'provider:model' (operator key) used when the primary fails (5xx/down).",
    )
    ai_models: dict[str, str] = Field(
        default_factory=dict,
        validation_alias=AliasChoices("BACKLINE_AI_MODELS"),
        description='Model names the SDK routes map to a target: JSON {"fast": "gemini/gemini-2.0-flash"}.',
    )
    ai_default_max_tokens: int = Field(
        default=1024, validation_alias=AliasChoices("BACKLINE_AI_DEFAULT_MAX_TOKENS")
    )
    ai_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        validation_alias=AliasChoices("BACKLINE_AI_WORKERS"),
        description="uvicorn worker processes for `backline ai serve` (one event loop each).",
    )
    ai_jwt_cache_size: int = Field(
        default=4096,
        ge=0,
        validation_alias=AliasChoices("BACKLINE_AI_JWT_CACHE_SIZE"),
        description="Verified access tokens remembered until they expire (0 = verify every request).",
    )

    # == billing ==
    stripe_webhook_secrets: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        validation_alias=AliasChoices("STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRETS"),
        description="Stripe endpoint signing secrets (whsec_...), comma-separated: several during rotation.",
    )
    stripe_webhook_tolerance_seconds: int = Field(
        default=300,
        ge=1,
        validation_alias=AliasChoices("STRIPE_WEBHOOK_TOLERANCE_SECONDS"),
        description="How far the Stripe-Signature timestamp may be from now (Stripe's default: 300).",
    )
    billing_default_plan: str = Field(
        default="pro",
        validation_alias=AliasChoices("BILLING_DEFAULT_PLAN"),
        description="Plan an active subscription grants when its price has no row in private.billing_prices.",
    )

    @field_validator("exposed_schemas", "stripe_webhook_secrets", "health_buckets", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        """Accept `a,b` (or a JSON list) from the environment as well as a sequence."""
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return tuple(json.loads(value))
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    # == platform adapters, data rights ==
    platform_transport: str = Field(
        default="auto",
        validation_alias=AliasChoices("BACKLINE_PLATFORM_TRANSPORT"),
        description="auto | local | supabase. auto: supabase when SUPABASE_URL and the service key are set.",
    )
    storage_public_url: str = Field(
        default="http://127.0.0.1:8787",
        validation_alias=AliasChoices("BACKLINE_STORAGE_PUBLIC_URL"),
        description="Base URL of the local transport's signed URLs: the edge service (backline ai serve).",
    )
    export_url_ttl_seconds: int = Field(
        default=7 * 24 * 3600,
        validation_alias=AliasChoices("BACKLINE_EXPORT_URL_TTL"),
        description="Lifetime of an export's signed download URL.",
    )
    anonymous_inactive_days: int = Field(
        default=90, validation_alias=AliasChoices("BACKLINE_ANONYMOUS_INACTIVE_DAYS")
    )
    orphan_grace_hours: int = Field(default=24, validation_alias=AliasChoices("BACKLINE_ORPHAN_GRACE_HOURS"))
    export_retention_days: int = Field(
        default=7, validation_alias=AliasChoices("BACKLINE_EXPORT_RETENTION_DAYS")
    )

    # == uploads: checks and images ==
    clamav_address: str | None = Field(
        default=None,
        validation_alias=AliasChoices("BACKLINE_CLAMAV_ADDRESS"),
        description=(
            "ClamAV daemon (clamd) scanning every upload: tcp://host:3310, host:port, unix:///path, /path."
            " Unset: uploads get their type checked and are marked not_scanned."
        ),
    )
    clamav_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias=AliasChoices("BACKLINE_CLAMAV_TIMEOUT_SECONDS"),
        description="How long one clamd connection may take (connect, stream, verdict).",
    )
    upload_reject_action: Literal["remove", "quarantine"] = Field(
        default="remove",
        validation_alias=AliasChoices("BACKLINE_UPLOAD_REJECT_ACTION"),
        description="A rejected upload is removed, or moved to the service-only bucket quarantine.",
    )
    images_webp_quality: int = Field(
        default=80,
        ge=1,
        le=100,
        validation_alias=AliasChoices("BACKLINE_IMAGES_WEBP_QUALITY"),
        description="WebP quality of thumbnails and of the re-encoded original.",
    )
    images_webp_original: bool = Field(
        default=True,
        validation_alias=AliasChoices("BACKLINE_IMAGES_WEBP_ORIGINAL"),
        description="Also store the original re-encoded to WebP (<name>.full.webp) when that is smaller.",
    )

    # == jobs ==
    jobs_lease_seconds: float = Field(
        default=60.0,
        gt=1,
        le=86400,
        validation_alias=AliasChoices("BACKLINE_JOBS_LEASE_SECONDS"),
        description="How long a claimed job stays locked without a heartbeat before another worker takes it.",
    )
    jobs_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        validation_alias=AliasChoices("BACKLINE_JOBS_POLL_SECONDS"),
        description="Polling interval of idle workers (LISTEN/NOTIFY wakes them sooner).",
    )
    jobs_concurrency: int = Field(
        default=2,
        ge=1,
        le=256,
        validation_alias=AliasChoices("BACKLINE_JOBS_CONCURRENCY"),
        description="Jobs one `backline workers run` process runs at once.",
    )
    jobs_drain_seconds: float = Field(
        default=30.0,
        ge=0,
        validation_alias=AliasChoices("BACKLINE_JOBS_DRAIN_SECONDS"),
        description="On SIGTERM, how long running jobs may take to finish before their leases are released.",
    )
    cron_tick_seconds: float = Field(
        default=15.0,
        gt=0,
        validation_alias=AliasChoices("BACKLINE_CRON_TICK_SECONDS"),
        description="How often `backline workers run` checks for due cron schedules.",
    )
    cleanup_batch_size: int = Field(
        default=500,
        ge=1,
        le=100000,
        validation_alias=AliasChoices("BACKLINE_CLEANUP_BATCH_SIZE"),
        description="Rows each cleanup batch (one short transaction) deletes at most.",
    )

    # == health and alerts (docs/health.md) ==
    alert_webhook_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("BACKLINE_ALERT_WEBHOOK_URL"),
        description=(
            "Slack-compatible incoming webhook (http/https) for health alerts, recoveries and the"
            " weekly usage report. Unset: they are only logged."
        ),
    )
    alert_label: str = Field(
        default="Backline",
        min_length=1,
        max_length=80,
        validation_alias=AliasChoices("BACKLINE_ALERT_LABEL"),
        description="Names this deployment in every alert and report (several may share one channel).",
    )
    alert_webhook_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        validation_alias=AliasChoices("BACKLINE_ALERT_WEBHOOK_TIMEOUT_SECONDS"),
        description="How long one webhook post may take before it counts as failed.",
    )
    health_ai_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("BACKLINE_HEALTH_AI_URL"),
        description=(
            "Base URL of the AI proxy whose GET /healthz the health check calls."
            " Default: http://BACKLINE_AI_HOST:BACKLINE_AI_PORT; 'off' when no proxy runs."
        ),
    )
    health_db_latency_warn_ms: float = Field(
        default=500.0,
        gt=0,
        validation_alias=AliasChoices("BACKLINE_HEALTH_DB_LATENCY_WARN_MS"),
        description="Database round trip (connect + select 1) above this is a warning.",
    )
    health_queue_backlog_warn: int = Field(
        default=1000,
        ge=1,
        validation_alias=AliasChoices("BACKLINE_HEALTH_QUEUE_BACKLOG_WARN"),
        description="Queued jobs already due at or above this count are a warning.",
    )
    health_queue_wait_warn_seconds: float = Field(
        default=900.0,
        gt=0,
        validation_alias=AliasChoices("BACKLINE_HEALTH_QUEUE_WAIT_WARN_SECONDS"),
        description="A due job waiting longer than this (no worker takes it) is a failure.",
    )
    health_dead_jobs_fail: int = Field(
        default=1,
        ge=1,
        validation_alias=AliasChoices("BACKLINE_HEALTH_DEAD_JOBS_FAIL"),
        description="Dead jobs (parked after their last attempt) in the window at or above this fail.",
    )
    health_dead_jobs_window_hours: float = Field(
        default=24.0,
        gt=0,
        validation_alias=AliasChoices("BACKLINE_HEALTH_DEAD_JOBS_WINDOW_HOURS"),
        description="How far back dead jobs count for the queue check.",
    )
    health_cron_grace_seconds: float = Field(
        default=600.0,
        gt=0,
        validation_alias=AliasChoices("BACKLINE_HEALTH_CRON_GRACE_SECONDS"),
        description="An enabled schedule whose due run is older than this has not fired: cron is stale.",
    )
    health_buckets: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("avatars", "samples", "images", "exports"),
        validation_alias=AliasChoices("BACKLINE_HEALTH_BUCKETS"),
        description=(
            "Storage buckets that must exist (comma-separated); the first present one is listed"
            " through the storage transport."
        ),
    )

    @field_validator("alert_webhook_url", "health_ai_url", mode="before")
    @classmethod
    def _http_url(cls, value: Any, info: Any) -> Any:
        """An http(s) URL with a host, or unset; '' is unset and 'off' turns the AI check off."""
        if value is None:
            return None
        text = str(value).strip()
        if not text:
            return None
        if info.field_name == "health_ai_url" and text.lower() == "off":
            return "off"
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(text)
            port_ok = parts.port is None or parts.port > 0
        except ValueError as exc:
            raise ValueError(f"not a valid URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
            # The value is not echoed: a webhook URL's path is its secret.
            raise ValueError("must be an http:// or https:// URL with a host, e.g. https://hooks.slack.com/services/...")
        return text.rstrip("/") if info.field_name == "health_ai_url" else text
    # == backup ==
    backup_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("BACKLINE_BACKUP_DIR"),
        description="Where `backline db backup` and the daily backup write. Default: <data dir>/backups.",
    )
    backup_keep: int = Field(
        default=7,
        ge=1,
        le=1000,
        validation_alias=AliasChoices("BACKLINE_BACKUP_KEEP"),
        description="How many daily backups the database-backup schedule keeps.",
    )
    backup_schedule: Literal["auto", "on", "off"] = Field(
        default="auto",
        validation_alias=AliasChoices("BACKLINE_BACKUP_SCHEDULE"),
        description="Daily backup job: auto (off on hosted Supabase, which backs up itself), on or off.",
    )

    @property
    def resolved_backup_dir(self) -> Path:
        return self.backup_dir if self.backup_dir is not None else self.data_dir / "backups"


def check_env_file(path: Path = ENV_FILE) -> list[str]:
    """Check a .env file before pydantic-settings reads it.

    Bytes that are not UTF-8 raise one BacklineError naming the file and line (instead of a
    long traceback); lines that are not `NAME=value` come back as warnings naming the line
    (their text is not repeated: it may hold a secret). No file: nothing to check.
    """
    from dotenv.parser import parse_stream

    from workers.errors import BacklineError

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise BacklineError(f"cannot read {path.resolve()}: {exc.strerror}") from None
    for number, line in enumerate(raw.split(b"\n"), 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BacklineError(
                f"{path.resolve()} line {number}: not UTF-8 text (byte 0x{line[exc.start]:02x} at column"
                f" {exc.start + 1}); fix or remove that line"
            ) from None
    return [
        f"{path.resolve()} line {binding.original.line}: not NAME=value, ignored"
        for binding in parse_stream(io.StringIO(raw.decode("utf-8")))
        if binding.error
    ]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. A bad value is one readable BacklineError.

    Warnings about ignored .env lines go to stderr once per process.
    """
    import logging

    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from workers.errors import BacklineError

    for warning in check_env_file():
        print(f"backline: warning: {warning}", file=sys.stderr)
    logging.getLogger("dotenv.main").setLevel(logging.ERROR)  # its own warning repeats ours, unnamed
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'/'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise BacklineError(f"invalid configuration: {problems}") from None
    except SettingsError as exc:
        raise BacklineError(f"invalid configuration: {exc}") from None
