"""The LLM meter: counts every LLM request, its tokens and cost, at the HTTP boundary.

Why here. Flowstate reaches its LLM through two frameworks, both on the `openai` SDK over httpx:
LangGraph nodes through `ChatOpenAI` (`llm.chat_model`) and crews through CrewAI's native OpenAI
provider (`llm.crew_llm`). The one place every call of both crosses exactly once per attempt is
the HTTP exchange with the server; framework counters are not reliable there (measured:
`crew.usage_metrics` double-counted a 2-agent crew and reads zero when streaming). So the meter
sits in the httpx transport of both clients:

- `ChatOpenAI(..., **openai_http_clients())` (a sync and an async `httpx` client whose transport
  meters);
- `crewai.LLM(..., interceptor=crewai_interceptor())` (CrewAI's own transport hook).

For each `POST .../chat/completions` (or `.../completions`) it reads the request's `model` and
`stream` flag, counts the request when it is sent (`flowstate_llm_calls_total{model}`), and reads
`usage` from the response (the JSON body, or the last SSE chunk carrying `usage` when streaming)
to add `flowstate_llm_tokens_total{model, kind}` and `flowstate_llm_cost_usd_total{model}` (price
table, `observability.prices`). It asks metered requests for an uncompressed response
(`Accept-Encoding: identity`) so the body can be read as it streams by; a chat completion body is
a few KB. A retried request is two requests here (the LLM server saw two). A server that reports
no usage when streaming (llama.cpp ignores `stream_options.include_usage`) gets its completion
tokens counted as the stream's content chunks (llama-cpp-python sends one token per chunk) and
no prompt tokens (only the server's log knows them). The meter never changes a response and
never raises into the caller: a failure to parse is logged once and the call is still counted.

Listeners (:func:`add_listener`) receive an :class:`LLMExchange` per finished request (tests).

Cancelling: :meth:`MeterUsage.cancel` makes every later LLM request started in that scope
(nested scopes and worker threads included) raise :class:`ScopeCancelled` before it is sent.
The chat service cancels a turn's scope when the turn passes its deadline: a crew still running in
a worker thread (which asyncio cannot stop) then fails at its next request instead of working
on for an answer nobody will read. This is the one case where the meter raises into the caller.

Per-turn accounting: :func:`usage_scope` opens a scope (a context variable) and yields a
:class:`MeterUsage` that every LLM request started inside it is added to (nested scopes each see
it). Context variables follow `asyncio` tasks and `asyncio.to_thread`, which is how LangGraph runs
nodes and CrewAI's `akickoff` runs an agent's steps, so a chat turn's scope sees every call of
both doors. This is the one counter of LLM usage per turn (`POST /api/chat` `usage`), per crew
run (`CrewResponse.llm_calls`, `crews.runner.CrewRun.usage`) and per benchmark row: the same
exchanges the Prometheus series count.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx

from observability import metrics
from observability.prices import active_price_table

logger = logging.getLogger(__name__)

#: Paths (suffixes) of the requests that are LLM calls.
LLM_PATH_SUFFIXES = ("/chat/completions", "/completions")
#: A non-streamed body larger than this is not parsed for usage (the call still counts).
MAX_BODY_BYTES = 8 * 1024 * 1024
#: Connection pool limits of the metered clients (the `openai` SDK's own defaults).
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)


@dataclass(frozen=True)
class LLMExchange:
    """One finished LLM request. `status` is the HTTP status (None: no response, e.g. a
    connection error or timeout); tokens are what the server reported (0 when it did not);
    `cost_usd` is None when the model has no price; `duration_s` from send to the end of the
    response body."""

    model: str
    stream: bool
    status: int | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    duration_s: float


class ScopeCancelled(RuntimeError):
    """An LLM request started in a cancelled :func:`usage_scope` (its turn was cancelled)."""


@dataclass
class MeterUsage:
    """LLM requests counted in one :func:`usage_scope`: `calls` every request sent, `failures`
    those that got no successful answer (HTTP status >= 400, no response at all, or a send that
    raised: CrewAI's transport hook never sees the response of a request whose send failed, so a
    request is a failure until its answer arrives), tokens as the server reported them;
    `refused`: requests refused after :meth:`cancel` (not sent, not in `calls`).
    Thread-safe (requests of one turn may finish on several threads)."""

    calls: int = 0
    answered: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    refused: int = 0
    cancelled: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def failures(self) -> int:
        return self.calls - self.answered

    def cancel(self) -> None:
        """Refuse every LLM request started in this scope from now on (:class:`ScopeCancelled`)."""
        self.cancelled = True

    def _refuse(self) -> None:
        with self._lock:
            self.refused += 1

    def _sent(self) -> None:
        with self._lock:
            self.calls += 1

    def _finished(self, exchange: LLMExchange) -> None:
        with self._lock:
            if exchange.status is not None and exchange.status < 400:
                self.answered += 1
            self.prompt_tokens += exchange.prompt_tokens
            self.completion_tokens += exchange.completion_tokens

    def as_dict(self) -> dict[str, int]:
        """`{"llm_calls", "llm_failures", "prompt_tokens", "completion_tokens"}`."""
        with self._lock:
            return {
                "llm_calls": self.calls,
                "llm_failures": self.calls - self.answered,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
            }


_scopes: ContextVar[tuple[MeterUsage, ...]] = ContextVar("flowstate_llm_meter_scopes", default=())


@contextmanager
def usage_scope() -> Iterator[MeterUsage]:
    """Count every LLM request started in this context (and the tasks and threads it spawns)
    until the block ends; yields the :class:`MeterUsage` they are added to (read it inside or
    after the block). See the module docstring."""
    usage = MeterUsage()
    token = _scopes.set((*_scopes.get(), usage))
    try:
        yield usage
    finally:
        _scopes.reset(token)


Listener = Callable[[LLMExchange], None]
_listeners: list[Listener] = []
_listeners_lock = threading.Lock()
_warned: set[str] = set()


def add_listener(listener: Listener) -> Callable[[], None]:
    """Call `listener` with every finished :class:`LLMExchange`; returns a function removing it.
    Listeners run on the thread that read the response; exceptions in them are logged once."""
    with _listeners_lock:
        _listeners.append(listener)

    def remove() -> None:
        with _listeners_lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return remove


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args, exc_info=True)


def is_llm_request(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path.rstrip("/").endswith(LLM_PATH_SUFFIXES)


def _usage_numbers(usage: Any) -> tuple[int, int]:
    """(prompt, completion) tokens of an OpenAI `usage` object (chat or responses API keys)."""
    if not isinstance(usage, dict):
        return 0, 0
    prompt = usage.get("prompt_tokens", usage.get("input_tokens")) or 0
    completion = usage.get("completion_tokens", usage.get("output_tokens")) or 0
    try:
        return int(prompt), int(completion)
    except (TypeError, ValueError):
        return 0, 0


class _Exchange:
    """The bookkeeping of one metered request, from send to the end of its response body."""

    def __init__(self, request: httpx.Request) -> None:
        self.model = "unknown"
        self.stream = False
        try:
            body = json.loads(request.content or b"{}")
            if isinstance(body, dict):
                self.model = str(body.get("model") or "unknown")
                self.stream = bool(body.get("stream"))
        except Exception:  # a body we cannot read is still a call
            _warn_once("request", "LLM meter: could not read a request body; counting it as model 'unknown'")
        # Uncompressed, so the body can be read as it passes (see the module docstring).
        request.headers["Accept-Encoding"] = "identity"
        self.started = time.perf_counter()
        self.status: int | None = None
        self.usage: Any = None
        self.response_model: str | None = None
        self._sse = False
        self._content_chunks = 0
        self._buffer = bytearray()
        self._too_big = False
        self._done = False
        self._lock = threading.Lock()
        # the scopes of the context that sent the request (a stream may finish elsewhere)
        self.scopes = _scopes.get()
        metrics.observe_llm_request(self.model)
        for scope in self.scopes:
            scope._sent()

    # ------------------------------------------------------------------ reading the response
    def on_response(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self._sse = "text/event-stream" in response.headers.get("content-type", "")

    def feed(self, chunk: bytes) -> None:
        try:
            if self._sse:
                self._buffer.extend(chunk)
                while True:
                    end = self._buffer.find(b"\n")
                    if end < 0:
                        break
                    line = bytes(self._buffer[:end]).strip()
                    del self._buffer[: end + 1]
                    self._read_sse_line(line)
            elif not self._too_big:
                if len(self._buffer) + len(chunk) > MAX_BODY_BYTES:
                    self._too_big = True
                    self._buffer.clear()
                else:
                    self._buffer.extend(chunk)
        except Exception:
            _warn_once("feed", "LLM meter: could not read a response chunk; its usage is not counted")

    def _read_sse_line(self, line: bytes) -> None:
        if not line.startswith(b"data:"):
            return
        payload = line[5:].strip()
        if not payload or payload == b"[DONE]":
            return
        try:
            event = json.loads(payload)
        except json.JSONDecodeError:
            return
        if isinstance(event, dict):
            if event.get("usage"):
                self.usage = event["usage"]
            if event.get("model"):
                self.response_model = str(event["model"])
            choices = event.get("choices")
            if isinstance(choices, list) and choices and isinstance(choices[0], dict):
                delta = choices[0].get("delta") or choices[0]
                if isinstance(delta, dict) and (delta.get("content") or delta.get("text")):
                    self._content_chunks += 1

    def finish(self) -> None:
        """Record the exchange (once)."""
        with self._lock:
            if self._done:
                return
            self._done = True
        try:
            if self._sse:
                if self._buffer.strip():
                    self._read_sse_line(bytes(self._buffer).strip())
            elif self._buffer and self.status is not None and self.status < 400:
                body = json.loads(bytes(self._buffer))
                if isinstance(body, dict):
                    self.usage = body.get("usage")
                    self.response_model = body.get("model")
        except Exception:
            _warn_once("finish", "LLM meter: could not parse a response body; its usage is not counted")
        self._buffer = bytearray()
        if self._sse and not self.usage and self._content_chunks:
            # no usage in the stream: one chunk is one generated token (llama-cpp-python)
            self.usage = {"prompt_tokens": 0, "completion_tokens": self._content_chunks}
        prompt, completion = _usage_numbers(self.usage)
        cost = active_price_table().cost(self.model, prompt, completion)
        cost_usd = None if cost is None else cost.total
        metrics.observe_llm_usage(self.model, prompt, completion, cost_usd)
        exchange = LLMExchange(
            model=self.model,
            stream=self.stream,
            status=self.status,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=cost_usd,
            duration_s=time.perf_counter() - self.started,
        )
        for scope in self.scopes:
            scope._finished(exchange)
        with _listeners_lock:
            listeners = list(_listeners)
        for listener in listeners:
            try:
                listener(exchange)
            except Exception:
                _warn_once(f"listener:{id(listener)}", "LLM meter: a listener raised; ignored")


class _MeteredStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, exchange: _Exchange) -> None:
        self._inner = inner
        self._exchange = exchange

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._exchange.feed(chunk)
            yield chunk
        self._exchange.finish()

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            self._exchange.finish()


class _AsyncMeteredStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, exchange: _Exchange) -> None:
        self._inner = inner
        self._exchange = exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._exchange.feed(chunk)
            yield chunk
        self._exchange.finish()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._exchange.finish()


def _begin(request: httpx.Request) -> _Exchange | None:
    """The exchange of an LLM request (None for other requests). Raises ScopeCancelled, before
    anything is sent, when a scope of the sending context was cancelled."""
    if not is_llm_request(request):
        return None
    scopes = _scopes.get()
    if any(scope.cancelled for scope in scopes):
        for scope in scopes:
            scope._refuse()
        raise ScopeCancelled("the turn this LLM request belongs to was cancelled")
    try:
        return _Exchange(request)
    except Exception:
        _warn_once("begin", "LLM meter: could not meter a request; it goes through unmetered")
        return None


def _attach(response: httpx.Response, exchange: _Exchange | None) -> httpx.Response:
    if exchange is None:
        return response
    exchange.on_response(response)
    stream = response.stream
    if isinstance(stream, httpx.AsyncByteStream) and not isinstance(stream, httpx.SyncByteStream):
        response.stream = _AsyncMeteredStream(stream, exchange)
    elif isinstance(stream, httpx.SyncByteStream):
        response.stream = _MeteredStream(stream, exchange)
    else:  # an unknown stream type: count the call without usage
        exchange.finish()
    return response


def _fail(exchange: _Exchange | None) -> None:
    if exchange is not None:
        exchange.finish()


# ---------------------------------------------------------------------------- httpx transports
class MeteringTransport(httpx.BaseTransport):
    """A sync httpx transport that meters LLM requests and sends everything through `inner`
    (default: a plain `httpx.HTTPTransport` with the `openai` SDK's connection limits)."""

    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self._inner = inner or httpx.HTTPTransport(limits=LIMITS)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        exchange = _begin(request)
        try:
            response = self._inner.handle_request(request)
        except BaseException:
            _fail(exchange)
            raise
        return _attach(response, exchange)

    def close(self) -> None:
        self._inner.close()


class AsyncMeteringTransport(httpx.AsyncBaseTransport):
    """The async counterpart of :class:`MeteringTransport`. Keeps one inner transport per event
    loop, so one client can serve code that runs several loops one after another (`asyncio.run`
    per request in scripts) without reusing a connection across loops."""

    def __init__(self) -> None:
        self._inner: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncHTTPTransport] = (
            weakref.WeakKeyDictionary()
        )

    def _transport(self) -> httpx.AsyncHTTPTransport:
        loop = asyncio.get_running_loop()
        transport = self._inner.get(loop)
        if transport is None:
            transport = httpx.AsyncHTTPTransport(limits=LIMITS)
            self._inner[loop] = transport
        return transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        exchange = _begin(request)
        try:
            response = await self._transport().handle_async_request(request)
        except BaseException:
            _fail(exchange)
            raise
        return _attach(response, exchange)

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        transport = self._inner.pop(loop, None)
        if transport is not None:
            await transport.aclose()


