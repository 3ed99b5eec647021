"""Where and how to call the chat model: one `LLMConfig` for LangGraph nodes and crews alike."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from config.settings import Settings
    from embedded.stack import Endpoints

#: Which flavour of the OpenAI API the endpoint speaks.
#:
#: - "llama_cpp" (the embedded llama-cpp-python server): a JSON schema goes in
#:   `response_format={"type": "json_object", "schema": ...}` (it answers HTTP 500 to
#:   `json_schema`), and the reply cap must be sent as `max_tokens` (it ignores
#:   `max_completion_tokens`, which langchain-openai sends: measured, a cap of 8 still generated
#:   168 tokens).
#: - "openai" (OpenAI, vLLM, ...): the standard `{"type": "json_schema", ...}` form and
#:   `max_completion_tokens`.
Dialect = Literal["llama_cpp", "openai"]


@dataclass(frozen=True)
class LLMConfig:
    """Where and how to call the chat model.

    - `base_url`: OpenAI-compatible API root ending in `/v1`; `api_key`: the key to send.
    - `model`: model id; `timeout_s`: per-request timeout in seconds; `max_tokens`: reply cap
      in tokens.
    - `max_retries`: retries of a failed request by the OpenAI client (1 keeps a failure from
      multiplying into many requests; crews never use more than 1).
    - `dialect`: "llama_cpp" or "openai", see `Dialect`.
    """

    base_url: str
    api_key: str
    model: str
    timeout_s: float = 60.0
    max_tokens: int = 384
    max_retries: int = 1
    dialect: Dialect = "llama_cpp"

    @classmethod
    def from_endpoints(cls, endpoints: Endpoints, settings: Settings) -> LLMConfig:
        """The config for the LLM of a running stack (`embedded.stack.running_stack`), with the
        timeout and token cap of `settings`.

        The embedded llama.cpp server gets the "llama_cpp" dialect, any external endpoint the
        "openai" one (an external llama.cpp server: set the dialect with `dataclasses.replace`).
        Raises ValueError if the stack has no LLM.
        """
        if endpoints.openai_base_url is None:
            raise ValueError("the running stack has no LLM (start it with need={'llm', ...})")
        return cls(
            base_url=endpoints.openai_base_url,
            api_key=endpoints.openai_api_key,
            model=endpoints.llm_model,
            timeout_s=settings.llm_timeout_s,
            max_tokens=settings.llm_max_tokens,
            dialect="llama_cpp" if "llm" in endpoints.embedded else "openai",
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMConfig:
        """The config from settings alone (no running stack known): the configured
        OpenAI-compatible endpoint ("openai" dialect; `https://api.openai.com/v1` when only a key
        is set), else the embedded llama.cpp server on `settings.llm_port` ("llama_cpp")."""
        from embedded.llm import EMBEDDED_API_KEY

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else EMBEDDED_API_KEY
        base = settings.openai_base_url or (
            "https://api.openai.com/v1"
            if settings.openai_api_key
            else f"http://127.0.0.1:{settings.llm_port}/v1"
        )
        return cls(
            base_url=base,
            api_key=key,
            model=settings.llm_model,
            timeout_s=settings.llm_timeout_s,
            max_tokens=settings.llm_max_tokens,
            dialect="llama_cpp" if settings.llm_is_embedded else "openai",
        )

    def with_limits(self, *, timeout_s: float | None = None, max_tokens: int | None = None) -> LLMConfig:
        """A copy with another timeout (seconds) and/or token cap (e.g. a one-word
        classification); None keeps the current value."""
        return replace(
            self,
            timeout_s=self.timeout_s if timeout_s is None else timeout_s,
            max_tokens=self.max_tokens if max_tokens is None else max_tokens,
        )
