"""FLOWSTATE_API_TOKEN: /api and /ws need the bearer token; /health and /metrics stay open."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.main import create_app
from config.settings import get_settings
from embedded.stack import Endpoints

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("FLOWSTATE_API_TOKEN", TOKEN)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _endpoints(database_url: str) -> Endpoints:
    return Endpoints(
        database_url=database_url,
        redis_url=None,
        openai_base_url=None,
        openai_api_key="",
        llm_model="",
        embedded=frozenset(),
    )


@pytest.fixture
async def client(token_env: None, clean_db: Engine, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(_endpoints(database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


async def test_api_needs_the_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/accounts")
    assert r.status_code == 401 and "FLOWSTATE_API_TOKEN" in r.json()["detail"]
    r = await client.get("/api/accounts", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    r = await client.get("/api/accounts", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    r = await client.get("/metrics")
    assert r.status_code == 200


def test_websocket_needs_the_token(token_env: None, database_url: str) -> None:
    app = create_app(_endpoints(database_url))
    with TestClient(app) as tc:
        with pytest.raises(WebSocketDisconnect), tc.websocket_connect("/ws/chat/t1"):
            pass
        with tc.websocket_connect(f"/ws/chat/t1?token={TOKEN}") as ws:
            ws.send_text("not json")
            assert ws.receive_json()["type"] == "error"


def test_without_a_token_the_api_is_open(database_url: str, clean_db: Engine) -> None:
    get_settings.cache_clear()
    app = create_app(_endpoints(database_url))
    assert app.state.api_token is None