@lru_cache(maxsize=1)
def _sync_client() -> httpx.Client:
    return httpx.Client(transport=MeteringTransport(), follow_redirects=True)


@lru_cache(maxsize=1)
def _async_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=AsyncMeteringTransport(), follow_redirects=True)


def openai_http_clients() -> dict[str, Any]:
    """Keyword arguments for `ChatOpenAI(...)` (or `openai.OpenAI`-style factories taking
    `http_client`/`http_async_client`): process-wide metered httpx clients. Request timeouts
    stay those of the OpenAI client (it sets them per request)."""
    return {"http_client": _sync_client(), "http_async_client": _async_client()}


# ---------------------------------------------------------------------------- CrewAI
_pending: ContextVar[_Exchange | None] = ContextVar("flowstate_llm_meter_pending", default=None)


@lru_cache(maxsize=1)
def _interceptor_class() -> type[Any]:
    # Imported lazily: `crewai.llms.hooks` imports crewai (seconds).
    from crewai.llms.hooks.base import BaseInterceptor

    class MeteringInterceptor(BaseInterceptor[httpx.Request, httpx.Response]):
        """CrewAI transport hook feeding the LLM meter. CrewAI's transport calls
        `on_outbound(request)`, sends it, then `on_inbound(response)` in the same thread (or
        task), so the pending exchange travels in a context variable. A send that raises never
        reaches `on_inbound`: the call was counted on the way out, without usage."""

        def on_outbound(self, message: httpx.Request) -> httpx.Request:
            _pending.set(_begin(message))
            return message

        def on_inbound(self, message: httpx.Response) -> httpx.Response:
            exchange = _pending.get()
            _pending.set(None)
            return _attach(message, exchange)

        async def aon_outbound(self, message: httpx.Request) -> httpx.Request:
            return self.on_outbound(message)

        async def aon_inbound(self, message: httpx.Response) -> httpx.Response:
            return self.on_inbound(message)

    return MeteringInterceptor


def crewai_interceptor() -> Any:
    """A CrewAI `BaseInterceptor` for `crewai.LLM(..., interceptor=...)` (CrewAI's native
    OpenAI provider). Importing crewai is slow: call this where crewai is imported anyway."""
    return _interceptor_class()()
