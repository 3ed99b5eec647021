"""The offline switches applied before CrewAI/LiteLLM/Guardrails are imported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config import runtime_env


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in [*runtime_env.OFFLINE_DEFAULTS, "TIKTOKEN_CACHE_DIR", "OTEL_SDK_DISABLED"]:
        monkeypatch.delenv(key, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def test_sets_defaults_without_overriding_and_never_disables_otel(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREWAI_TRACING_ENABLED", "true")  # a deployment's own choice wins
    runtime_env.apply_offline_defaults()
    assert os.environ["CREWAI_DISABLE_TELEMETRY"] == "true"
    assert os.environ["CREWAI_DISABLE_VERSION_CHECK"] == "true"
    assert os.environ["CREWAI_TRACING_ENABLED"] == "true"
    assert "OTEL_SDK_DISABLED" not in os.environ  # would switch Langfuse off too
    tokenizers = Path(os.environ["TIKTOKEN_CACHE_DIR"])
    assert tokenizers.parts[-3:] == ("litellm", "litellm_core_utils", "tokenizers")
    assert any(p.stat().st_size > 100_000 for p in tokenizers.iterdir())  # the bundled encodings
