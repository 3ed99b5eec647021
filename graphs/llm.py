"""The one door through which LangGraph nodes reach an LLM: a `ChatOpenAI` built from `LLMConfig`.

Every node that needs a model calls :func:`chat_model` (issue 4 wraps this factory with tracing
and guards, so no node may build its own client). Defaults suit the embedded llama.cpp server
with Qwen2.5-Coder-1.5B (shared/docs/offline.md): temperature 0, one retry, a capped
`max_tokens` (generation is ~4x slower than reading the prompt) and a request timeout.

Structured output: llama-cpp-python's server constrains the reply to a JSON schema when asked for
`response_format={"type": "json_object", "schema": {...}}` (grammar-constrained decoding) and
answers HTTP 500 to `{"type": "json_schema", ...}`; OpenAI's API and vLLM take the standard
`json_schema` form. LangChain's `with_structured_output(method="json_mode")` sends a bare
`{"type": "json_object"}` without the schema, so the model is free to invent values (measured:
it answered `{"intent": "query"}` for an enum of six intents); :func:`json_model` binds the schema
in the form the endpoint understands.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

    from config.settings import Settings
    from embedded.stack import Endpoints

#: Which flavour of the OpenAI API the endpoint speaks. "llama_cpp" (the embedded server):
#: JSON schemas go in `{"type": "json_object", "schema": ...}` and the reply cap must be sent as
#: `max_tokens` (llama-cpp-python ignores `max_completion_tokens`, which langchain-openai sends:
#: measured, a cap of 8 still generated 168 tokens). "openai": the standard `json_schema` form
#: and `max_completion_tokens` (OpenAI, vLLM, ...).
Dialect = Literal["llama_cpp", "openai"]

M = TypeVar("M", bound=BaseModel)


class LLMOutputError(ValueError):
    """The model answered, but not with JSON valid for the requested schema. `raw` is its text."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(f"{message}; the model answered {raw[:200]!r}")
        self.raw = raw


@dataclass(frozen=True)
class LLMConfig:
    """Where and how to call the chat model.

    - `base_url`: OpenAI-compatible API root ending in `/v1`; `api_key`: key to send.
    - `model`: model id; `timeout_s`: per-request timeout in seconds; `max_tokens`: reply cap.
    - `max_retries`: retries of a failed request by the OpenAI client (1: bounded, see issue 3).
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
        """The config for the LLM of a running stack (`embedded.stack.running_stack`).

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

    def with_limits(self, *, timeout_s: float | None = None, max_tokens: int | None = None) -> LLMConfig:
        """A copy with a tighter timeout and/or token cap (e.g. for a one-word classification)."""
        return replace(
            self,
            timeout_s=self.timeout_s if timeout_s is None else timeout_s,
            max_tokens=self.max_tokens if max_tokens is None else max_tokens,
        )


def chat_model(cfg: LLMConfig, *, streaming: bool = False) -> ChatOpenAI:
    """A `ChatOpenAI` for `cfg`: temperature 0, `cfg.max_retries` retries, `cfg.timeout_s`
    request timeout, `cfg.max_tokens` reply cap. Builds no connection until first used."""
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    from observability.llm_meter import openai_http_clients  # issue 4: LLM metrics

    cap: dict[str, Any] = (
        {"extra_body": {"max_tokens": cfg.max_tokens}}
        if cfg.dialect == "llama_cpp"
        else {"max_completion_tokens": cfg.max_tokens}
    )
    return ChatOpenAI(
        base_url=cfg.base_url,
        api_key=SecretStr(cfg.api_key),
        model=cfg.model,
        temperature=0,
        timeout=cfg.timeout_s,
        max_retries=cfg.max_retries,
        streaming=streaming,
        **cap,
        **openai_http_clients(),  # issue 4: every request counted by observability.llm_meter
    )


def response_format(
    schema: dict[str, Any] | type[BaseModel], dialect: Dialect = "llama_cpp"
) -> dict[str, Any]:
    """The `response_format` payload asking for JSON that matches `schema` (a JSON schema dict or
    a pydantic model class), in the form the endpoint's `dialect` understands."""
    js = schema.model_json_schema() if isinstance(schema, type) else schema
    if dialect == "llama_cpp":
        return {"type": "json_object", "schema": js}
    name = str(js.get("title") or "answer").replace(" ", "_")[:64]
    return {"type": "json_schema", "json_schema": {"name": name, "schema": js, "strict": False}}


def json_model(
    model: BaseChatModel, schema: dict[str, Any] | type[BaseModel], dialect: Dialect = "llama_cpp"
) -> Runnable[LanguageModelInput, BaseMessage]:
    """`model` bound to answer JSON matching `schema` (returns the AIMessage; parse with
    :func:`parse_json`). A model without `bind` support for `response_format` (fakes in tests)
    simply ignores it."""
    return model.bind(response_format=response_format(schema, dialect))


def parse_json(text: str | list[Any], schema: type[M]) -> M:
    """Validate a model's reply against `schema`. Tolerates a ```json fence around the object.
    Raises LLMOutputError when it is not valid JSON for the schema."""
    raw = text if isinstance(text, str) else "".join(str(p) for p in text)
    body = raw.strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    try:
        return schema.model_validate(json.loads(body))
    except (json.JSONDecodeError, ValidationError, TypeError) as exc:
        raise LLMOutputError(f"not a valid {schema.__name__}: {type(exc).__name__}", raw) from exc


async def ainvoke_json(
    model: BaseChatModel,
    messages: Sequence[BaseMessage] | Sequence[tuple[str, str]],
    schema: type[M],
    dialect: Dialect = "llama_cpp",
) -> M:
    """Ask `model` for one JSON answer matching the pydantic `schema` and validate it.

    Raises LLMOutputError for an invalid answer and lets the client's errors through
    (`openai.APITimeoutError`, `openai.APIConnectionError`, ...) so the caller decides the fallback.
    """
    reply = await json_model(model, schema, dialect).ainvoke(list(messages))
    return parse_json(reply.content, schema)
