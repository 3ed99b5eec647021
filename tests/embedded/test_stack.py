"""`running_stack`: configured services must answer (no silent fallback); unset ones are started
embedded and stopped on exit."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import redis

from config.settings import Settings
from embedded.postgres import running_url as postgres_running_url
from embedded.redis import running_url as redis_running_url
from embedded.stack import ServiceUnavailable, redact_url, running_stack
from tests.embedded.conftest import StubOpenAI, free_port


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings(FLOWSTATE_DATA_DIR=str(tmp_path), **env)  # type: ignore[arg-type]


def test_unreachable_redis_url_names_the_variable_and_starts_nothing(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with (
        pytest.raises(ServiceUnavailable) as err,
        running_stack(_settings(tmp_path, REDIS_URL=url), need={"redis"}),
    ):
        pass
    assert err.value.variable == "REDIS_URL"
    assert str(err.value).startswith(f"REDIS_URL={url} does not answer: ")
    assert not (tmp_path / "redis").exists()


def test_unreachable_database_url_names_the_variable_and_hides_the_password(tmp_path: Path) -> None:
    url = f"postgresql://flow:s3cret-pw@127.0.0.1:{free_port()}/crm"
    settings = _settings(tmp_path, DATABASE_URL=url)
    with pytest.raises(ServiceUnavailable) as err, running_stack(settings, need={"database"}):
        pass
    message = str(err.value)
    assert message.startswith(
        f"DATABASE_URL=postgresql://flow:***@127.0.0.1:{url.split(':')[3]} does not answer"
    )
    assert "s3cret-pw" not in message
    assert not (tmp_path / "postgres").exists()


def test_unreachable_openai_base_url_names_the_variable(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with (
        pytest.raises(
            ServiceUnavailable, match=r"^OPENAI_BASE_URL=http://127\.0\.0\.1:\d+/v1 does not answer"
        ),
        running_stack(_settings(tmp_path, OPENAI_BASE_URL=url), need={"llm"}),
    ):
        pass


def test_external_services_are_used_as_configured(
    tmp_path: Path, database_url: str, redis_url: str, stub_openai: StubOpenAI
) -> None:
    settings = _settings(
        tmp_path,
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        OPENAI_BASE_URL=stub_openai.base_url,
        OPENAI_API_KEY="sk-test-key",
        FLOWSTATE_LLM_MODEL="stub-model",
    )
    with running_stack(settings) as endpoints:
        assert endpoints.embedded == frozenset()
        assert endpoints.database_url == database_url
        assert endpoints.redis_url == redis_url
        assert endpoints.openai_base_url == stub_openai.base_url
        assert endpoints.openai_api_key == "sk-test-key"
        assert endpoints.describe("database").startswith("external postgresql://")
        assert endpoints.describe("llm") == f"external stub-model at {stub_openai.base_url}"
    assert stub_openai.auth_headers == ["Bearer sk-test-key"]
    assert not (tmp_path / "postgres").exists() and not (tmp_path / "redis").exists()


def test_api_key_alone_means_openai(tmp_path: Path) -> None:
    # The llm component is not requested: the endpoint is resolved but not contacted (offline).
    settings = _settings(tmp_path, OPENAI_API_KEY="sk-real-looking")
    with running_stack(settings, need=set()) as endpoints:
        assert endpoints.openai_base_url == "https://api.openai.com/v1"
        assert endpoints.openai_api_key == "sk-real-looking"
        assert "sk-real-looking" not in endpoints.describe("llm")


def test_embedded_postgres_and_redis_work_and_stop_on_exit(tmp_path: Path) -> None:
    with running_stack(_settings(tmp_path), need={"database", "redis"}) as endpoints:
        assert endpoints.embedded == frozenset({"database", "redis"})
        with psycopg.connect(endpoints.database_url) as conn:
            row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        assert row is not None and row[0].startswith("0.")
        assert endpoints.redis_url is not None
        client = redis.Redis.from_url(endpoints.redis_url)
        client.set("flowstate:test", "1")
        assert client.get("flowstate:test") == b"1"
        client.close()
        assert endpoints.describe("database").startswith("embedded PostgreSQL 16.")
        assert "pgvector 0.6" in endpoints.describe("database")
        assert endpoints.describe("redis").startswith("embedded Redis 6.")
        assert postgres_running_url(tmp_path) is not None
    assert redis_running_url(tmp_path) is None
    assert postgres_running_url(tmp_path) is None


def test_unknown_component_is_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="unknown components"),
        running_stack(_settings(tmp_path), need={"kafka"}),
    ):
        pass


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://u:pw@db.example.supabase.co:5432/postgres",
            "postgresql://u:***@db.example.supabase.co:5432/postgres",
        ),
        ("rediss://default:pw@cache:6380/0", "rediss://default:***@cache:6380/0"),
        (
            "postgresql://u@h/db?password=pw&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        ("unix:///tmp/r.sock", "unix:///tmp/r.sock"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
