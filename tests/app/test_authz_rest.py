"""Scope on the REST API: who reads and changes which records, proposals for approval, and who
is recorded as having done it. The small CRM of `tests.tools.conftest` (Ann Alpha and Bob Beta
report to Mia Manager; Cy Gamma to Nat Boss), users and tokens made with `crm.users`, requests
through the real app on the real database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from app.main import create_app
from config.files import AccessConfig, load_access
from crm import users
from crm.db import session_scope
from crm.models import EMBEDDING_DIM, Event
from tests.conftest import AUTH
from tests.support.apps import plain_endpoints
from tests.tools.conftest import CRM
from tests.tools.conftest import crm_data as crm_data

Headers = dict[str, str]


class _SameVector:
    """An embedder giving every text the same vector: search order is not under test here, only
    which documents a caller may find."""

    model_name = "same-vector"

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [1.0] + [0.0] * (EMBEDDING_DIM - 1)


@pytest.fixture
async def client(clean_db: Engine, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    endpoints = plain_endpoints(database_url)
    app = create_app(endpoints)
    app.state.embedder = _SameVector()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


@pytest.fixture
def who(crm_data: CRM, clean_db: Engine) -> dict[str, Headers]:
    """Bearer headers of reps `ann`, `bob`, `cy`, manager `mia` (Ann's and Bob's) and the
    built-in `admin`."""
    out: dict[str, Headers] = {"admin": AUTH}
    with session_scope(clean_db) as s:
        for name, role, rep, manager in (
            ("ann", "rep", "Ann Alpha", None),
            ("bob", "rep", "Bob Beta", None),
            ("cy", "rep", "Cy Gamma", None),
            ("mia", "manager", None, "Mia Manager"),
        ):
            users.add_user(s, name, role=role, rep=rep, manager_name=manager)  # type: ignore[arg-type]
            out[name] = {"Authorization": f"Bearer {users.issue(s, name, 'token').secret}"}
    return out


def _ids(page: dict[str, Any]) -> set[int]:
    return {item["id"] for item in page["items"]}


async def test_a_rep_reads_only_their_own_deals_a_manager_their_teams_an_admin_all(
    client: httpx.AsyncClient, crm_data: CRM, who: dict[str, Headers]
) -> None:
    deal = crm_data.deal
    anns = {deal["D0000001"], deal["D0000002"], deal["D0000003"]}
    r = await client.get("/api/deals", headers=who["ann"])
    assert r.status_code == 200 and (r.json()["total"], _ids(r.json())) == (3, anns)
    r = await client.get("/api/deals", headers=who["mia"])
    assert r.json()["total"] == 5 and deal["D0000006"] not in _ids(r.json())
    assert (await client.get("/api/deals", headers=who["admin"])).json()["total"] == 8

    assert (await client.get(f"/api/deals/{deal['D0000001']}", headers=who["ann"])).status_code == 200
    # another team's deal answers exactly like a deal that does not exist
    r = await client.get(f"/api/deals/{deal['D0000006']}", headers=who["ann"])
    assert (r.status_code, r.json()) == (404, {"detail": f"deal {deal['D0000006']} not found"})
    for url in (f"/api/deals/{deal['D0000004']}", f"/api/deals/{deal['D0000006']}/history"):
        assert (await client.get(url, headers=who["ann"])).status_code == 404
    assert (await client.get(f"/api/deals/{deal['D0000004']}", headers=who["mia"])).status_code == 200
    assert (await client.get(f"/api/deals/{deal['D0000006']}", headers=who["mia"])).status_code == 404


async def test_the_pipeline_accounts_and_contacts_follow_the_deals(
    client: httpx.AsyncClient, crm_data: CRM, who: dict[str, Headers]
) -> None:
    r = await client.get("/api/pipeline/summary", headers=who["ann"])
    assert r.status_code == 200 and (r.json()["total_deals"], r.json()["won"]) == (3, 2)
    r = await client.get("/api/pipeline/summary", headers=who["cy"])
    assert r.json()["total_deals"] == 3 and r.json()["won_value"] == 4800
    r = await client.get("/api/pipeline/metrics", params={"group_by": "rep"}, headers=who["mia"])
    assert {row["group"] for row in r.json()} == {"Ann Alpha", "Bob Beta"}

    acc = crm_data.account
    r = await client.get("/api/accounts", headers=who["ann"])
    # Acme (her deals) and Deltaco (no deal at all: a prospect anyone may pick up); not Betaco
    # (Bob's) nor Gammaco (Cy's)
    assert _ids(r.json()) == {acc["Acme"], acc["Deltaco"]}
    assert (await client.get(f"/api/accounts/{acc['Gammaco']}", headers=who["ann"])).status_code == 404
    r = await client.get(f"/api/accounts/{acc['Acme']}/profile", headers=who["mia"])
    assert r.status_code == 200 and r.json()["metrics"]["deals"] == 3
    assert [s["name"] for s in r.json()["subsidiaries"]] == ["Betaco"]  # Bob's: Mia's team
    # the profile names only the parent and subsidiaries the caller reads
    r = await client.get(f"/api/accounts/{acc['Acme']}/profile", headers=who["ann"])
    assert r.status_code == 200 and r.json()["subsidiaries"] == []
    r = await client.get(f"/api/accounts/{acc['Betaco']}/profile", headers=who["bob"])
    assert r.status_code == 200 and r.json()["parent"] is None
    r = await client.get(f"/api/accounts/{acc['Betaco']}/profile", headers=who["mia"])
    assert r.json()["parent"]["name"] == "Acme"
    r = await client.patch(f"/api/accounts/{acc['Acme']}", json={"sector": "x"}, headers=who["cy"])
    assert r.status_code == 404

    dana = crm_data.contact["Dana Diaz"]
    assert (await client.get(f"/api/contacts/{dana}", headers=who["ann"])).status_code == 200
    assert (await client.get(f"/api/contacts/{dana}", headers=who["cy"])).status_code == 404
    assert (await client.get("/api/contacts", headers=who["cy"])).json()["total"] == 0
    # a rep adds a prospect and reads it back
    r = await client.post("/api/accounts", json={"name": "Newco"}, headers=who["cy"])
    assert r.status_code == 201
    assert (await client.get(f"/api/accounts/{r.json()['id']}", headers=who["cy"])).status_code == 200


async def test_changes_need_the_caller_to_act_for_the_deals_rep(
    client: httpx.AsyncClient, crm_data: CRM, who: dict[str, Headers]
) -> None:
    deal = crm_data.deal
    d5, d6 = deal["D0000005"], deal["D0000006"]  # Bob's (Mia's team), Cy's (Nat's team)
    r = await client.post(f"/api/deals/{d6}/stage", json={"stage": "qualified"}, headers=who["ann"])
    assert r.status_code == 404
    assert (await client.patch(f"/api/deals/{d6}", json={"value": 1}, headers=who["mia"])).status_code == 404
    r = await client.post(f"/api/deals/{d5}/stage", json={"stage": "qualified"}, headers=who["mia"])
    assert r.status_code == 200 and r.json()["stage"] == "qualified"
    r = await client.get(
        "/api/events", params={"kind": "deal.stage_changed", "deal_id": d5}, headers=who["mia"]
    )
    assert [e["actor"] for e in r.json()["items"]] == ["mia"]

    # a deal for another rep: 403 naming rep_id; a rep's own deal needs no rep_id
    body = {"account_id": crm_data.account["Deltaco"]}
    r = await client.post("/api/deals", json={**body, "rep_id": crm_data.rep["Cy Gamma"]}, headers=who["ann"])
    assert (r.status_code, r.json()["field"]) == (403, "rep_id")
    r = await client.post("/api/deals", json=body, headers=who["ann"])
    assert r.status_code == 201 and r.json()["rep_name"] == "Ann Alpha"
    r = await client.post(
        "/api/reminders",
        json={"deal_id": d6, "due_at": "2030-01-01T09:00:00Z", "message": "x"},
        headers=who["ann"],
    )
    assert (r.status_code, r.json()["field"]) == (409, "deal_id")  # outside her reading: as if unknown


async def test_a_wider_reading_is_not_a_wider_acting(
    client: httpx.AsyncClient, crm_data: CRM, who: dict[str, Headers], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `read: {rep: team}` Ann reads Bob's deals but may not change them: 403, not 404."""
    shared = AccessConfig(read={"rep": "team"}, client_event_kinds=load_access().client_event_kinds)
    monkeypatch.setattr(users, "load_access", lambda: shared)
    d5 = crm_data.deal["D0000005"]
    assert (await client.get(f"/api/deals/{d5}", headers=who["ann"])).status_code == 200
    r = await client.post(f"/api/deals/{d5}/stage", json={"stage": "qualified"}, headers=who["ann"])
    assert r.status_code == 403 and "another rep" in r.json()["detail"]
    assert (await client.patch(f"/api/deals/{d5}", json={"value": 1}, headers=who["ann"])).status_code == 403
    r = await client.post(
        f"/api/deals/{d5}/proposals",
        json={"kind": "move_stage", "params": {"stage": "qualified"}},
        headers=who["ann"],
    )
    assert r.status_code == 403


