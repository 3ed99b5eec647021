"""The one factory for CrewAI LLMs, and the per-turn count of LLM calls and tokens.

Every crew agent gets its model from :func:`crew_llm` (issue 4 wraps this factory with tracing;
no crew may build its own client). The settings follow what was measured against the embedded
llama.cpp server with Qwen2.5-Coder-1.5B (shared/docs/offline.md, "CrewAI against the local
model"):

- CrewAI's native OpenAI provider (the `openai` SDK, not litellm), posting to
  `{base_url}/chat/completions`; `custom_openai=True` so any model name is accepted.
- Temperature 0, `max_retries` <= 1 and a request timeout: CrewAI's defaults multiply a failure
  into many requests. `max_tokens` capped: generation is ~4x slower than reading the prompt.
- Structured output as `response_format={"type": "json_object", "schema": ...}` (grammar-
  constrained decoding on llama.cpp). Not `output_pydantic`/`output_json`: they make CrewAI ask
  for `json_schema`, which this server answers with HTTP 500. CrewAI types `response_format` as
  `{"type": "json_object"}` only and silently drops a `schema` key, so the subclass below adds the
  schema when it builds the request. An endpoint configured with `json_format="json_schema"`
  (OpenAI, vLLM) gets the standard form instead.
- No native function calling when tools are used: the tool-call JSON came back as the final
  answer. Agents with tools take CrewAI's text (ReAct) path, with `stop=["\\nObservation:"]` sent
  in the request body (the native client does not send CrewAI's stop words to the server, and the
  model then invents observations).

Counting: llama.cpp returns `usage` on non-streaming responses; every request made through a
:func:`crew_llm` model is added to each :func:`track_usage` scope active in the calling context
(contextvars follow `asyncio.to_thread`, which `Crew.kickoff_async` uses), so a chat turn can report
its calls and tokens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel

if TYPE_CHECKING:
    from crewai.llms.base_llm import BaseLLM

JsonFormat = Literal["json_object", "json_schema"]

#: Stop sequence of CrewAI's ReAct text path (see module docstring).
REACT_STOP = ["\nObservation:"]


class LLMSettings(Protocol):
    """What :func:`crew_llm` needs to know about the endpoint. `graphs.llm.LLMConfig` fits it;
    so does :class:`CrewLLMConfig`. `max_retries` and `json_format` are optional attributes
    (defaults 1 and "json_object"); `dialect="openai"` (graphs.llm) means `json_format="json_schema"`."""

    @property
    def base_url(self) -> str: ...
    @property
    def api_key(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def timeout_s(self) -> float: ...
    @property
    def max_tokens(self) -> int: ...


@dataclass(frozen=True)
class CrewLLMConfig:
    """A concrete :class:`LLMSettings` (for tests, benchmarks and scripts).

    `base_url` ends in `/v1`; `timeout_s` is the per-request timeout in seconds; `max_tokens` the
    default reply cap; `max_retries` the OpenAI client's retries of a failed request."""

    base_url: str
    api_key: str
    model: str
    timeout_s: float = 60.0
    max_tokens: int = 384
    max_retries: int = 1
    json_format: JsonFormat = "json_object"


# --------------------------------------------------------------------------------------------
# usage accounting
# --------------------------------------------------------------------------------------------


