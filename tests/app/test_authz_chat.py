"""Identity, scope and approvals in the chat, over the real app (REST and WebSocket), with the
real pipeline crew (no LLM call: stage moves and rule-planned figures), the keyword router and
the name resolver of the fakes, on real Redis and the real database.

Two reps of two teams: Rita Reyes (deals RITA0001 won, RITA0002 lost, RITA0003 open) and Otto
Olsen (OTTO0001 and OTTO0002 won, OTTO0003 open); users `rita` and `otto` with API tokens; the
built-in admin of the test session (AUTH)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from app.main import create_app
from crews.registry import run_crew
from crm import users
from crm.db import session_scope
from crm.models import Deal, Event
from crm.repository import create_account, create_deal, create_product, create_rep
from crm.schemas import AccountCreate, DealCreate, ProductCreate, SalesRepCreate
from tests.app.test_chat_api import _endpoints, _with_fake_chat
from tests.conftest import AUTH
from tests.graphs.fakes import FakeCrews, fake_context

WIN_RATE = "What is our win rate?"


@pytest.fixture
def tokens(clean_db: Engine) -> dict[str, str]:
    """The CRM of the module docstring; the Authorization headers of `rita` and `otto`."""
    with session_scope(clean_db) as s:
        acc = create_account(s, AccountCreate(name="Cancity"))
        rita = create_rep(s, SalesRepCreate(name="Rita Reyes", manager="Mona Ames"))
        otto = create_rep(s, SalesRepCreate(name="Otto Olsen", manager="Max Berg"))
        prod = create_product(s, ProductCreate(name="GTX Pro", series="GTX", list_price=4821))
        closed = {"engage_date": "2017-01-02", "close_date": "2017-02-03"}
        for ext, rep, stage, value in (
            ("RITA0001", rita.id, "won", 1000),
            ("RITA0002", rita.id, "lost", 0),
            ("RITA0003", rita.id, "prospecting", None),
            ("OTTO0001", otto.id, "won", 2000),
            ("OTTO0002", otto.id, "won", 3000),
            ("OTTO0003", otto.id, "prospecting", None),
        ):
            dates = closed if stage != "prospecting" else {}
            create_deal(
                s,
                DealCreate(
                    external_id=ext,
                    account_id=acc.id,
                    product_id=prod.id,
                    rep_id=rep,
                    stage=stage,
                    value=value,
                    **dates,
                ),
            )
        headers = {}
        for username, rep_name in (("rita", "Rita Reyes"), ("otto", "Otto Olsen")):
            users.add_user(s, username, role="rep", rep=rep_name)
            headers[username] = f"Bearer {users.issue(s, username, 'token').secret}"
    return headers


def _app(clean_db: Engine, database_url: str, redis_url: str, crews: Any = run_crew) -> Any:
    """The app with the real crews (no LLM call in these tests), or `crews`."""
    ctx = fake_context(engine=clean_db, crews=crews)
    return _with_fake_chat(create_app(_endpoints(database_url, None)), redis_url, lambda: ctx)


@pytest.fixture
async def client(clean_db: Engine, database_url: str, redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = _app(clean_db, database_url, redis_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


def _as(token: str) -> dict[str, str]:
    return {"Authorization": token}


def _stage(engine: Engine, ext: str) -> str:
    with session_scope(engine) as s:
        return str(s.scalar(select(Deal.stage).where(Deal.external_id == ext)))


async def _propose(client: httpx.AsyncClient, token: str, ext: str) -> dict[str, Any]:
    r = await client.post("/api/chat", json={"message": f"move deal {ext} to qualified"}, headers=_as(token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["pending_action"] is not None and body["pending_action"]["kind"] == "move_stage", body
    return body


async def test_a_thread_is_its_owners_others_get_404_and_an_admin_may_read_it(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    body = await _propose(client, tokens["rita"], "RITA0003")
    thread, action_id = body["thread_id"], body["pending_action"]["id"]
    decision = {"decision": "approve", "action_id": action_id}

    otto = _as(tokens["otto"])
    assert (await client.get(f"/api/threads/{thread}", headers=otto)).status_code == 404
    r = await client.post(f"/api/chat/{thread}/resume", json=decision, headers=otto)
    assert r.status_code == 404 and thread in r.json()["detail"]
    r = await client.post("/api/chat", json={"message": "hello", "thread_id": thread}, headers=otto)
    assert r.status_code == 404
    # the body cannot name someone else
    r = await client.post("/api/chat", json={"message": "hello", "user_id": "rita"}, headers=otto)
    assert r.status_code == 422 and r.json()["message"].startswith("user_id:")

    r = await client.get(f"/api/threads/{thread}", headers=AUTH)  # an admin reads every thread
    assert r.status_code == 200 and r.json()["user_id"] == "rita"
    assert r.json()["pending_action"]["id"] == action_id
    r = await client.get(f"/api/threads/{thread}", headers=_as(tokens["rita"]))
    assert r.status_code == 200 and r.json()["pending_action"]["id"] == action_id


async def test_resume_names_the_pending_action_and_records_the_approver(
    client: httpx.AsyncClient, tokens: dict[str, str], clean_db: Engine
) -> None:
    rita = _as(tokens["rita"])
    body = await _propose(client, tokens["rita"], "RITA0003")
    thread, action_id = body["thread_id"], body["pending_action"]["id"]

    r = await client.post(f"/api/chat/{thread}/resume", json={"decision": "approve"}, headers=rita)
    assert r.status_code == 422 and "action_id" in r.json()["message"], r.text
    wrong = {"decision": "approve", "action_id": "0" * 32}
    r = await client.post(f"/api/chat/{thread}/resume", json=wrong, headers=rita)
    assert r.status_code == 409 and "action_id" in r.json()["detail"]
    assert _stage(clean_db, "RITA0003") == "prospecting"

    right = {"decision": "approve", "action_id": action_id}
    r = await client.post(f"/api/chat/{thread}/resume", json=right, headers=rita)
    assert r.status_code == 200 and r.json()["action_result"]["status"] == "done", r.text
    assert _stage(clean_db, "RITA0003") == "qualified"
    with session_scope(clean_db) as s:
        actors = s.execute(
            select(Event.kind, Event.actor).where(Event.thread_id == thread, Event.kind == "action.executed")
        ).all()
    assert [tuple(a) for a in actors] == [("action.executed", "rita")]

    r = await client.post(f"/api/chat/{thread}/resume", json=right, headers=rita)  # decided already
    assert r.status_code == 409


async def test_a_new_message_while_an_action_waits_is_answered_and_the_action_goes_to_the_inbox(
    client: httpx.AsyncClient, tokens: dict[str, str], clean_db: Engine
) -> None:
    rita = _as(tokens["rita"])
    body = await _propose(client, tokens["rita"], "RITA0003")
    thread, action_id = body["thread_id"], body["pending_action"]["id"]

    r = await client.post("/api/chat", json={"message": WIN_RATE, "thread_id": thread}, headers=rita)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["intent"] == "pipeline" and "win rate" in answer["reply"], answer["reply"]
    assert answer["pending_action"] is None
    deferred = answer["deferred_action"]
    assert deferred["id"] == action_id and deferred["kind"] == "move_stage"
    item_id = deferred["inbox_item_id"]

    view = (await client.get(f"/api/threads/{thread}", headers=rita)).json()
    assert view["pending_action"] is None
    assert [m["kind"] for m in view["messages"] if m["role"] == "assistant"] == [
        "proposal",
        "outcome",
        "reply",
    ]
    r = await client.post(
        f"/api/chat/{thread}/resume", json={"decision": "approve", "action_id": action_id}, headers=rita
    )
    assert r.status_code == 409  # the chat no longer holds it: the inbox does

    items = (await client.get("/api/inbox", headers=rita)).json()["items"]
    [item] = [i for i in items if i["id"] == item_id]
    assert item["kind"] == "action" and item["recipient"] == "Rita Reyes"
    assert item["action"]["params"]["stage"] == "qualified" and item["deal_id"] is not None
    assert _stage(clean_db, "RITA0003") == "prospecting"

    r = await client.post(f"/api/inbox/{item_id}", json={"decision": "approve"}, headers=rita)
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/inbox/{item_id}", json={"decision": "approve"}, headers=rita)
    assert r.status_code == 409
    assert _stage(clean_db, "RITA0003") == "qualified"
    with session_scope(clean_db) as s:
        runs = s.scalar(select(func.count()).select_from(Event).where(Event.kind == "action.executed"))
        deferrals = s.scalars(select(Event.actor).where(Event.kind == "action.deferred")).all()
    assert runs == 1 and deferrals == ["rita"]


async def test_moving_another_teams_deal_is_refused_without_a_proposal(
    client: httpx.AsyncClient, tokens: dict[str, str], clean_db: Engine
) -> None:
    r = await client.post(
        "/api/chat", json={"message": "move deal OTTO0003 to qualified"}, headers=_as(tokens["rita"])
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["pending_action"] is None
    assert "OTTO0003 belongs to another team" in body["reply"]
    assert _stage(clean_db, "OTTO0003") == "prospecting"

    r = await client.post("/api/chat", json={"message": "move deal OTTO0003 to qualified"}, headers=AUTH)
    assert r.json()["pending_action"] is not None  # the admin may


async def test_drafting_or_advising_on_another_teams_deal_is_refused(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    message = {"message": "Draft a follow-up about deal OTTO0003"}
    body = (await client.post("/api/chat", json=message, headers=_as(tokens["rita"]))).json()
    assert body["intent"] == "closing" and body["pending_action"] is None, body
    assert "OTTO0003 belongs to another team" in body["reply"]

    message = {"message": "What should I do next with deal OTTO0003?"}
    body = (await client.post("/api/chat", json=message, headers=_as(tokens["rita"]))).json()
    assert body["intent"] == "nba" and "OTTO0003 belongs to another team" in body["reply"], body


async def test_an_action_outside_the_callers_scope_fails_at_approval(
    clean_db: Engine, database_url: str, redis_url: str, tokens: dict[str, str]
) -> None:
    # the fake crews propose any move asked for: the approval itself still checks the scope
    app = _app(clean_db, database_url, redis_url, crews=FakeCrews())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            body = await _propose(client, tokens["rita"], "OTTO0003")
            decision = {"decision": "approve", "action_id": body["pending_action"]["id"]}
            r = await client.post(
                f"/api/chat/{body['thread_id']}/resume", json=decision, headers=_as(tokens["rita"])
            )
    assert r.status_code == 200, r.text
    result = r.json()["action_result"]
    assert result["status"] == "failed" and "another team" in result["detail"]
    assert _stage(clean_db, "OTTO0003") == "prospecting"


async def test_a_reps_figures_count_only_their_deals(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    mine = (await client.post("/api/chat", json={"message": WIN_RATE}, headers=_as(tokens["rita"]))).json()
    everyone = (await client.post("/api/chat", json={"message": WIN_RATE}, headers=AUTH)).json()
    assert mine["error"] is None and everyone["error"] is None
    # Rita: 1 won, 1 lost; everyone: 3 won, 1 lost
    assert mine["data"]["figures"]["value"] == pytest.approx(50.0), mine["reply"]
    assert everyone["data"]["figures"]["value"] == pytest.approx(75.0), everyone["reply"]
    assert "(1 won, 1 lost)" in mine["reply"] and "your pipeline" in mine["reply"]
    assert "(3 won, 1 lost)" in everyone["reply"]


def test_websocket_speaks_for_its_credential(
    clean_db: Engine, database_url: str, redis_url: str, tokens: dict[str, str]
) -> None:
    app = _app(clean_db, database_url, redis_url)
    with TestClient(app) as tc:
        with tc.websocket_connect("/ws/chat/ws-rita-1", headers=_as(tokens["rita"])) as ws:
            ws.send_json({"type": "message", "content": "move deal RITA0003 to qualified", "user_id": "otto"})
            frames = _until_last(ws)
            assert frames[-1]["type"] == "final", frames[-1]
            interrupt = next(f for f in frames if f["type"] == "interrupt")
            ws.send_json({"type": "resume", "decision": "reject", "action_id": "stale"})
            err = ws.receive_json()
            assert err["type"] == "error" and err["code"] == 409
            ws.send_json({"type": "resume", "decision": "reject", "action_id": interrupt["id"]})
            assert _until_last(ws)[-1]["action_result"]["status"] == "rejected"
        with tc.websocket_connect("/ws/chat/ws-rita-1", headers=_as(tokens["otto"])) as ws:
            ws.send_json({"type": "message", "content": "hello"})
            err = ws.receive_json()
            assert err["type"] == "error" and err["code"] == 404
    with session_scope(clean_db) as s:
        actors = s.scalars(select(Event.actor).where(Event.thread_id == "ws-rita-1")).all()
    assert actors == ["rita"]


def _until_last(ws: Any) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while True:
        frame = ws.receive_json()
        frames.append(frame)
        if frame["type"] in ("final", "error"):
            return frames
