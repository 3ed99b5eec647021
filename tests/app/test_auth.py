"""Who may call the API (app.api.auth): no open mode, ever.

/api needs a credential: the built-in admin's `FLOWSTATE_API_TOKEN`, a user's API token, or the
session cookie of a web sign-in (whose writes must come from an allowed Origin). /health and
/metrics stay open; the sign-in form answers a wrong password by going back to the form.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import Engine
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.api.auth import SESSION_COOKIE
from app.main import create_app
from config.settings import Settings, get_settings
from crm import users
from crm.db import session_scope
from tests.conftest import AUTH, TEST_API_TOKEN
from tests.support.apps import plain_endpoints

PASSWORD = "correct horse battery"
ORIGIN = "http://test"  # the app's own origin as the client below reaches it


_endpoints = plain_endpoints


@pytest.fixture
def people(clean_db: Engine) -> Iterator[Engine]:
    """A clean CRM with one admin user `ada` who has a password."""
    with session_scope(clean_db) as session:
        users.add_user(session, "ada", role="admin", display_name="Ada", password=PASSWORD)
    yield clean_db


@pytest.fixture
async def client(people: Engine, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    get_settings.cache_clear()
    app = create_app(_endpoints(database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as c:
            yield c


async def test_no_credential_or_a_wrong_one_is_401(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/accounts")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    wrong = "not-the-token-0123456789"
    r = await client.get("/api/accounts", headers={"Authorization": f"Bearer {wrong}"})
    assert r.status_code == 401
    assert wrong not in r.text  # the detail never echoes what was sent


async def test_the_builtin_token_is_an_admin(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/me", headers=AUTH)
    assert r.status_code == 200 and r.json()["role"] == "admin"
    assert (await client.get("/api/accounts", headers=AUTH)).status_code == 200


async def test_a_users_token_works_until_the_user_is_disabled(
    client: httpx.AsyncClient, people: Engine
) -> None:
    with session_scope(people) as session:
        secret = users.issue(session, "ada", "token", label="test").secret
    bearer = {"Authorization": f"Bearer {secret}"}
    r = await client.get("/api/me", headers=bearer)
    assert r.status_code == 200 and r.json()["username"] == "ada"
    with session_scope(people) as session:
        users.set_disabled(session, "ada")
    assert (await client.get("/api/me", headers=bearer)).status_code == 401


async def test_a_session_cookie_reads_but_writes_only_from_an_allowed_origin(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/login", data={"username": "ada", "password": PASSWORD})
    assert r.status_code == 303 and SESSION_COOKIE in r.cookies
    cookie = {SESSION_COOKIE: r.cookies[SESSION_COOKIE]}
    client.cookies.update(cookie)
    r = await client.get("/api/me")
    assert r.status_code == 200 and r.json()["username"] == "ada"
    account = {"name": "Origin Test Co"}
    r = await client.post("/api/accounts", json=account, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "Origin" in r.json()["detail"]
    r = await client.post("/api/accounts", json=account)  # a cookie write without any Origin
    assert r.status_code == 403
    r = await client.post("/api/accounts", json=account, headers={"Origin": ORIGIN})
    assert r.status_code == 201, r.text


async def test_a_wrong_password_goes_back_to_the_form(client: httpx.AsyncClient) -> None:
    r = await client.post("/login", data={"username": "ada", "password": "wrong password!"})
    assert r.status_code == 303 and r.headers["location"] == "/login?error=1"
    assert SESSION_COOKIE not in r.cookies
    r = await client.post("/login", data={"username": "nobody", "password": PASSWORD})
    assert r.headers["location"] == "/login?error=1"  # the same answer: no username probing


async def test_health_and_metrics_stay_open(client: httpx.AsyncClient) -> None:
    assert (await client.get("/metrics")).status_code == 200
    # /health answers 503 here (no model server runs), but never asks for a credential
    assert (await client.get("/health")).status_code != 401


@pytest.mark.parametrize("token", ["changeme", "secret", "short-token"])
def test_a_placeholder_or_short_token_is_refused(token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWSTATE_API_TOKEN", token)
    with pytest.raises(ValidationError, match="FLOWSTATE_API_TOKEN"):
        Settings(_env_file=None)


async def test_an_empty_token_means_no_builtin_admin_not_an_open_api(
    people: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWSTATE_API_TOKEN", "")
    get_settings.cache_clear()
    try:
        assert Settings(_env_file=None).api_token is None
        app = create_app(_endpoints(database_url))
        assert app.state.api_token is None
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as c:
                assert (await c.get("/api/accounts")).status_code == 401
                assert (await c.get("/api/accounts", headers=AUTH)).status_code == 401
    finally:
        get_settings.cache_clear()


def test_the_websocket_needs_a_credential(people: Engine, database_url: str) -> None:
    get_settings.cache_clear()
    app = create_app(_endpoints(database_url))
    with TestClient(app) as tc:
        with pytest.raises(WebSocketDisconnect), tc.websocket_connect("/ws/chat/t1"):
            pass
        with tc.websocket_connect(f"/ws/chat/t1?token={TEST_API_TOKEN}") as ws:
            ws.send_text("not json")
            assert ws.receive_json()["type"] == "error"