@dataclass
class LLMUsage:
    """LLM requests and tokens counted in one scope (a chat turn, a crew run, a benchmark row).

    `calls` counts every request sent (failed ones included, also in `failures`); tokens are the
    server-reported `usage` of the successful ones."""

    calls: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    durations_s: list[float] = field(default_factory=list)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: LLMUsage) -> None:
        """Add `other`'s counts to this one."""
        self.calls += other.calls
        self.failures += other.failures
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.durations_s.extend(other.durations_s)

    def as_dict(self) -> dict[str, int]:
        return {
            "llm_calls": self.calls,
            "llm_failures": self.failures,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


_SCOPES: ContextVar[tuple[LLMUsage, ...]] = ContextVar("flowstate_llm_usage_scopes", default=())


@contextlib.contextmanager
def track_usage() -> Iterator[LLMUsage]:
    """Count every request made through :func:`crew_llm` models inside the block (nested scopes
    each see the calls made while they are open)."""
    usage = LLMUsage()
    token = _SCOPES.set((*_SCOPES.get(), usage))
    try:
        yield usage
    finally:
        _SCOPES.reset(token)


def _record(
    *,
    call: bool = False,
    failure: bool = False,
    usage: dict[str, Any] | None = None,
    duration_s: float | None = None,
) -> None:
    for scope in _SCOPES.get():
        if call:
            scope.calls += 1
        if failure:
            scope.failures += 1
        if usage:
            scope.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            scope.completion_tokens += int(usage.get("completion_tokens") or 0)
        if duration_s is not None:
            scope.durations_s.append(duration_s)


# --------------------------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------------------------


def apply_offline_env() -> None:
    """Set the switches that keep CrewAI (and litellm, tiktoken) offline and quiet; must run
    before `import crewai` (offline.md "Switches"). Idempotent and cheap."""
    from config.runtime_env import apply_offline_defaults

    apply_offline_defaults()


# --------------------------------------------------------------------------------------------
# the factory
# --------------------------------------------------------------------------------------------


#: JSON-schema keywords dropped before a schema goes to the server. llama.cpp turns length and
#: count bounds into grammar repetitions: `maxLength: 1500` failed with "number of rules that are
#: going to be repeated ... exceeds sane defaults", and the server then crashed (segfault in
#: libllama, measured). Pydantic still enforces every bound when the answer is validated.
GRAMMAR_UNSAFE_KEYWORDS = frozenset(
    {
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "uniqueItems",
    }
)


def grammar_safe(schema: Any) -> Any:
    """`schema` without the keywords of GRAMMAR_UNSAFE_KEYWORDS (recursively); property names
    that happen to equal a keyword are kept."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key in GRAMMAR_UNSAFE_KEYWORDS and not isinstance(value, dict):
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: grammar_safe(sub) for name, sub in value.items()}
            else:
                out[key] = grammar_safe(value)
        return out
    if isinstance(schema, list):
        return [grammar_safe(v) for v in schema]
    return schema


def _all_required(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _all_required(v) for k, v in schema.items()}
        if isinstance(out.get("properties"), dict):
            out["required"] = list(out["properties"])
        return out
    if isinstance(schema, list):
        return [_all_required(v) for v in schema]
    return schema


def json_schema_of(schema: dict[str, Any] | type[BaseModel]) -> dict[str, Any]:
    """A grammar-safe JSON schema dict for `schema` (a pydantic model class or a schema dict).
    For a model class every property is made required: a small model fills in every key it is
    shown (fields with defaults still validate when missing)."""
    if isinstance(schema, type):
        safe: dict[str, Any] = _all_required(grammar_safe(schema.model_json_schema()))
        return safe
    out: dict[str, Any] = grammar_safe(schema)
    return out


def response_format(
    schema: dict[str, Any] | type[BaseModel], json_format: JsonFormat = "json_object"
) -> dict[str, Any]:
    """The `response_format` request field for JSON matching `schema`: llama.cpp's
    `{"type": "json_object", "schema": ...}` or OpenAI's `{"type": "json_schema", ...}`."""
    js = json_schema_of(schema)
    if json_format == "json_object":
        return {"type": "json_object", "schema": js}
    name = str(js.get("title") or "answer").replace(" ", "_")[:64]
    return {"type": "json_schema", "json_schema": {"name": name, "schema": js, "strict": False}}


@lru_cache(maxsize=1)
def _llm_class() -> type[BaseLLM]:
    """The `OpenAICompletion` subclass (built lazily: importing crewai takes ~5 s)."""
    apply_offline_env()
    import time

    from crewai.llms.providers.openai.completion import OpenAICompletion

    class FlowstateCompletion(OpenAICompletion):
        """CrewAI's native OpenAI provider with Flowstate's request shape and usage counting.

        `json_response_format`: the full `response_format` to send (CrewAI's own field drops a
        schema). `text_tools`: report no native function calling, so agents with tools use the
        ReAct text path. `request_stop`: stop sequences sent in the request body."""

        json_response_format: dict[str, Any] | None = None
        text_tools: bool = False
        request_stop: list[str] | None = None

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

        def supports_function_calling(self) -> bool:
            return False if self.text_tools else bool(super().supports_function_calling())

        def _track_token_usage_internal(self, usage_data: dict[str, Any]) -> None:
            _record(usage=usage_data)
            super()._track_token_usage_internal(usage_data)

        def call(self, *args: Any, **kwargs: Any) -> Any:
            _record(call=True)
            start = time.perf_counter()
            try:
                return super().call(*args, **kwargs)
            except Exception:
                _record(failure=True)
                raise
            finally:
                _record(duration_s=time.perf_counter() - start)

        async def acall(self, *args: Any, **kwargs: Any) -> Any:
            _record(call=True)
            start = time.perf_counter()
            try:
                return await super().acall(*args, **kwargs)
            except Exception:
                _record(failure=True)
                raise
            finally:
                _record(duration_s=time.perf_counter() - start)

    return FlowstateCompletion


def crew_llm(
    cfg: LLMSettings,
    *,
    schema: dict[str, Any] | type[BaseModel] | None = None,
    max_tokens: int | None = None,
    tools: bool = False,
) -> BaseLLM:
    """A CrewAI LLM for one crew run.

    - `schema`: constrain the reply to JSON matching this schema (pydantic model or dict).
    - `max_tokens`: reply cap (default and upper bound `cfg.max_tokens`).
    - `tools`: the agent uses tools; take the text (ReAct) path and stop at "Observation:".

    Returns an instance of CrewAI's native `OpenAICompletion` (what `crewai.LLM("openai/<name>",
    base_url=...)` builds), subclassed as described in the module docstring. Builds no connection.
    """
    cls = _llm_class()
    json_format: JsonFormat = getattr(cfg, "json_format", "json_object")
    if getattr(cfg, "dialect", None) == "openai":  # graphs.llm.LLMConfig names it `dialect`
        json_format = "json_schema"
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
        "max_retries": min(int(getattr(cfg, "max_retries", 1)), 1),
        "json_response_format": None if schema is None else response_format(schema, json_format),
        "text_tools": tools,
        "request_stop": REACT_STOP if tools else None,
    }
    # issue 4 (observability): trace crews in Langfuse (no-op when tracing is off) and count
    # every request of this LLM in the Prometheus metrics (observability.llm_meter).
    from observability.llm_meter import crewai_interceptor
    from observability.tracing import ensure_crewai_instrumented

    ensure_crewai_instrumented()
    kwargs["interceptor"] = crewai_interceptor()
    return cls(**kwargs)
