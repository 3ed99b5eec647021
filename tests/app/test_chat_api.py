"""Chat over REST (ASGI, lifespan included) and WebSocket (a real uvicorn server and real
clients: the `websockets` package and shared/tools/ws_probe.py), with fake crews on real Redis
and the real database."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI
from sqlalchemy import Engine

from app.main import create_app
from crm.db import session_scope
from crm.repository import create_account, create_deal
from crm.schemas import AccountCreate, DealCreate
from graphs.context import ChatContext
from tests.conftest import AUTH, SHARED
from tests.graphs.fakes import chat_service, fake_context
from tests.support.apps import plain_endpoints

_endpoints = plain_endpoints


def _with_fake_chat(app: FastAPI, redis_url: str, make_ctx: Callable[[], ChatContext]) -> FastAPI:
    """Wrap the app's lifespan so `app.state.chat` is a ChatService with fake crews, built in
    the server's own event loop (build `app` without Redis, so it starts no real engine)."""
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with original(a), chat_service(redis_url, make_ctx()) as svc:
            a.state.chat = svc
            yield

    app.router.lifespan_context = lifespan
    return app


@pytest.fixture
def deal(clean_db: Engine) -> str:
    with session_scope(clean_db) as s:
        acc = create_account(s, AccountCreate(name="Cancity"))
        create_deal(s, DealCreate(external_id="WXYZ5678", account_id=acc.id, stage="prospecting"))
    return "WXYZ5678"


@pytest.fixture
async def client(clean_db: Engine, database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = _with_fake_chat(
        create_app(_endpoints(database_url, None)), redis_url, lambda: fake_context(engine=clean_db)
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=AUTH) as c:
            yield c


# ---------------------------------------------------------------------------------------------
# REST
# ---------------------------------------------------------------------------------------------


async def test_post_chat_answers_and_get_thread_shows_it(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/chat", json={"message": "How many deals has Cancity?"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"thread_id", "reply", "intent", "sources", "pending_action", "usage"} <= body.keys()
    assert body["intent"] == "pipeline" and body["pending_action"] is None
    assert body["reply"] == "[pipeline] answer about Cancity."
    assert body["sources"][0]["id"] == "pipeline-1"
    assert body["usage"] == {"llm_calls": 0, "llm_failures": 0, "prompt_tokens": 0, "completion_tokens": 0}

    r = await client.post("/api/chat", json={"message": "and next steps?", "thread_id": body["thread_id"]})
    assert r.status_code == 200 and r.json()["thread_id"] == body["thread_id"]

    r = await client.get(f"/api/threads/{body['thread_id']}")
    assert r.status_code == 200
    view = r.json()
    assert [(m["role"], m["intent"]) for m in view["messages"]] == [
        ("user", None),
        ("assistant", "pipeline"),
        ("user", None),
        ("assistant", "nba"),
    ]
    # the writer is the credential's caller: the built-in admin of the API token
    assert view["user_id"] == "admin-token" and view["pending_action"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "message"),
        ({"message": ""}, "message"),
        ({"message": "   "}, "message"),
        ({"message": "x" * 4001}, "message"),
        ({"message": 42}, "message"),
        ({"message": "hi", "thread_id": "bad id/../x"}, "thread_id"),
        ({"message": "hi", "user_id": "amy"}, "user_id"),  # who writes comes from the credential
    ],
)
async def test_post_chat_malformed_body_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    r = await client.post("/api/chat", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith(f"{field}:")


async def test_post_chat_not_json_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/chat", content=b"not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


async def test_resume_status_codes(client: httpx.AsyncClient, deal: str) -> None:
    approve = {"decision": "approve", "action_id": "a1"}
    r = await client.post("/api/chat/never-started/resume", json=approve)
    assert r.status_code == 404 and "never-started" in r.json()["detail"]

    thread = (await client.post("/api/chat", json={"message": "hello"})).json()["thread_id"]
    r = await client.post(f"/api/chat/{thread}/resume", json=approve)
    assert r.status_code == 409 and "no action waiting" in r.json()["detail"]

    for bad, field in (
        ({"decision": "maybe", "action_id": "a1"}, "decision"),
        ({"decision": "edit", "action_id": "a1"}, "edits"),
        ({"decision": "approve"}, "action_id"),
    ):
        r = await client.post(f"/api/chat/{thread}/resume", json=bad)
        assert r.status_code == 422 and field in r.json()["message"], r.text


async def test_approval_over_rest(client: httpx.AsyncClient, deal: str, clean_db: Engine) -> None:
    r = await client.post("/api/chat", json={"message": f"move deal {deal} to qualified"})
    body = r.json()
    assert body["pending_action"]["kind"] == "move_stage"
    assert body["pending_action"]["params"] == {"deal": deal, "stage": "qualified"}
    thread = body["thread_id"]

    r = await client.get(f"/api/threads/{thread}")
    assert r.json()["pending_action"]["summary"] == f"Move deal {deal} to Qualified"

    decision = {"decision": "approve", "action_id": body["pending_action"]["id"]}
    r = await client.post(f"/api/chat/{thread}/resume", json=decision)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["action_result"]["status"] == "done" and done["pending_action"] is None
    assert done["reply"] == f"Done: Move deal {deal} to Qualified."


async def test_get_unknown_thread_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/threads/nope")
    assert r.status_code == 404


async def test_chat_without_redis_is_503(database_url: str) -> None:
    app = create_app(_endpoints(database_url, None))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTH) as c,
    ):
        r = await c.post("/api/chat", json={"message": "hi"})
    assert r.status_code == 503 and "Redis" in r.json()["detail"]


