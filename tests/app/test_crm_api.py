"""The CRM REST API through its ASGI app (lifespan included) on the real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from app.main import create_app
from tests.conftest import AUTH
from tests.support.apps import plain_endpoints


@pytest.fixture
async def client(clean_db: Engine, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    endpoints = plain_endpoints(database_url)
    app = create_app(endpoints)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=AUTH) as c:
            yield c


async def post(c: httpx.AsyncClient, url: str, body: dict[str, Any], expect: int = 201) -> dict[str, Any]:
    r = await c.post(url, json=body)
    assert r.status_code == expect, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_accounts_status_codes(client: httpx.AsyncClient) -> None:
    acc = await post(client, "/api/accounts", {"name": "Cancity", "sector": "retail", "employees": 10})
    r = await client.get(f"/api/accounts/{acc['id']}")
    assert r.status_code == 200 and r.json()["name"] == "Cancity"
    r = await client.get("/api/accounts/999")
    assert (r.status_code, r.json()) == (404, {"detail": "account 999 not found"})
    r = await client.post("/api/accounts", json={"name": "cancity"})
    assert r.status_code == 409 and "already exists" in r.json()["detail"]
    r = await client.post("/api/accounts", json={"name": "Neg", "employees": -1})
    assert r.status_code == 422 and r.json()["message"].startswith("employees:")
    assert r.json()["detail"][0]["loc"] == ["body", "employees"]  # FastAPI's own shape is kept
    r = await client.post("/api/accounts", json={"name": "Typo", "sectr": "x"})
    assert r.status_code == 422 and "sectr" in r.json()["message"]
    r = await client.post("/api/accounts", json={"name": "Orphan", "parent_account_id": 999})
    # well formed, but no such parent now: a conflict with the data, not a malformed request
    assert r.status_code == 409 and r.json()["field"] == "parent_account_id"
    r = await client.patch(f"/api/accounts/{acc['id']}", json={"sector": "software"})
    assert r.status_code == 200 and r.json()["sector"] == "software" and r.json()["employees"] == 10
    r = await client.patch("/api/accounts/999", json={"sector": "x"})
    assert r.status_code == 404
    r = await client.get(f"/api/accounts/{acc['id']}/profile")
    assert r.status_code == 200 and r.json()["metrics"]["deals"] == 0


async def test_pagination(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await post(client, "/api/products", {"name": f"P{i}", "series": "S", "list_price": 100 + i})
    r = await client.get("/api/products", params={"limit": 2, "offset": 2})
    body = r.json()
    assert (r.status_code, body["total"], body["limit"], body["offset"]) == (200, 5, 2, 2)
    assert [p["name"] for p in body["items"]] == ["P2", "P3"]
    assert body["items"][0]["list_price"] == 102.0  # money is a JSON number
    r = await client.get("/api/products", params={"limit": 0})
    assert r.status_code == 422 and r.json()["message"].startswith("limit:")
    r = await client.get("/api/products", params={"offset": -1})
    assert r.status_code == 422 and "offset" in r.json()["message"]


async def test_deal_lifecycle(client: httpx.AsyncClient) -> None:
    acc = await post(client, "/api/accounts", {"name": "Cancity"})
    prod = await post(client, "/api/products", {"name": "GTX Pro", "list_price": 4821})
    rep = await post(client, "/api/reps", {"name": "Darcel Schlecht", "regional_office": "Central"})
    deal = await post(client, "/api/deals", {"account_id": acc["id"], "rep_id": rep["id"]})
    assert (deal["stage"], deal["account_name"], deal["rep_name"]) == (
        "prospecting",
        "Cancity",
        "Darcel Schlecht",
    )
    url = f"/api/deals/{deal['id']}"

    moved = await post(client, f"{url}/stage", {"stage": "Engaging", "note": "call"}, 200)
    assert moved["stage"] == "engaging" and moved["engage_date"] is not None
    r = await client.post(f"{url}/stage", json={"stage": "engaging"})
    assert r.status_code == 409 and "already in stage" in r.json()["detail"]
    r = await client.post(f"{url}/stage", json={"stage": "proposal"})
    assert r.status_code == 409 and "product" in r.json()["detail"]
    r = await client.post(f"{url}/stage", json={"stage": "limbo"})
    assert r.status_code == 409 and r.json()["field"] == "stage"
    r = await client.post("/api/deals/999/stage", json={"stage": "won"})
    assert r.status_code == 404 and r.json()["detail"] == "deal 999 not found"
    r = await client.patch(url, json={"product_id": prod["id"], "value": -5})
    assert r.status_code == 422 and r.json()["message"].startswith("value:")
    r = await client.patch(url, json={"stage": "won"})  # the stage moves only through /stage
    assert r.status_code == 422 and "stage" in r.json()["message"]
    r = await client.patch(url, json={"product_id": prod["id"]})
    assert r.status_code == 200 and r.json()["product_name"] == "GTX Pro"
    r = await client.post(f"{url}/stage", json={"stage": "won"})
    assert r.status_code == 409 and "value" in r.json()["detail"]
    won = await post(client, f"{url}/stage", {"stage": "won", "value": 4500}, 200)
    assert (won["status"], won["value"]) == ("won", 4500.0)
    r = await client.post(f"{url}/stage", json={"stage": "engaging"})
    assert r.status_code == 409 and "reopen" in r.json()["detail"]

    r = await client.get(f"{url}/history")
    assert [(h["from_stage"], h["to_stage"]) for h in r.json()] == [
        (None, "prospecting"),
        ("prospecting", "engaging"),
        ("engaging", "won"),
    ]
    r = await client.get("/api/events", params={"kind": "deal.stage_changed", "deal_id": deal["id"]})
    # the actor is the credential's user (the built-in admin here), never a body field
    assert r.json()["total"] == 2 and r.json()["items"][0]["actor"] == "admin-token"
    assert (await client.get("/api/deals/999/history")).status_code == 404


async def test_deal_list_filters_and_pipeline(client: httpx.AsyncClient) -> None:
    acc = await post(client, "/api/accounts", {"name": "Cancity", "sector": "retail"})
    prod = await post(client, "/api/products", {"name": "GTX Pro", "series": "GTX", "list_price": 4000})
    rep = await post(
        client, "/api/reps", {"name": "Darcel Schlecht", "manager": "Rocco", "regional_office": "Central"}
    )
    common = {
        "account_id": acc["id"],
        "product_id": prod["id"],
        "rep_id": rep["id"],
        "engage_date": "2017-03-01",
    }
    await post(
        client,
        "/api/deals",
        {**common, "external_id": "W1", "stage": "won", "value": 5000, "close_date": "2017-03-11"},
    )
    await post(
        client, "/api/deals", {**common, "external_id": "L1", "stage": "lost", "close_date": "2017-04-01"}
    )
    await post(client, "/api/deals", {**common, "external_id": "E1", "stage": "engaging"})
    await post(client, "/api/deals", {"external_id": "P1"})

    async def ids(**params: Any) -> list[str]:
        r = await client.get("/api/deals", params=params)
        assert r.status_code == 200, r.text
        return [d["external_id"] for d in r.json()["items"]]

    assert await ids(account="cancity") == ["W1", "L1", "E1"]
    assert await ids(account=str(acc["id"]), status="open") == ["E1"]
    assert await ids(rep="Darcel Schlecht", stage=["won", "lost"]) == ["W1", "L1"]
    assert await ids(office="central", closed_from="2017-03-15") == ["L1"]
    assert await ids(sort="-id", limit=2) == ["P1", "E1"]
    r = await client.get("/api/deals", params={"account": "Nope"})
    assert r.status_code == 409 and r.json()["field"] == "account" and "Nope" in r.json()["detail"]
    r = await client.get("/api/deals", params={"status": "maybe"})
    assert r.status_code == 422 and r.json()["message"].startswith("status:")
    r = await client.get("/api/deals", params={"sort": "luck"})
    assert r.status_code == 422 and "sort" in r.json()["message"]

    r = await client.get("/api/pipeline/summary")
    s = r.json()
    assert (s["total_deals"], s["open"], s["won"], s["lost"], s["win_rate"], s["won_value"]) == (
        4,
        2,
        1,
        1,
        50.0,
        5000.0,
    )
    assert [b["stage"] for b in s["by_stage"]][:2] == ["prospecting", "engaging"]
    assert s["by_stage"][1]["value"] == 4000.0  # open deal without value: the list price
    r = await client.get("/api/pipeline/summary", params={"rep": "darcel schlecht"})
    assert r.json()["total_deals"] == 3
    r = await client.get("/api/pipeline/metrics", params={"group_by": "rep", "order_by": "won_value"})
    rows = r.json()
    assert [(m["group"], m["won_value"]) for m in rows] == [("Darcel Schlecht", 5000.0), (None, 0.0)]
    assert rows[0]["avg_cycle_days"] == 10.0 and rows[0]["win_rate"] == 50.0
    r = await client.get("/api/pipeline/metrics", params={"group_by": "planet"})
    assert r.status_code == 422 and r.json()["message"].startswith("group_by:")
    r = await client.get("/api/pipeline/stages")
    assert [st["key"] for st in r.json()][-2:] == ["won", "lost"] and r.json()[5]["requires"][-1] == "value"
    # created through the API today, so in its stage since today (the history row), not since 2017
    r = await client.get(
        "/api/pipeline/stuck", params={"stage": "engaging", "older_than_days": 30, "as_of": "2099-01-01"}
    )
    assert [d["deal"]["external_id"] for d in r.json()] == ["E1"] and r.json()[0]["days_in_stage"] > 20000
    r = await client.get("/api/pipeline/stuck", params={"stage": "engaging", "older_than_days": 30})
    assert r.json() == []
    r = await client.get("/api/pipeline/stuck", params={"stage": "won"})  # closed: nothing is stuck there
    assert r.status_code == 409 and r.json()["field"] == "stage"


async def test_reminders_recommendations_events(client: httpx.AsyncClient) -> None:
    rep = await post(client, "/api/reps", {"name": "Ann"})
    rem = await post(
        client, "/api/reminders", {"rep_id": rep["id"], "due_at": "2024-06-01T09:00:00Z", "message": "call"}
    )
    assert rem["status"] == "pending"
    r = await client.post("/api/reminders", json={"due_at": "2024-06-01T09:00:00", "message": "naive time"})
    assert r.status_code == 422 and r.json()["message"].startswith("due_at:")
    r = await client.patch(f"/api/reminders/{rem['id']}", json={"status": "done"})
    assert r.status_code == 200 and r.json()["status"] == "done"
    r = await client.patch(f"/api/reminders/{rem['id']}", json={"status": "forgotten"})
    assert r.status_code == 422 and r.json()["message"].startswith("status:")
    assert (await client.get("/api/reminders", params={"status": "done"})).json()["total"] == 1
    assert (await client.get("/api/reminders/999")).status_code == 404

    rec = await post(
        client, "/api/recommendations", {"rep_id": rep["id"], "action": "Call", "reason": "quiet"}
    )
    r = await client.patch(f"/api/recommendations/{rec['id']}", json={"status": "accepted"})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert (await client.get("/api/recommendations", params={"rep_id": rep["id"]})).json()["total"] == 1
    r = await client.post("/api/recommendations", json={"action": "x", "reason": "y", "rep_id": 999})
    assert r.status_code == 409 and r.json()["field"] == "rep_id"

    ev = await post(client, "/api/events", {"kind": "call", "thread_id": "t1", "payload": {"q": "hi"}})
    r = await client.get("/api/events", params={"thread_id": "t1"})
    assert [e["id"] for e in r.json()["items"]] == [ev["id"]]
    r = await client.get("/api/events", params={"kind": "*"})
    assert r.json()["total"] == 3  # reminder and recommendation status changes, the call
    r = await client.post("/api/events", json={"kind": "Bad Kind"})
    assert r.status_code == 422 and r.json()["message"].startswith("kind:")


async def test_openapi_lists_the_crm(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    paths = r.json()["paths"]
    for p in ("/api/accounts", "/api/deals/{deal_id}/stage", "/api/pipeline/summary", "/api/events"):
        assert p in paths
    assert (await client.get("/docs")).status_code == 200


async def test_storage_limits_are_422s_naming_the_field(client: httpx.AsyncClient) -> None:
    """What PostgreSQL cannot store is refused up front (these were 500s: psycopg DataError,
    NumericValueOutOfRange), with the field named and the rule said in words."""
    r = await client.post("/api/accounts", json={"name": "Nul\x00Co"})
    assert (r.status_code, r.json()["field"]) == (422, "name")
    assert r.json()["message"] == "name: must not be blank or contain NUL characters (\\x00)"
    r = await client.post("/api/events", json={"kind": "note", "payload": {"a": [{"b": "x\x00"}]}})
    assert r.status_code == 422 and r.json()["message"].startswith("payload: ") and "a[0].b" in r.text
    r = await client.get("/api/accounts", params={"sector": "x\x00"})
    assert (r.status_code, r.json()["field"]) == (422, "sector")
    big = 2**63  # one past bigint
    for url in (f"/api/accounts/{big}", f"/api/contacts?account_id={big}", f"/api/deals/{big}/history"):
        r = await client.get(url)
        assert r.status_code == 422 and "less than or equal to 9007199254740991" in r.text, url
    r = await client.post("/api/contacts", json={"first_name": "A", "last_name": "B", "account_id": big})
    assert (r.status_code, r.json()["field"]) == (422, "account_id")
    r = await client.get("/api/deals", params={"account": str(big)})  # digits of a name filter: an id
    assert (r.status_code, r.json()["field"]) == (409, "account")
    r = await client.post("/api/products", json={"name": "P", "list_price": True})
    assert (r.status_code, r.json()["field"]) == (422, "list_price")  # JSON true is not a number
    r = await client.get("/api/events", params={"since": "0.5"})  # not read as a Unix time
    assert (r.status_code, r.json()["field"]) == (422, "since")


async def test_partial_updates_and_rules_of_the_request(client: httpx.AsyncClient) -> None:
    acc = await post(client, "/api/accounts", {"name": "Cancity"})
    r = await client.patch(f"/api/accounts/{acc['id']}", json={"name": None})  # left out is fine, null not
    assert (r.status_code, r.json()["field"]) == (422, "name")
    r = await client.post("/api/accounts", json={"name": "   "})
    assert (r.status_code, r.json()["field"]) == (422, "name")
    body = {"stage": "lost", "engage_date": "2017-03-02", "close_date": "2017-03-01"}
    r = await client.post("/api/deals", json=body)
    assert (r.status_code, r.json()["field"]) == (422, "close_date")
    r = await client.get("/api/deals", params={"engaged_from": "2017-02-01", "engaged_to": "2017-01-01"})
    assert (r.status_code, r.json()["field"]) == (422, "engaged_to")
    r = await client.get("/api/pipeline/stuck", params={"stage": "engaging", "as_of": "0001-01-02"})
    assert (r.status_code, r.json()) == (200, [])  # a cut-off before year 1: nothing is that old


async def test_405_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    r = await client.delete("/api/accounts")
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    r = await client.put("/api/accounts/1")
    assert r.status_code == 405 and r.headers["allow"] == "GET, PATCH"


async def test_openapi_declares_the_errors_with_their_bodies(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    ops = {(m.upper(), p): op for p, item in spec["paths"].items() for m, op in item.items()}
    patch = ops[("PATCH", "/api/deals/{deal_id}")]["responses"]
    assert set(patch) >= {"200", "400", "404", "409", "422", "503"}
    assert patch["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert patch["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ValidationErrorBody")
    path_id = ops[("GET", "/api/accounts/{account_id}")]["parameters"][0]["schema"]
    assert (path_id["minimum"], path_id["maximum"]) == (1, 2**53 - 1)
    # no open mode: every /api operation declares the bearer token and the session cookie, and 401
    assert set(spec["components"]["securitySchemes"]) == {"token", "session"}
    assert {"token": []} in ops[("GET", "/api/accounts")]["security"]
    assert "401" in ops[("GET", "/api/accounts")]["responses"]
    link = ops[("POST", "/api/deals")]["responses"]["201"]["links"]["PostDealsDealIdStage"]
    assert link == {
        "operationRef": "#/paths/~1api~1deals~1{deal_id}~1stage/post",
        "parameters": {"deal_id": "$response.body#/id"},
    }
    r = await client.post("/api/reps", json={"name": "Ann", "email": "ann\u0085@x.io"})
    assert (r.status_code, r.json()["field"]) == (422, "email")  # NEL is whitespace here as in the schema
