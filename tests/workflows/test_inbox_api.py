"""The inbox, outbox and workflow routes end to end: a real uvicorn server whose app starts and
signals workflows on a real Temporal server after each commit, a worker, and a chat WebSocket
that receives the `notification` frame of its user."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import websockets
from fastapi import FastAPI
from sqlalchemy import Engine, select

from app.main import create_app
from app.services.notifications import NotificationHub
from config.settings import get_settings
from contracts import ProposedAction
from crm import inbox, users
from crm.db import session_scope
from crm.models import WorkflowRun
from embedded.stack import Endpoints
from tests.app.test_chat_api import _serve
from tests.conftest import AUTH
from tests.tools.conftest import CRM
from tests.workflows.conftest import eventually
from workflows.client import Workflows
from workflows.deps import WorkerConfig


@pytest.fixture
def server(
    crm_data: CRM, clean_db: Engine, worker: WorkerConfig, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    # the app starts workflows on the worker's queue with the test's short ladder
    monkeypatch.setenv("FLOWSTATE_TASK_QUEUE", worker.task_queue)
    monkeypatch.setenv("FLOWSTATE_REMINDERS_CONFIG", str(worker.reminders_config))
    get_settings.cache_clear()
    endpoints = Endpoints(
        database_url=worker.database_url,
        redis_url=None,  # no chat engine: these tests need only the notification frames
        openai_base_url=None,
        openai_api_key="",
        llm_model="",
        embedded=frozenset(),
        temporal_address=worker.temporal_address,
        smtp_url=worker.smtp_url,
    )
    app = create_app(endpoints)
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[None]:
        async with original(a):
            a.state.notifications = NotificationHub(redis_url)
            a.state.notifications.start()
            await asyncio.wait_for(a.state.notifications.subscribed.wait(), 10)
            yield
            await a.state.notifications.stop()

    app.router.lifespan_context = lifespan
    with _serve(app) as hostport:
        yield hostport
    get_settings.cache_clear()


async def test_a_due_reminder_reaches_the_inbox_and_the_socket_and_is_done(
    server: str, crm_data: CRM, app_workflows: Workflows, clean_db: Engine
) -> None:
    base = f"http://{server}"
    with session_scope(clean_db) as s:  # the socket follows its caller: Ann Alpha's user
        users.add_user(s, "ann", role="rep", rep="Ann Alpha")
        ann = {"Authorization": f"Bearer {users.issue(s, 'ann', 'token').secret}"}
    async with (
        websockets.connect(f"ws://{server}/ws/chat/t-inbox", additional_headers=ann) as ws,
        httpx.AsyncClient(base_url=base, timeout=10, headers=AUTH) as http,
    ):
        due = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)).isoformat()
        body = {
            "rep_id": crm_data.rep["Ann Alpha"],
            "deal_id": crm_data.deal["D0000001"],
            "due_at": due,
            "message": "Call Acme",
        }
        r = await http.post("/api/reminders", json=body)
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        frame = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert frame["type"] == "notification" and frame["reminder_id"] == rid
        assert frame["recipient"] == "Ann Alpha" and "Call Acme" in frame["title"]

        r = await http.get("/api/inbox", params={"recipient": "Ann Alpha"})
        assert r.status_code == 200 and r.json()["total"] == 1
        item = r.json()["items"][0]
        assert (item["kind"], item["status"], item["reminder_id"]) == ("reminder", "open", rid)
        r = await http.post(f"/api/inbox/{item['id']}", json={"decision": "approve"})
        assert r.status_code == 409 and "takes done, snooze, dismiss" in r.json()["detail"]
        r = await http.post(f"/api/inbox/{item['id']}", json={"decision": "done"})
        assert r.status_code == 200, r.text
        # who decided is the credential's user (here the built-in admin), never a body field
        assert r.json()["item"]["status"] == "done" and r.json()["item"]["decided_by"] == "admin-token"
        workflow_id = r.json()["change"]["workflow_id"]
        assert (
            await asyncio.wait_for(app_workflows.client.get_workflow_handle(workflow_id).result(), 10)
            == "done"
        )
        r = await http.post(f"/api/inbox/{item['id']}", json={"decision": "done"})
        assert r.status_code == 409  # decided already
        r = await http.get("/api/reminders/" + str(rid))
        assert r.json()["status"] == "done"

        r = await http.get(f"/api/deals/{crm_data.deal['D0000001']}/workflows")
        assert r.status_code == 200
        assert [(w["kind"], w["workflow_id"]) for w in r.json()] == [("reminder", workflow_id)]
        assert (await http.get("/api/deals/999999/workflows")).status_code == 404


async def test_approving_an_inbox_draft_sends_it_once_and_delete_stops_a_reminder(
    server: str, crm_data: CRM, clean_db: Engine, app_workflows: Workflows, tmp_path: Path
) -> None:
    draft = ProposedAction(
        kind="queue_email",
        summary="Follow-up to Betaco",
        params={
            "to": "buyer@betaco.example",
            "subject": "Next steps",
            "body": "Hello",
            "deal_id": crm_data.deal["D0000005"],
        },
    )
    with session_scope(clean_db) as s:
        item, _ = inbox.file_item(
            s,
            recipient="Bob Beta",
            kind="draft",
            title="Follow-up draft",
            action=draft.model_dump(mode="json"),
        )
    async with httpx.AsyncClient(base_url=f"http://{server}", timeout=10, headers=AUTH) as http:
        edits = {"subject": "Next steps for GTX Basic"}
        r = await http.post(f"/api/inbox/{item.id}", json={"decision": "edit", "edits": edits})
        assert r.status_code == 200, r.text
        outbox_id = r.json()["result"]["outbox_id"]
        assert (await http.post(f"/api/inbox/{item.id}", json={"decision": "approve"})).status_code == 409

        async def sent() -> dict[str, object] | None:
            page = (await http.get("/api/outbox", params={"status": "sent"})).json()
            return page["items"][0] if page["total"] else None

        for _ in range(100):
            msg = await sent()
            if msg:
                break
            await asyncio.sleep(0.2)
        assert msg is not None and msg["id"] == outbox_id and msg["subject"] == "Next steps for GTX Basic"
        assert (await http.get("/api/outbox")).json()["total"] == 1

        due = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        r = await http.post(
            "/api/reminders", json={"rep_id": crm_data.rep["Bob Beta"], "due_at": due, "message": "later"}
        )
        rid = r.json()["id"]

        def started() -> str | None:
            """the reminder's workflow was started after the create's commit"""
            with session_scope(clean_db) as s:
                run = s.scalars(select(WorkflowRun).where(WorkflowRun.reminder_id == rid)).one()
                return run.workflow_id if run.status == "started" else None

        handle = app_workflows.client.get_workflow_handle(await eventually(started))
        r = await http.delete(f"/api/reminders/{rid}")
        assert r.status_code == 204
        assert await asyncio.wait_for(handle.result(), 15) == "deleted"
        assert (await http.get(f"/api/reminders/{rid}")).status_code == 404


async def test_a_reminder_closed_and_opened_again_fires_at_its_new_time(
    server: str, crm_data: CRM, clean_db: Engine, app_workflows: Workflows
) -> None:
    async with httpx.AsyncClient(base_url=f"http://{server}", timeout=10, headers=AUTH) as http:
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        r = await http.post(
            "/api/reminders", json={"rep_id": crm_data.rep["Cy Gamma"], "due_at": later, "message": "x"}
        )
        rid = r.json()["id"]

        def runs() -> list[WorkflowRun]:
            """the reminder's workflow runs"""
            with session_scope(clean_db) as s:
                return list(s.scalars(select(WorkflowRun).where(WorkflowRun.reminder_id == rid)))

        first = (await eventually(lambda: (x := runs()) and x[0].status == "started" and x))[0]
        assert (await http.patch(f"/api/reminders/{rid}", json={"status": "done"})).status_code == 200
        handle = app_workflows.client.get_workflow_handle(first.workflow_id)
        assert await asyncio.wait_for(handle.result(), 15) == "done"
        soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()
        r = await http.patch(f"/api/reminders/{rid}", json={"status": "pending", "due_at": soon})
        assert r.status_code == 200, r.text
        await eventually(lambda: len(runs()) == 2)
        page = await eventually(
            lambda: (
                (
                    p := httpx.get(
                        f"http://{server}/api/inbox", params={"recipient": "Cy Gamma"}, headers=AUTH
                    ).json()
                )["total"]
                and p
            )
        )
        assert page["items"][0]["reminder_id"] == rid

        r = await http.post("/api/reps", json={"name": "Zed Zone", "time_zone": "Mars/Olympus"})
        assert r.status_code == 422 and r.json()["field"] == "time_zone"
        r = await http.post("/api/reps", json={"name": "Zed Zone", "time_zone": "Europe/Berlin"})
        assert r.status_code == 201 and r.json()["time_zone"] == "Europe/Berlin"
