"""Structured output: the `response_format` asking for JSON of a schema, and reading the answer.

llama-cpp-python's server constrains the reply to a JSON schema when asked for
`response_format={"type": "json_object", "schema": {...}}` (grammar-constrained decoding) and
answers HTTP 500 to `{"type": "json_schema", ...}`; OpenAI's API and vLLM take the standard
`json_schema` form (see `llm.config.Dialect`). Frameworks' own structured-output switches do not
fit that server: LangChain's `with_structured_output(method="json_mode")` sends a bare
`{"type": "json_object"}` without the schema (measured: the model then answered
`{"intent": "query"}` for an enum of six intents), and CrewAI's `output_pydantic`/`output_json`
ask for `json_schema`. So both doors send the payload built here.

Reading: :func:`extract_json` is the one way to cut the JSON object out of a model's text;
:func:`parse_json` (LangChain replies, raises :class:`LLMOutputError`) and :func:`parse_output`
(crew answers, raises pydantic's `ValidationError`) validate what it returns.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from llm.config import Dialect

M = TypeVar("M", bound=BaseModel)

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

_FENCE = re.compile(r"^```[a-zA-Z]*\s*(.*?)\s*```$", re.S)


class LLMOutputError(ValueError):
    """The model answered, but not with JSON valid for the requested schema. `raw` is its text."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(f"{message}; the model answered {raw[:200]!r}")
        self.raw = raw


# --------------------------------------------------------------------------------------------
# asking
# --------------------------------------------------------------------------------------------


def grammar_safe(schema: Any) -> Any:
    """`schema` (a JSON schema, or any part of one) without the keywords of
    GRAMMAR_UNSAFE_KEYWORDS, recursively; property names that happen to equal a keyword are
    kept. Returns a new structure; `schema` is not changed."""
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
        # a fresh copy: callers may edit it, and the model's schema is built once per class
        return copy.deepcopy(_model_schema(schema))
    out: dict[str, Any] = grammar_safe(schema)
    return out


@functools.lru_cache(maxsize=256)
def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`json_schema_of` of a model class, computed once per class (pydantic builds the schema
    anew on every `model_json_schema` call: about a millisecond a crew run)."""
    safe: dict[str, Any] = _all_required(grammar_safe(model.model_json_schema()))
    return safe


def response_format(
    schema: dict[str, Any] | type[BaseModel], dialect: Dialect = "llama_cpp", *, safe: bool = False
) -> dict[str, Any]:
    """The `response_format` request field asking for JSON that matches `schema` (a JSON schema
    dict or a pydantic model class), in the form the endpoint's `dialect` understands:
    `{"type": "json_object", "schema": ...}` for "llama_cpp",
    `{"type": "json_schema", "json_schema": {"name", "schema", "strict": False}}` for "openai"
    (`name` from the schema's title, else "answer").

    `safe` picks which schema is sent, so that each door keeps the request it always sent:

    - False (LangGraph nodes, :func:`llm.chat.json_model`): the schema as given (for a model
      class, `model_json_schema()` unchanged);
    - True (crews, :func:`llm.crewai.crew_llm`): :func:`json_schema_of` it (no grammar-unsafe
      bounds; every property of a model class required).
    """
    if safe:
        js = json_schema_of(schema)
    else:
        js = schema.model_json_schema() if isinstance(schema, type) else schema
    if dialect == "llama_cpp":
        return {"type": "json_object", "schema": js}
    name = str(js.get("title") or "answer").replace(" ", "_")[:64]
    return {"type": "json_schema", "json_schema": {"name": name, "schema": js, "strict": False}}


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def extract_json(text: str) -> str:
    """The JSON object in a model answer: strips a ``` fence (with or without a language tag)
    and any text around the outermost braces ("Here is the JSON: {...}", or an opening fence
    whose closing one the token cap cut off). Returns the stripped text unchanged if it has no
    braces (the caller's JSON parser then reports the error)."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    start, end = body.find("{"), body.rfind("}")
    if start > 0 or (start >= 0 and end < len(body) - 1):
        body = body[start : end + 1]
    return body


def parse_json(text: str | list[Any], schema: type[M]) -> M:
    """Validate a LangChain reply's content (a string, or a list of content parts joined as
    text) against the pydantic `schema`, after :func:`extract_json`.
    Raises LLMOutputError (with the raw text) when it is not valid JSON for the schema."""
    raw = text if isinstance(text, str) else "".join(str(p) for p in text)
    try:
        return schema.model_validate(json.loads(extract_json(raw)))
    except (json.JSONDecodeError, ValidationError, TypeError) as exc:
        raise LLMOutputError(f"not a valid {schema.__name__}: {type(exc).__name__}", raw) from exc


def parse_output(text: str, model: type[M]) -> M:
    """Validate a crew's answer against `model` after :func:`extract_json`, in pydantic's JSON
    mode. Raises pydantic.ValidationError (invalid JSON included): its `errors()` are what the
    crew's retry tells the model."""
    return model.model_validate_json(extract_json(text))