async def test_a_proposal_waits_in_the_inbox_and_its_approval_is_the_approvers(
    client: httpx.AsyncClient, crm_data: CRM, who: dict[str, Headers], clean_db: Engine
) -> None:
    d5 = crm_data.deal["D0000005"]
    body = {"kind": "move_stage", "params": {"stage": "Qualified", "reason": "budget confirmed"}}
    r = await client.post(f"/api/deals/{d5}/proposals", json=body, headers=who["bob"])
    assert r.status_code == 201, r.text
    item = r.json()
    assert (item["kind"], item["recipient"], item["rep_id"], item["deal_id"], item["status"]) == (
        "action",
        "Bob Beta",
        crm_data.rep["Bob Beta"],
        d5,
        "open",
    )
    assert item["title"] == "Move D0000005 (Betaco) to Qualified"
    assert item["action"]["kind"] == "move_stage" and item["action"]["params"]["deal_id"] == d5
    assert (await client.get(f"/api/deals/{d5}", headers=who["bob"])).json()["stage"] == "engaging"

    # Cy (another team) neither sees nor decides it; Bob's manager does both
    assert (await client.get("/api/inbox", headers=who["cy"])).json()["total"] == 0
    r = await client.post(f"/api/inbox/{item['id']}", json={"decision": "approve"}, headers=who["cy"])
    assert r.status_code == 404
    assert item["id"] in _ids((await client.get("/api/inbox", headers=who["mia"])).json())
    r = await client.post(f"/api/inbox/{item['id']}", json={"decision": "edit"}, headers=who["mia"])
    assert (r.status_code, r.json()["field"]) == (409, "edits")  # refused by the item, not the request
    r = await client.post(f"/api/inbox/{item['id']}", json={"decision": "approve"}, headers=who["mia"])
    assert r.status_code == 200, r.text
    assert (r.json()["item"]["status"], r.json()["item"]["decided_by"]) == ("approved", "mia")
    assert (await client.get(f"/api/deals/{d5}", headers=who["bob"])).json()["stage"] == "qualified"
    with session_scope(clean_db) as s:
        moved = s.scalars(select(Event).where(Event.kind == "deal.stage_changed", Event.deal_id == d5)).all()
        assert [(e.actor, e.payload["note"]) for e in moved] == [("mia", "budget confirmed")]


