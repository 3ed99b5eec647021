"""The LLM layer's structured output: the JSON schema sent to the server (grammar-safe for
llama.cpp, the standard form for OpenAI) and reading JSON out of a model's answer."""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from llm import extract_json, json_schema_of, parse_output, response_format


class Answer(BaseModel):
    reply: str = Field(min_length=1, max_length=1500)
    score: int = Field(0, ge=0, le=100)


def test_schema_sent_to_the_server_has_no_length_bounds() -> None:
    # llama.cpp turned maxLength 1500 into a grammar it could not parse, then crashed
    schema = json_schema_of(Answer)
    text = json.dumps(schema)
    for word in ("maxLength", "minLength", "maximum", "minimum"):
        assert word not in text
    assert schema["required"] == ["reply", "score"]  # every key asked for
    assert response_format(Answer, safe=True)["type"] == "json_object"
    assert response_format(Answer, "openai", safe=True)["json_schema"]["schema"] == schema


def test_extract_json_tolerates_fences_and_chatter() -> None:
    assert extract_json('```json\n{"reply": "a"}\n```') == '{"reply": "a"}'
    assert extract_json('Here it is: {"reply": "a"} hope it helps') == '{"reply": "a"}'
    assert parse_output('```\n{"reply": "a", "score": 1}\n```', Answer).score == 1
