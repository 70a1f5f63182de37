"""The one configuration object. Every value comes from the environment (or `.env`)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The well-known `supabase start` secret: fine on this machine, never for a real project.
DEV_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


class Settings(BaseSettings):
    """Backline configuration; see README "Configuration" for every variable."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

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

    @field_validator("exposed_schemas", "stripe_webhook_secrets", mode="before")
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. A bad value is one readable BacklineError."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from workers.errors import BacklineError

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'/'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise BacklineError(f"invalid configuration: {problems}") from None
    except SettingsError as exc:
        raise BacklineError(f"invalid configuration: {exc}") from None