async def test_a_proposal_against_an_entry_rule_is_refused_at_once(
    client: httpx.AsyncClient, crm_data: CRM, who: dict[str, Headers]
) -> None:
    d7 = crm_data.deal["D0000007"]  # Cy's, prospecting, no account: Qualified requires one
    body = {"kind": "move_stage", "params": {"stage": "qualified"}}
    r = await client.post(f"/api/deals/{d7}/proposals", json=body, headers=who["cy"])
    assert r.status_code == 409 and r.json()["field"] == "account"
    assert "Qualified: it requires account" in r.json()["detail"]
    assert (await client.get("/api/inbox", headers=who["cy"])).json()["total"] == 0  # nothing filed
    r = await client.post(f"/api/deals/{d7}/proposals", json=body, headers=who["ann"])
    assert r.status_code == 404


async def test_clients_log_only_interactions_and_never_name_the_actor(
    client: httpx.AsyncClient, crm_data: CRM, who: dict[str, Headers]
) -> None:
    r = await client.post("/api/events", json={"kind": "deal.stage_changed"}, headers=who["ann"])
    assert (r.status_code, r.json()["field"]) == (422, "kind")
    acme = crm_data.account["Acme"]
    r = await client.post(
        "/api/events", json={"kind": "call", "account_id": acme, "actor": "bob"}, headers=who["ann"]
    )
    assert r.status_code == 201 and r.json()["actor"] == "ann"

    d1 = crm_data.deal["D0000001"]
    r = await client.post(
        f"/api/deals/{d1}/stage",
        json={"stage": "engaging", "reopen": True, "changed_by": "bob"},
        headers=who["ann"],
    )
    assert (r.status_code, r.json()["field"]) == (422, "changed_by")
    spec = (await client.get("/openapi.json", headers=who["ann"])).json()["components"]["schemas"]
    offered = {
        name: set(spec[name]["properties"])
        for name in ("StageMove", "InboxDecision", "EventCreate", "DealCreate")
    }
    assert not {"actor", "changed_by", "created_by"} & set().union(*offered.values())
    assert spec["EventCreate"]["properties"]["kind"]["enum"] == list(load_access().client_event_kinds)


