"""The real embedded model: assemble (or reuse) the GGUF, start llama.cpp, get a completion."""

from __future__ import annotations

import time

import httpx
import pytest

from config.settings import Settings
from embedded.llm import MODEL_SHA256, model_path, start_llm
from tests.embedded.conftest import free_port


@pytest.mark.llm
def test_embedded_llm_answers_a_chat_completion() -> None:
    # The model cache of the configured data dir (default .data/) is shared with `make run`, so
    # the 1.1 GB file is assembled once per machine; the server gets a port of its own.
    settings = Settings(FLOWSTATE_LLM_PORT=free_port())  # type: ignore[call-arg]
    llm = start_llm(settings, settings.data_dir, show_progress=False)
    try:
        assert llm.started_here
        assert llm.base_url == f"http://127.0.0.1:{settings.llm_port}/v1"
        assert llm.model_path == model_path(settings.data_dir)
        marker = llm.model_path.with_name(llm.model_path.name + ".verified.json")
        assert MODEL_SHA256 in marker.read_text()

        models = httpx.get(f"{llm.base_url}/models", timeout=10).json()
        assert [m["id"] for m in models["data"]] == [settings.llm_model]

        started = time.perf_counter()
        resp = httpx.post(
            f"{llm.base_url}/chat/completions",
            json={
                "model": settings.llm_model,
                "messages": [
                    {"role": "system", "content": "You answer with one word."},
                    {"role": "user", "content": "What is the capital of France?"},
                ],
                "max_tokens": 8,
                "temperature": 0,
            },
            timeout=120,
        )
        elapsed = time.perf_counter() - started
        assert resp.status_code == 200, resp.text
        answer = resp.json()["choices"][0]["message"]["content"]
        assert "paris" in answer.lower(), answer
        assert resp.json()["usage"]["completion_tokens"] <= 8
        assert elapsed < 60
    finally:
        llm.stop()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{llm.base_url}/models", timeout=2)