# ---------------------------------------------------------------------------------------------
# WebSocket through a real server
# ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve(app: FastAPI) -> Iterator[str]:
    """Run `app` with uvicorn in a thread; yields `host:port`."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(clean_db: Engine, database_url: str, redis_url: str) -> Iterator[str]:
    app = _with_fake_chat(
        create_app(_endpoints(database_url, None)), redis_url, lambda: fake_context(engine=clean_db)
    )
    with _serve(app) as hostport:
        yield hostport


async def _until_last(ws: Any) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while True:
        frame = json.loads(await ws.recv())
        frames.append(frame)
        if frame["type"] in ("final", "error"):
            return frames


async def test_websocket_streams_and_survives_malformed_frames(server: str) -> None:
    async with websockets.connect(f"ws://{server}/ws/chat/ws-thread-1", additional_headers=AUTH) as ws:
        await ws.send(json.dumps({"type": "message", "content": "How many deals has Cancity?"}))
        frames = await _until_last(ws)
        kinds = [f["type"] for f in frames]
        assert kinds[-1] == "final"
        assert {"status", "token"} <= set(kinds[:-1])
        final = frames[-1]
        assert final["reply"] == "".join(f["content"] for f in frames if f["type"] == "token")
        assert final["intent"] == "pipeline" and final["thread_id"] == "ws-thread-1"

        for bad, words in (
            ("not json", "not JSON"),
            (json.dumps({"type": "message"}), "content"),
            (json.dumps({"type": "message", "content": ""}), "content"),
            (json.dumps({"type": "dance"}), "expected"),
            (json.dumps(["message"]), "expected"),
            (json.dumps({"type": "resume", "decision": "maybe", "action_id": "a1"}), "decision"),
            (json.dumps({"type": "resume", "decision": "approve"}), "action_id"),
        ):
            await ws.send(bad)
            err = json.loads(await ws.recv())
            assert err["type"] == "error" and words in err["message"], (bad, err)

        await ws.send(json.dumps({"type": "resume", "decision": "approve", "action_id": "a1"}))
        err = json.loads(await ws.recv())
        assert err["type"] == "error" and err["code"] == 409

        await ws.send(json.dumps({"type": "message", "content": "thanks"}))
        frames = await _until_last(ws)
        assert frames[-1]["type"] == "final" and frames[-1]["intent"] == "general"


async def test_websocket_interrupt_and_resume(server: str, deal: str) -> None:
    async with websockets.connect(f"ws://{server}/ws/chat/ws-thread-2", additional_headers=AUTH) as ws:
        await ws.send(json.dumps({"type": "message", "content": f"move deal {deal} to qualified"}))
        frames = await _until_last(ws)
        kinds = [f["type"] for f in frames]
        assert "interrupt" in kinds and kinds[-1] == "final"
        interrupt = frames[kinds.index("interrupt")]
        assert interrupt["action"]["kind"] == "move_stage" and interrupt["id"]
        assert frames[-1]["pending_action"]["id"] == interrupt["id"]

        await ws.send(json.dumps({"type": "resume", "decision": "reject", "action_id": interrupt["id"]}))
        frames = await _until_last(ws)
        assert frames[-1]["type"] == "final"
        assert frames[-1]["action_result"]["status"] == "rejected"
        assert frames[-1]["pending_action"] is None


def test_ws_probe_tool_passes(server: str) -> None:
    probe = SHARED / "tools" / "ws_probe.py"
    run = subprocess.run(
        [
            sys.executable,
            str(probe),
            f"ws://{server}/ws/chat/probe-1",
            "How many deals did we win?",
            "--timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ok: streamed, final reply, malformed frame answered, connection kept" in run.stdout
