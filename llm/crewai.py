"""The one factory for CrewAI LLMs: :func:`crew_llm`.

Every crew agent gets its model from :func:`crew_llm` (no crew builds its own client, so every
request is traced and metered by `observability`). The settings follow what was measured
against the embedded llama.cpp server with Qwen2.5-Coder-1.5B:

- CrewAI's native OpenAI provider (the `openai` SDK, not litellm), posting to
  `{base_url}/chat/completions`; `custom_openai=True` so any model name is accepted.
- Temperature 0, `max_retries` <= 1 and a request timeout: CrewAI's defaults multiply a failure
  into many requests. `max_tokens` capped: generation is ~4x slower than reading the prompt.
- Structured output as `response_format={"type": "json_object", "schema": ...}` (grammar-
  constrained decoding on llama.cpp). Not `output_pydantic`/`output_json`: they make CrewAI ask
  for `json_schema`, which this server answers with HTTP 500. CrewAI types `response_format` as
  `{"type": "json_object"}` only and silently drops a `schema` key, so the subclass below sets
  the whole field when it builds the request. An endpoint of the "openai" dialect (OpenAI, vLLM)
  gets the standard `json_schema` form instead.
- One sync OpenAI client per endpoint for the whole process, built on first use (its httpx
  pool keeps connections to the model server open between runs); CrewAI would build a sync and
  an async client, each with its own pool, for every LLM, i.e. every crew run.
- No native function calling when tools are used: the tool-call JSON came back as the final
  answer. Agents with tools take CrewAI's text (ReAct) path, with `stop=["\\nObservation:"]` sent
  in the request body (the native client does not send CrewAI's stop words to the server, and the
  model then invents observations).

Streaming (:func:`crew_llm` with `on_text`): the request is streamed and every piece of the
answer's text goes to `on_text` as it arrives, on the thread that runs the crew. `on_text` may
raise :class:`StopGeneration` to end the answer early: the HTTP response is closed at once (the
llama.cpp server stops generating when its client goes away, so a re-ask does not queue behind
tokens nobody will read) and the call returns the text received so far as the whole answer, so
CrewAI finishes the task normally. Each piece skips CrewAI's event bus (no Flowstate listener
reads `LLMStreamChunkEvent`, and a bus dispatch per token costs CPU on every turn).

Usage (calls, tokens) is not counted here: `observability.llm_meter` counts every request at the
HTTP boundary (the interceptor installed below); open `observability.llm_meter.usage_scope()`
around a run to read its share.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from contextvars import ContextVar
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import BaseModel

from llm.config import LLMConfig
from llm.structured import response_format

if TYPE_CHECKING:
    from crewai.llms.base_llm import BaseLLM

log = logging.getLogger(__name__)

#: Stop sequence of CrewAI's ReAct text path (see the module docstring).
REACT_STOP = ["\nObservation:"]

#: Receives each piece of a streamed answer's text (see the module docstring).
TextHook = Callable[[str], None]


class StopGeneration(Exception):
    """Raised by a streaming `on_text` hook to end the answer here (module docstring)."""


def apply_offline_env() -> None:
    """Set the switches that keep CrewAI (and litellm, tiktoken) offline and quiet, and record
    that CrewAI's tracing is declined (:func:`decline_crewai_tracing`, once a process); must run
    before `import crewai` (they are read at import time). Idempotent."""
    from config.runtime_env import apply_offline_defaults

    apply_offline_defaults()
    decline_crewai_tracing()


@lru_cache(maxsize=1)
def decline_crewai_tracing() -> bool:
    """Record in CrewAI's user data that its trace collection is declined, as `crewai traces
    disable` does (`.crewai_user.json` in the data folder `CREWAI_STORAGE_DIR` names); returns
    whether it is recorded. Once a process (cached); it must run before `import crewai`.

    `CREWAI_TRACING_ENABLED=false` switches CrewAI's tracing off, but on a machine with no such
    record CrewAI takes every process for a first-time user: importing `crewai` registers 92
    handlers of its trace listener (to offer the user their first run's trace), and every event
    a crew emits (a kickoff emits dozens) is then handed to a thread pool: about 2 ms of CPU a
    crew run on a 2-core AMD EPYC VM, where a run takes 30-35 ms
    (bench/bench_crew_cpu.py). CRM data has no business in a trace offer either. The record is
    read and written by `crewai_core`, CrewAI's own package; a folder that cannot be written
    leaves CrewAI as it was, with a warning."""
    from crewai_core.user_data import has_user_declined_tracing, update_user_data

    try:
        if not has_user_declined_tracing():
            update_user_data({"trace_consent": False, "first_execution_done": True})
        return has_user_declined_tracing()
    except OSError as exc:
        log.warning("could not record in CrewAI's user data that its tracing is declined: %s", exc)
        return False


def warm_up() -> None:
    """Import now what the first crew's first LLM call would otherwise import: CrewAI and the
    LLM class (~5 s) and the `openai` SDK's resource modules, which its client loads lazily on
    first use (measured: 1.2-1.6 s added to the first drafting turn's first token on 2 cores).
    Blocking; call it at start-up in a worker thread. Idempotent."""
    _llm_class()
    import openai.resources  # noqa: F401  (the import is the warm-up)


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One SSL context (httpx's defaults: certifi's CA bundle) for every crew LLM's client."""
    return httpx.create_ssl_context()


@lru_cache(maxsize=1)
def _llm_class() -> type[BaseLLM]:
    """The `OpenAICompletion` subclass (built lazily: importing crewai takes ~5 s)."""
    apply_offline_env()
    from crewai.llms.providers.openai.completion import OpenAICompletion
    from pydantic import PrivateAttr, model_validator

    class FlowstateCompletion(OpenAICompletion):
        """CrewAI's native OpenAI provider with Flowstate's request shape.

        `json_response_format`: the full `response_format` to send (CrewAI's own field drops a
        schema). `text_tools`: report no native function calling, so agents with tools use the
        ReAct text path. `request_stop`: stop sequences sent in the request body."""

        json_response_format: dict[str, Any] | None = None
        text_tools: bool = False
        request_stop: list[str] | None = None
        _text_hook: TextHook | None = PrivateAttr(default=None)
        _streamed: list[str] = PrivateAttr(default_factory=list)

        def _prepare_completion_params(self, messages: Any, tools: Any = None) -> dict[str, Any]:
            params: dict[str, Any] = super()._prepare_completion_params(messages, tools)
            if self.json_response_format is not None:
                params["response_format"] = self.json_response_format
            if self.request_stop:
                params["stop"] = list(self.request_stop)
            return params

        def get_input_tokens_count(self, messages: Any, tools: Any = None, response_model: Any = None) -> int:
            # CrewAI's preflight estimate (one token per four characters), without its warning on
            # every call and without asking a token-count endpoint (none on llama.cpp)
            if isinstance(messages, str):
                chars = len(messages)
            else:
                chars = sum(len(str(m.get("content") or "")) for m in messages)
            return (chars + 3) // 4

        @model_validator(mode="after")
        def _init_clients(self) -> Any:
            # replaces CrewAI's validator of this name, which builds a sync and an async OpenAI
            # client (each with its own httpx pool) for every LLM, i.e. every crew run: about
            # 40% of the CPU of building a crew (bench/bench_crew_cpu.py). CrewAI builds a client
            # on first use when none is set; the sync one is shared (`_build_sync_client`).
            return self

        def _build_sync_client(self) -> Any:
            return _shared_sync_client(self._get_client_params(), self.interceptor)

        def _build_async_client(self) -> Any:
            # only CrewAI's async LLM calls get here (Flowstate's crews call the model from
            # CrewAI's step threads, synchronously, under `akickoff` too); an httpx async pool
            # belongs to one event loop, so it is not shared
            from crewai.llms.hooks.transport import AsyncHTTPTransport
            from openai import AsyncOpenAI

            config = self._get_client_params()
            if self.interceptor:
                transport = AsyncHTTPTransport(interceptor=self.interceptor, verify=_ssl_context())
                config["http_client"] = httpx.AsyncClient(transport=transport, verify=_ssl_context())
            return AsyncOpenAI(**config)

        def supports_function_calling(self) -> bool:
            return False if self.text_tools else bool(super().supports_function_calling())

        def _emit_stream_chunk_event(self, chunk: str, *args: Any, **kwargs: Any) -> None:
            # text pieces go to the hook (module docstring); tool-call pieces are not answer text
            if self._text_hook is not None and chunk and kwargs.get("tool_call") is None:
                self._streamed.append(chunk)
                self._text_hook(chunk)

        def _handle_streaming_completion(self, params: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            self._streamed = []
            try:
                return super()._handle_streaming_completion(params, *args, **kwargs)
            except StopGeneration:
                response = _last_response.get()
                if response is not None:
                    response.close()  # the server stops generating for a client that left
                return "".join(self._streamed)

    return FlowstateCompletion


#: The last response a crew LLM received in the current context (set by the shared recorder;
#: read to close a stream that `on_text` stopped). A call and its transport hooks run in one
#: thread and context: CrewAI's thread for that step of the crew.
_last_response: ContextVar[Any] = ContextVar("flowstate_crew_last_response", default=None)


@lru_cache(maxsize=1)
def _recorder() -> Any:
    """The process's CrewAI transport hook: remembers the last response of the calling thread's
    context (to close a stream early) and passes every message through the LLM meter's hook."""
    from crewai.llms.hooks.base import BaseInterceptor

    from observability.llm_meter import crewai_interceptor

    class ResponseRecorder(BaseInterceptor[Any, Any]):  # type: ignore[misc]
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def on_outbound(self, message: Any) -> Any:
            return self.inner.on_outbound(message)

        def on_inbound(self, message: Any) -> Any:
            response = self.inner.on_inbound(message)
            _last_response.set(response)
            return response

        async def aon_outbound(self, message: Any) -> Any:
            return await self.inner.aon_outbound(message)

        async def aon_inbound(self, message: Any) -> Any:
            response = await self.inner.aon_inbound(message)
            _last_response.set(response)
            return response

    return ResponseRecorder(crewai_interceptor())


#: Requests go out with TCP_NODELAY, as asyncio's and curl's sockets do: on a kept-alive
#: connection a request is written in pieces (headers, body), and Nagle's algorithm would hold a
#: piece back until the server acknowledged the last one (up to 40 ms with delayed ACKs).
_NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

_sync_clients: dict[str, Any] = {}
_sync_clients_lock = threading.Lock()


def _shared_sync_client(params: dict[str, Any], interceptor: Any) -> Any:
    """One `openai.OpenAI` client per endpoint settings (`params`: CrewAI's client parameters:
    key, base URL, timeout, retries, headers) and transport hook, shared by every crew LLM of the
    process: its httpx pool keeps connections to the model server open between runs. The OpenAI
    and httpx sync clients are safe to use from several threads. A process sees as many entries
    as endpoint configurations (one or two)."""
    from crewai.llms.hooks.transport import HTTPTransport
    from openai import OpenAI

    key = json.dumps(params, sort_keys=True, default=repr) + f"|{id(interceptor)}"
    with _sync_clients_lock:
        client = _sync_clients.get(key)
        if client is None:
            config = dict(params)
            if interceptor:
                transport = HTTPTransport(
                    interceptor=interceptor, verify=_ssl_context(), socket_options=_NO_DELAY
                )
                config["http_client"] = httpx.Client(transport=transport, verify=_ssl_context())
            client = _sync_clients[key] = OpenAI(**config)
    return client


def crew_llm(
    cfg: LLMConfig,
    *,
    schema: dict[str, Any] | type[BaseModel] | None = None,
    max_tokens: int | None = None,
    tools: bool = False,
    on_text: TextHook | None = None,
) -> BaseLLM:
    """A CrewAI LLM for one crew run on the endpoint of `cfg`.

    - `schema`: constrain the reply to JSON matching this schema (pydantic model class or schema
      dict), sent grammar-safe: `response_format(schema, cfg.dialect, safe=True)`.
    - `max_tokens`: reply cap in tokens (default and upper bound `cfg.max_tokens`).
    - `tools`: the agent uses tools; take the text (ReAct) path and stop at "Observation:".
    - `on_text`: stream the answer and call `on_text(piece)` with each piece of its text as it
      arrives (on the crew's thread); it may raise StopGeneration (module docstring). Exceptions
      other than StopGeneration propagate into CrewAI (the crew run fails).

    Returns an instance of CrewAI's native `OpenAICompletion` (what `crewai.LLM("openai/<name>",
    base_url=...)` builds), subclassed as described in the module docstring, traced (a no-op when
    tracing is off) and metered by `observability`. Builds no connection.
    """
    cls = _llm_class()
    cap = cfg.max_tokens if max_tokens is None else min(max_tokens, cfg.max_tokens)
    kwargs: dict[str, Any] = {
        "model": cfg.model,
        "base_url": cfg.base_url,
        "api_key": cfg.api_key,
        "custom_openai": True,
        "provider": "openai",
        "temperature": 0.0,
        "max_tokens": cap,
        "timeout": cfg.timeout_s,
        "max_retries": min(cfg.max_retries, 1),
        "json_response_format": None if schema is None else response_format(schema, cfg.dialect, safe=True),
        "text_tools": tools,
        "request_stop": REACT_STOP if tools else None,
    }
    from observability.tracing import ensure_crewai_instrumented

    ensure_crewai_instrumented()
    kwargs["interceptor"] = _recorder()
    if on_text is not None:
        kwargs["stream"] = True
    llm: Any = cls(**kwargs)
    llm._text_hook = on_text
    return llm  # type: ignore[no-any-return]
