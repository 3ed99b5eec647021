"""Fixtures for the observability tests: a local OTLP receiver standing in for Langfuse, a stub
OpenAI-compatible LLM, and tracing set up against them (torn down after each test)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from config.settings import Settings, get_settings
from observability.prices import ModelPrice, PriceTable, use_price_table
from observability.tracing import Tracing, setup_tracing
from tests.support.otlp_receiver import OTLPReceiver
from tests.support.stub_llm import StubLLM

PUBLIC_KEY = "pk-lf-test"
SECRET_KEY = "sk-lf-test"
BASIC_AUTH = "Basic " + base64.b64encode(f"{PUBLIC_KEY}:{SECRET_KEY}".encode()).decode()

#: USD per 1M tokens for the stub's model, so every generation gets a known cost.
STUB_PRICE = ModelPrice(prompt=1.0, completion=2.0)
TEST_PRICES = PriceTable(models={"stub-model": STUB_PRICE})

LANGFUSE_VARS = ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LANGFUSE_BASE_URL", "LANGFUSE_HOST")


def langfuse_settings(mp: pytest.MonkeyPatch, base_url: str | None, *, keys: bool = True) -> Settings:
    """Settings with the Langfuse variables of a test (and nothing from the outer environment)."""
    for var in LANGFUSE_VARS:
        mp.delenv(var, raising=False)
    if keys:
        mp.setenv("LANGFUSE_PUBLIC_KEY", PUBLIC_KEY)
        mp.setenv("LANGFUSE_SECRET_KEY", SECRET_KEY)
    if base_url is not None:
        mp.setenv("LANGFUSE_BASE_URL", base_url)
    get_settings.cache_clear()
    return Settings(_env_file=None)  # a developer's .env must not switch tracing on or off here


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """Settings cached during a test (with its Langfuse variables) do not outlive it."""
    yield
    get_settings.cache_clear()


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def stub_llm() -> Iterator[StubLLM]:
    with StubLLM() as stub:
        yield stub


@pytest.fixture
def tracing(otlp_receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tracing]:
    """Tracing on, exporting to `otlp_receiver`, with the stub model priced (TEST_PRICES)."""
    settings = langfuse_settings(monkeypatch, otlp_receiver.base_url)
    active = setup_tracing(settings, prices=TEST_PRICES)
    assert active.enabled
    try:
        yield active
    finally:
        active.shutdown()
        use_price_table(None)
        get_settings.cache_clear()
