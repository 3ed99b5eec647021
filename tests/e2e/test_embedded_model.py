"""The real embedded model: assemble (or reuse) the GGUF, start llama.cpp, get a completion on
the machine running the tests (a build this CPU cannot run fails here), and survive a crash."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from config.settings import Settings
from embedded.health import check_components
from embedded.llm import EMBEDDED_API_KEY, MODEL_SHA256, model_path, start_llm
from embedded.stack import Endpoints
from embedded.supervisor import ServerState
from tests.embedded.conftest import free_port


def _complete(base_url: str, model: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/chat/completions",
        json={
            "model": model,
            "messages": [
                {"role": "system", "content": "You answer with one word."},
                {"role": "user", "content": "What is the capital of France?"},
            ],
            "max_tokens": 8,
            "temperature": 0,
        },
        timeout=120,
    )


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
        resp = _complete(llm.base_url, settings.llm_model)
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


@pytest.mark.llm
def test_a_crashed_model_server_is_reported_and_restarted() -> None:
    settings = Settings(FLOWSTATE_LLM_PORT=free_port())  # type: ignore[call-arg]
    llm = start_llm(settings, settings.data_dir, show_progress=False)
    assert llm.supervisor is not None and llm.state_path is not None
    endpoints = Endpoints(
        database_url="",
        redis_url=None,
        openai_base_url=llm.base_url,
        openai_api_key=EMBEDDED_API_KEY,
        llm_model=settings.llm_model,
        embedded=frozenset({"llm"}),
        llm_state_path=str(llm.state_path),
    )
    try:
        first = llm.supervisor.proc
        assert first is not None
        # what a CPU without the instructions of the build does to the server
        first.send_signal(signal.SIGILL)
        first.wait(timeout=10)
        reported = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            (llm_status,) = [c for c in asyncio.run(check_components(endpoints)) if c.name == "llm"]
            if not llm_status.ok:
                reported = llm_status
                break
            time.sleep(0.1)
        assert reported is not None, "health did not notice the crash"
        assert reported.last_exit is not None and reported.last_exit.signal == "SIGILL"
        assert "killed by SIGILL" in reported.detail

        deadline = time.monotonic() + 120
        while True:
            state = ServerState.read(llm.state_path)
            if state is not None and state.status == "running" and state.pid != first.pid:
                break
            assert time.monotonic() < deadline, f"the server was not restarted: {state}"
            time.sleep(0.25)
        assert state.restarts == 1
        resp = _complete(llm.base_url, settings.llm_model)
        assert resp.status_code == 200, resp.text
        assert "paris" in resp.json()["choices"][0]["message"]["content"].lower()
        (after,) = [c for c in asyncio.run(check_components(endpoints)) if c.name == "llm"]
        assert after.ok and "restarted 1 time; last crash: killed by SIGILL" in after.detail
    finally:
        llm.stop()
