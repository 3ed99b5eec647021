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
- No native function calling when tools are used: the tool-call JSON came back as the final
  answer. Agents with tools take CrewAI's text (ReAct) path, with `stop=["\\nObservation:"]` sent
  in the request body (the native client does not send CrewAI's stop words to the server, and the
  model then invents observations).

Usage (calls, tokens) is not counted here: `observability.llm_meter` counts every request at the
HTTP boundary (the interceptor installed below); open `observability.llm_meter.usage_scope()`
around a run to read its share.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from llm.config import LLMConfig
from llm.structured import response_format

if TYPE_CHECKING:
    from crewai.llms.base_llm import BaseLLM

#: Stop sequence of CrewAI's ReAct text path (see the module docstring).
REACT_STOP = ["\nObservation:"]


def apply_offline_env() -> None:
    """Set the switches that keep CrewAI (and litellm, tiktoken) offline and quiet; must run
    before `import crewai` (they are read at import time). Idempotent and cheap."""
    from config.runtime_env import apply_offline_defaults

    apply_offline_defaults()


@lru_cache(maxsize=1)
def _llm_class() -> type[BaseLLM]:
    """The `OpenAICompletion` subclass (built lazily: importing crewai takes ~5 s)."""
    apply_offline_env()
    from crewai.llms.providers.openai.completion import OpenAICompletion

    class FlowstateCompletion(OpenAICompletion):
        """CrewAI's native OpenAI provider with Flowstate's request shape.

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

    return FlowstateCompletion


def crew_llm(
    cfg: LLMConfig,
    *,
    schema: dict[str, Any] | type[BaseModel] | None = None,
    max_tokens: int | None = None,
    tools: bool = False,
) -> BaseLLM:
    """A CrewAI LLM for one crew run on the endpoint of `cfg`.

    - `schema`: constrain the reply to JSON matching this schema (pydantic model class or schema
      dict), sent grammar-safe: `response_format(schema, cfg.dialect, safe=True)`.
    - `max_tokens`: reply cap in tokens (default and upper bound `cfg.max_tokens`).
    - `tools`: the agent uses tools; take the text (ReAct) path and stop at "Observation:".

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
    from observability.llm_meter import crewai_interceptor
    from observability.tracing import ensure_crewai_instrumented

    ensure_crewai_instrumented()
    kwargs["interceptor"] = crewai_interceptor()
    return cls(**kwargs)
