"""The LLM layer: one config, structured output, and the two doors to the model.

- `LLMConfig`, `Dialect`: where and how to call the model (`llm.config`).
- `response_format`, `grammar_safe`, `json_schema_of`, `extract_json`, `parse_json`,
  `parse_output`, `LLMOutputError`: asking for and reading JSON answers (`llm.structured`).
- `chat_model`, `json_model`, `ainvoke_json`: LangChain's `ChatOpenAI` for LangGraph nodes
  (`llm.chat`; imports langchain-openai when called).
- `crew_llm`, `apply_offline_env`: CrewAI's LLM for crews (`llm.crewai`; imports crewai when
  called); `crew_llm(..., on_text=hook)` streams the answer to `hook`, which may raise
  `StopGeneration` to end it early; `warm_up_crews()` loads what the first crew call would.

Usage (calls, tokens) is counted by `observability.llm_meter.usage_scope()` only.
"""

from llm.chat import ainvoke_json, chat_model, json_model
from llm.config import Dialect, LLMConfig
from llm.crewai import REACT_STOP, StopGeneration, TextHook, apply_offline_env, crew_llm
from llm.crewai import warm_up as warm_up_crews
from llm.structured import (
    GRAMMAR_UNSAFE_KEYWORDS,
    LLMOutputError,
    extract_json,
    grammar_safe,
    json_schema_of,
    parse_json,
    parse_output,
    response_format,
)

__all__ = [
    "GRAMMAR_UNSAFE_KEYWORDS",
    "REACT_STOP",
    "Dialect",
    "LLMConfig",
    "LLMOutputError",
    "StopGeneration",
    "TextHook",
    "ainvoke_json",
    "apply_offline_env",
    "chat_model",
    "crew_llm",
    "extract_json",
    "grammar_safe",
    "json_model",
    "json_schema_of",
    "parse_json",
    "parse_output",
    "response_format",
    "warm_up_crews",
]
