"""Start-up rules of the embedded llama.cpp server that need no model."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import Settings
from embedded.llm import LLMStartError, server_command, start_llm
from tests.embedded.conftest import StubOpenAI


def test_server_command_uses_the_settings_and_queues_requests(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        FLOWSTATE_LLM_PORT=9123, FLOWSTATE_LLM_CTX=4096, FLOWSTATE_LLM_THREADS=3, FLOWSTATE_LLM_MODEL="m1"
    )
    argv = server_command(settings, tmp_path / "model.gguf")
    flags = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert argv[1:3] == ["-m", "llama_cpp.server"]
    assert flags == {
        "--model": str(tmp_path / "model.gguf"),
        "--model_alias": "m1",
        "--host": "127.0.0.1",
        "--port": "9123",
        "--n_ctx": "4096",
        "--n_threads": "3",
        "--n_threads_batch": "3",
        "--logits_all": "False",
        # the default (True) cuts a streaming answer short whenever another request arrives
        "--interrupt_requests": "False",
        # prompt states kept in RAM, so alternating prompts keep their cached prefixes
        "--cache": "True",
        "--cache_type": "ram",
        "--cache_size": str(1 << 30),
    }


def test_a_port_taken_by_another_program_is_refused_before_assembling(
    tmp_path: Path, stub_openai: StubOpenAI
) -> None:
    port = int(stub_openai.base_url.rsplit(":", 1)[1].split("/")[0])
    settings = Settings(FLOWSTATE_LLM_PORT=port)  # type: ignore[call-arg]
    with pytest.raises(LLMStartError, match=f"port {port} is in use by another program"):
        start_llm(settings, tmp_path, show_progress=False)
    assert not (tmp_path / "models").exists()