async def test_reminders_and_recommendations_belong_to_their_deals_rep(
    client: httpx.AsyncClient, crm_data: CRM, who: dict[str, Headers]
) -> None:
    due = "2030-01-01T09:00:00Z"
    r = await client.post("/api/reminders", json={"due_at": due, "message": "call back"}, headers=who["ann"])
    assert r.status_code == 201 and r.json()["rep_id"] == crm_data.rep["Ann Alpha"]  # hers by default
    rid = r.json()["id"]
    assert rid not in _ids((await client.get("/api/reminders", headers=who["cy"])).json())
    assert (await client.get(f"/api/reminders/{rid}", headers=who["cy"])).status_code == 404
    assert (await client.delete(f"/api/reminders/{rid}", headers=who["cy"])).status_code == 404
    r = await client.patch(f"/api/reminders/{rid}", json={"message": "call back today"}, headers=who["mia"])
    assert r.status_code == 200 and rid in _ids(
        (await client.get("/api/reminders", headers=who["mia"])).json()
    )

    body = {"deal_id": crm_data.deal["D0000006"], "action": "Call", "reason": "quiet"}
    r = await client.post("/api/recommendations", json=body, headers=who["admin"])
    rec = r.json()["id"]
    assert (await client.get("/api/recommendations", headers=who["ann"])).json()["total"] == 0
    assert (await client.get(f"/api/recommendations/{rec}", headers=who["cy"])).status_code == 200
    r = await client.patch(f"/api/recommendations/{rec}", json={"status": "accepted"}, headers=who["cy"])
    assert r.status_code == 200
    r = await client.get("/api/events", params={"kind": "recommendation.status_changed"}, headers=who["cy"])
    assert [e["actor"] for e in r.json()["items"]] == ["cy"]
    assert (await client.get("/api/events", params={"kind": "recommendation.*"}, headers=who["ann"])).json()[
        "total"
    ] == 0


async def test_document_search_finds_only_what_the_caller_reads(
    client: httpx.AsyncClient, crm_data: CRM, who: dict[str, Headers]
) -> None:
    for body in (
        {"content": "Acme wants a bulk price", "account_id": crm_data.account["Acme"]},
        {"content": "Gammaco call notes", "deal_id": crm_data.deal["D0000006"]},
        {"content": "GTX Pro product sheet"},
    ):
        assert (await client.post("/api/documents", json=body, headers=who["admin"])).status_code == 201
    r = await client.get("/api/documents/search", params={"q": "notes", "k": 10}, headers=who["ann"])
    assert {hit["content"] for hit in r.json()["results"]} == {
        "Acme wants a bulk price",
        "GTX Pro product sheet",
    }
    r = await client.post(
        "/api/documents", json={"content": "x", "deal_id": crm_data.deal["D0000004"]}, headers=who["ann"]
    )
    assert (r.status_code, r.json()["field"]) == (409, "deal_id")  # Bob's deal: as if unknown to her
