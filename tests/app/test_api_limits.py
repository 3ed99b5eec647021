"""A safe API: bounded bodies and frames, the WebSocket's Origin check, CORS closed unless
configured, rate limits and the cap on concurrent turns (429 + Retry-After), and no secret in
the access log."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.api.body_limit import MAX_JSON_DEPTH, JsonDepth, too_deep
from app.api.limits import Limiter, RateLimited
from app.api.redact import RedactSecrets, redact
from app.api.routes.documents import MAX_BODY_BYTES as DOCUMENT_BODY_BYTES
from app.main import create_app
from config.settings import Settings, get_settings
from contracts.identity import Caller
from tests.conftest import AUTH
from tests.support.apps import plain_endpoints

ORIGIN = "http://test"


_endpoints = plain_endpoints


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set variables with `env.setenv` before building the app; settings re-read per test."""
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


async def _client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    get_settings.cache_clear()
    app = create_app(_endpoints(database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4000))
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN, headers=AUTH) as c:
            yield c


@pytest.fixture
async def client(
    env: pytest.MonkeyPatch, clean_db: Engine, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(database_url):
        yield c


# ---------------------------------------------------------------------------------------------
# bodies
# ---------------------------------------------------------------------------------------------
async def test_a_body_over_the_limit_is_413_by_length_and_while_streaming(client: httpx.AsyncClient) -> None:
    limit = get_settings().max_body_bytes
    assert limit == 64 * 1024
    body = b'{"name": "' + b"x" * limit + b'"}'
    r = await client.post("/api/accounts", content=body, headers={"Content-Type": "application/json"})
    assert (
        r.status_code == 413 and r.json()["detail"] == f"request body too large: at most {limit} bytes here"
    )

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"name": "'
        for _ in range(limit // 4096 + 1):
            yield b"x" * 4096
        yield b'"}'

    r = await client.post("/api/accounts", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "at most" in r.json()["detail"]
    small = await client.post("/api/accounts", json={"name": "Small Co"})
    assert small.status_code == 201


async def test_documents_take_larger_bodies_up_to_their_own_limit(client: httpx.AsyncClient) -> None:
    assert get_settings().max_body_bytes < DOCUMENT_BODY_BYTES
    # over the app's limit, under the route's: the body is read and validated (content too long)
    r = await client.post("/api/documents", json={"content": "x" * 70_000})
    assert r.status_code == 422 and r.json()["field"] == "content"
    r = await client.post("/api/documents", json={"content": "x" * DOCUMENT_BODY_BYTES})
    assert r.status_code == 413


async def test_deeply_nested_json_is_a_4xx_never_a_500(client: httpx.AsyncClient) -> None:
    for depth in (MAX_JSON_DEPTH + 1, 900, 20_000):
        payload = "[" * depth + "]" * depth
        body = '{"name": "Deep Co", "nested": ' + payload + "}"
        r = await client.post("/api/accounts", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "nested too deeply" in r.json()["detail"], (depth, r.text)
    # a free-form payload 900 deep parses, then overflows the recursive jsonb checks: was a 500
    body = '{"kind": "note", "payload": {"a": ' + "[" * 900 + "]" * 900 + "}}"
    r = await client.post("/api/events", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "nested too deeply" in r.json()["detail"]
    # free-form JSON a little less deep is fine
    nested: Any = "leaf"
    for _ in range(MAX_JSON_DEPTH - 2):
        nested = {"a": nested}
    r = await client.post("/api/events", json={"kind": "note", "payload": nested})
    assert r.status_code != 400 and r.status_code < 500, r.text


def test_the_depth_scanner_ignores_brackets_in_strings_across_chunks() -> None:
    assert not too_deep('{"a": "' + "[" * 100 + '"}')
    assert not too_deep('{"a": "\\"}' + "")  # an escaped backslash ends the string
    assert too_deep("[" * (MAX_JSON_DEPTH + 1))
    scanner = JsonDepth(limit=2)
    # an escaped quote split across chunks keeps the string open: its brackets do not count
    assert not scanner.feed(b'["abc\\')
    assert not scanner.feed(b'"[[[[", [')
    assert scanner.feed(b"[[")


# ---------------------------------------------------------------------------------------------
# CORS
# ---------------------------------------------------------------------------------------------
PREFLIGHT = {
    "Origin": "http://other.example",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


async def test_cors_is_closed_by_default(client: httpx.AsyncClient) -> None:
    r = await client.options("/api/accounts", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in r.headers
    r = await client.get("/api/accounts", headers={"Origin": "http://other.example"})
    assert "access-control-allow-origin" not in r.headers


async def test_cors_opens_to_the_configured_origins_only(
    env: pytest.MonkeyPatch, clean_db: Engine, database_url: str
) -> None:
    env.setenv("FLOWSTATE_CORS_ORIGINS", "http://other.example, https://crm.example.com/")
    async for c in _client(database_url):
        r = await c.options("/api/accounts", headers=PREFLIGHT)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "http://other.example"
        assert r.headers["access-control-allow-credentials"] == "true"
        r = await c.options("/api/accounts", headers={**PREFLIGHT, "Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers


# ---------------------------------------------------------------------------------------------
# rate limits and concurrent turns
# ---------------------------------------------------------------------------------------------
async def test_rest_requests_are_limited_per_user_with_retry_after(
    env: pytest.MonkeyPatch, clean_db: Engine, database_url: str
) -> None:
    env.setenv("FLOWSTATE_RATE_LIMIT", "3/minute")
    async for c in _client(database_url):
        statuses = [(await c.get("/api/me")).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        r = await c.get("/api/me")
        assert r.status_code == 429 and "too many requests" in r.json()["detail"]
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # an unauthenticated caller is refused for that, not counted against the user
        assert (
            await c.get("/api/me", headers={"Authorization": "Bearer nobody-0123456789"})
        ).status_code == 401


async def test_sign_in_attempts_are_limited_per_address(
    env: pytest.MonkeyPatch, clean_db: Engine, database_url: str
) -> None:
    env.setenv("FLOWSTATE_LOGIN_RATE_LIMIT", "2/minute")
    async for c in _client(database_url):
        form = {"username": "nobody", "password": "wrong password"}
        assert [(await c.post("/login", data=form)).status_code for _ in range(2)] == [303, 303]
        r = await c.post("/login", data=form)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "sign-in attempts" in r.json()["detail"]


async def test_rest_chat_turns_count_against_the_chat_limit(
    env: pytest.MonkeyPatch, clean_db: Engine, database_url: str
) -> None:
    env.setenv("FLOWSTATE_CHAT_RATE_LIMIT", "1/minute")
    async for c in _client(database_url):
        first = await c.post("/api/chat", json={"message": "hello"})
        assert first.status_code == 503  # counted, then refused: no chat engine without Redis
        r = await c.post("/api/chat", json={"message": "hello"})
        assert r.status_code == 429 and "retry-after" in r.headers
        assert "chat turns" in r.json()["detail"]


def _settings(**env: str) -> Settings:
    values = {
        "FLOWSTATE_RATE_LIMIT": "100/minute",
        "FLOWSTATE_CHAT_RATE_LIMIT": "100/minute",
        "FLOWSTATE_LOGIN_RATE_LIMIT": "100/minute",
        "FLOWSTATE_MAX_TURNS_PER_USER": "2",
        **env,
    }
    return Settings.model_validate(values)


ADA = Caller(username="ada", display_name="Ada", role="rep")
BOB = Caller(username="bob", display_name="Bob", role="rep")


async def test_at_most_max_turns_run_at_once_per_user() -> None:
    limiter = Limiter(_settings(FLOWSTATE_MAX_TURNS_PER_USER="2"))
    async with limiter.turn(ADA), limiter.turn(ADA):
        with pytest.raises(RateLimited) as refused:
            async with limiter.turn(ADA):
                pass
        assert refused.value.retry_after >= 1
        assert refused.value.frame()["code"] == 429 and "retry_after" in refused.value.frame()
        async with limiter.turn(BOB):  # another user has places of their own
            pass
    async with limiter.turn(ADA):  # places come back when turns end
        pass


async def test_limits_are_shared_through_redis(redis_url: str) -> None:
    settings = _settings(FLOWSTATE_CHAT_RATE_LIMIT="2/minute", FLOWSTATE_MAX_TURNS_PER_USER="1")
    one, two = Limiter(settings, redis_url), Limiter(settings, redis_url)
    caller = Caller(username=f"redis-{uuid.uuid4().hex[:12]}", display_name="R", role="rep")
    try:
        async with one.turn(caller):
            with pytest.raises(RateLimited, match="at once"):  # the other process sees the turn
                async with two.turn(caller):
                    pass
        async with two.turn(caller):  # a refused turn was not counted: this is the second
            pass
        with pytest.raises(RateLimited, match="chat turns"):  # and the rate is used up, everywhere
            async with one.turn(caller):
                pass
    finally:
        await one.close()
        await two.close()


async def test_a_turn_place_is_taken_in_one_redis_command_that_sets_its_expiry(redis_url: str) -> None:
    limiter = Limiter(_settings(FLOWSTATE_MAX_TURNS_PER_USER="1"), redis_url)
    redis = limiter.turns.redis
    assert redis is not None
    key = f"user:one-{uuid.uuid4().hex[:12]}"
    name = f"flowstate:limits:turns:{key}"
    sent: list[str] = []
    execute: Any = redis.execute_command  # redis-py leaves it untyped

    async def counted(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        return await execute(*args, **options)

    try:
        await execute("SCRIPT", "FLUSH")  # as after a Redis restart: the script is loaded again
        redis.execute_command = counted  # type: ignore[method-assign]
        assert await limiter.turns.enter(key, 1) is True
        assert await limiter.turns.enter(key, 1) is False  # over the cap: refused, not counted
        assert set(sent) <= {"EVALSHA", "SCRIPT LOAD"} and sent.count("EVALSHA") == 3, sent
        assert await redis.get(name) == b"1"  # one place taken, never two
        assert 0 < await redis.ttl(name) <= limiter.turns.ttl_s  # a dead process's place expires
        await limiter.turns.leave(key)
        assert await redis.get(name) == b"0"
    finally:
        redis.execute_command = execute  # type: ignore[method-assign]
        await redis.delete(name)
        await limiter.close()


def test_a_bad_rate_limit_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="rate limit string"):
        _settings(FLOWSTATE_RATE_LIMIT="lots")


# ---------------------------------------------------------------------------------------------
# the chat WebSocket
# ---------------------------------------------------------------------------------------------
class SlowChat:
    """A chat engine whose turns end when `release` is set (to hold a turn open)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.release.set()

    async def stream(
        self, thread_id: str | None, message: str | None = None, **_: Any
    ) -> AsyncIterator[dict[str, Any]]:
        await self.release.wait()
        yield {"type": "final", "reply": f"echo {message}"}


@pytest.fixture
def ws_app(env: pytest.MonkeyPatch, clean_db: Engine, database_url: str) -> Iterator[TestClient]:
    env.setenv("FLOWSTATE_CHAT_RATE_LIMIT", "2/minute")
    get_settings.cache_clear()
    app = create_app(_endpoints(database_url))
    with TestClient(app, headers=AUTH) as tc:
        app.state.chat = SlowChat()
        yield tc


def test_refused_frames_get_an_error_and_the_connection_stays_open(ws_app: TestClient) -> None:
    limit = get_settings().max_body_bytes
    with ws_app.websocket_connect("/ws/chat/t1") as ws:
        ws.send_bytes(b'{"type": "message", "content": "hi"}')
        assert ws.receive_json() == {
            "type": "error",
            "message": "binary frames are not accepted: send JSON as text",
            "code": 415,
        }
        ws.send_text('{"type": "message", "content": "' + "x" * limit + '"}')
        frame = ws.receive_json()
        assert frame["type"] == "error" and frame["code"] == 413 and str(limit) in frame["message"]
        ws.send_text('{"type": "message", "content": "hi", "x": ' + "[" * 5000 + "]" * 5000 + "}")
        frame = ws.receive_json()
        assert frame["type"] == "error" and "nested too deeply" in frame["message"]
        ws.send_text('{"type": "message", "content": "still here"}')
        assert ws.receive_json() == {"type": "final", "reply": "echo still here"}


def test_websocket_turns_over_the_chat_limit_get_a_429_frame(ws_app: TestClient) -> None:
    with ws_app.websocket_connect("/ws/chat/t2") as ws:
        for n in range(2):
            ws.send_text(f'{{"type": "message", "content": "turn {n}"}}')
            assert ws.receive_json()["type"] == "final"
        ws.send_text('{"type": "message", "content": "one too many"}')
        frame = ws.receive_json()
        assert frame["type"] == "error" and frame["code"] == 429 and frame["retry_after"] >= 1
        ws.send_text("not json")  # the connection is still open
        assert ws.receive_json()["type"] == "error"


def test_a_foreign_origin_cannot_open_the_websocket(ws_app: TestClient, env: pytest.MonkeyPatch) -> None:
    evil = {"Origin": "http://evil.example"}
    with pytest.raises(WebSocketDisconnect) as refused, ws_app.websocket_connect("/ws/chat/t3", headers=evil):
        pass
    assert refused.value.code == 1008
    # the app's own origin, an allowed one, and no Origin at all (a script) may connect
    env.setenv("FLOWSTATE_ALLOWED_ORIGINS", "https://crm.example.com")
    get_settings.cache_clear()
    for headers in ({"Origin": "http://testserver"}, {"Origin": "https://crm.example.com"}, {}):
        with ws_app.websocket_connect("/ws/chat/t3", headers=headers) as ws:
            ws.send_text("not json")
            assert ws.receive_json()["type"] == "error"


# ---------------------------------------------------------------------------------------------
# no secrets in the logs
# ---------------------------------------------------------------------------------------------
def test_access_log_lines_have_tokens_and_keys_redacted(clean_db: Engine, database_url: str) -> None:
    create_app(_endpoints(database_url))  # installs the filter
    access = logging.getLogger("uvicorn.access")
    assert any(isinstance(f, RedactSecrets) for f in access.filters)
    assert any(isinstance(f, RedactSecrets) for f in logging.getLogger("uvicorn.error").filters)
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/ws/chat/t1?token=s3cret-token-value&user=ada", "1.1", 101),
        None,
    )
    assert access.filter(record)  # the logger's filters rewrite the record in place
    line = record.getMessage()
    assert "s3cret-token-value" not in line and "token=[redacted]&user=ada" in line
    assert redact("/login/once?key=abc123") == "/login/once?key=[redacted]"
    assert redact("/api/deals?monkey=1") == "/api/deals?monkey=1"


async def test_a_counter_store_that_does_not_answer_lets_requests_through() -> None:
    # a Redis restart must not turn into an API outage: the limits are skipped, not failed closed
    settings = Settings(FLOWSTATE_RATE_LIMIT="1/minute", FLOWSTATE_MAX_TURNS_PER_USER=1)
    limiter = Limiter(settings, "redis://127.0.0.1:1/0")
    try:
        caller = Caller(username="ann", display_name="Ann", role="rep", rep_id=1)
        for _ in range(3):
            await limiter.hit(limiter.rest, "api", "user:ann")
            async with limiter.turn(caller):
                pass
    finally:
        await limiter.close()
