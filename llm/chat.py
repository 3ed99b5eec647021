"""The one door through which LangGraph nodes reach an LLM: a `ChatOpenAI` built from `LLMConfig`.

Every node that needs a model calls :func:`chat_model` (no node builds its own client, so every
request is metered by `observability.llm_meter`). Defaults suit the embedded llama.cpp server
with Qwen2.5-Coder-1.5B: temperature 0, `cfg.max_retries` retries, a capped `max_tokens`
(generation is ~4x slower than reading the prompt) and a request timeout. :func:`json_model`
binds a JSON schema in the form the endpoint understands (see `llm.structured`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from llm.config import Dialect, LLMConfig
from llm.structured import parse_json, response_format

if TYPE_CHECKING:
    # annotations only: importing `llm` stays cheap (LangChain loads when a model is built)
    from langchain_core.language_models import BaseChatModel, LanguageModelInput
    from langchain_core.messages import BaseMessage
    from langchain_core.runnables import Runnable
    from langchain_openai import ChatOpenAI

M = TypeVar("M", bound=BaseModel)


def chat_model(cfg: LLMConfig, *, streaming: bool = False) -> ChatOpenAI:
    """A `ChatOpenAI` for `cfg`: temperature 0, `cfg.max_retries` retries, `cfg.timeout_s`
    request timeout, `cfg.max_tokens` reply cap (as `max_tokens` in the body for "llama_cpp",
    `max_completion_tokens` for "openai"), on the metered HTTP clients of
    `observability.llm_meter`. Builds no connection until first used."""
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    from observability.llm_meter import openai_http_clients

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
        **openai_http_clients(),  # every request counted by observability.llm_meter
    )


def json_model(
    model: BaseChatModel, schema: dict[str, Any] | type[BaseModel], dialect: Dialect = "llama_cpp"
) -> Runnable[LanguageModelInput, BaseMessage]:
    """`model` bound to answer JSON matching `schema` (a schema dict or pydantic model class,
    sent as given: `response_format(schema, dialect)`); the runnable returns the AIMessage, to
    parse with `llm.parse_json`. A model without `bind` support for `response_format` (fakes in
    tests) simply ignores it."""
    return model.bind(response_format=response_format(schema, dialect))


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
