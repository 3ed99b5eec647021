"""`GET /api/accounts/{account_id}/documents`: the documents on an account and on its deals, newest
first, a page at a time, each caller seeing only those of the deals they read. The small CRM of
`tests.tools.conftest` (Acme's deals are Ann's; Betaco's Bob's; Gammaco's Cy's), documents stored
through `POST /api/documents` by the admin (one request each, so each is newer than the last)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.app.test_authz_rest import Headers
from tests.app.test_authz_rest import client as client
from tests.app.test_authz_rest import who as who
from tests.conftest import AUTH
from tests.tools.conftest import CRM
from tests.tools.conftest import crm_data as crm_data


async def _doc(client: httpx.AsyncClient, content: str, **fields: Any) -> int:
    r = await client.post("/api/documents", json={"content": content, **fields}, headers=AUTH)
    assert r.status_code == 201, r.text
    doc_id: int = r.json()["id"]
    return doc_id


async def _list(
    client: httpx.AsyncClient, account_id: int, headers: Headers, **params: Any
) -> httpx.Response:
    return await client.get(f"/api/accounts/{account_id}/documents", params=params, headers=headers)


def _ids(r: httpx.Response) -> list[int]:
    assert r.status_code == 200, r.text
    return [d["id"] for d in r.json()["items"]]


async def test_the_documents_of_the_account_and_of_its_deals_newest_first(
    client: httpx.AsyncClient, crm_data: CRM
) -> None:
    acme, betaco = crm_data.account["Acme"], crm_data.account["Betaco"]
    call = await _doc(
        client,
        "Kick-off call with Dana.\nShe wants a pilot in March.",
        metadata={"kind": "call_note", "url": "https://docs.example/acme/kickoff"},
        account_id=acme,
    )
    email = await _doc(
        client,
        "x" * 1000,
        metadata={"kind": "email", "title": "Re: GTX Pro pricing", "link": "javascript:alert(1)"},
        deal_id=crm_data.deal["D0000001"],  # on Acme's deal only, not on the account itself
    )
    await _doc(client, "Betaco's own note", account_id=betaco)  # a subsidiary's: not Acme's
    await _doc(client, "A note on Cy's deal", deal_id=crm_data.deal["D0000006"])  # Gammaco's
    await _doc(client, "The GTX product sheet")  # general material, tied to no account

    r = await _list(client, acme, AUTH)
    assert _ids(r) == [email, call]
    assert (r.json()["total"], r.json()["limit"], r.json()["offset"]) == (2, 50, 0)
    first, second = r.json()["items"]
    assert first["title"] == "Re: GTX Pro pricing" and first["kind"] == "email"
    assert first["url"] is None  # only an http(s) link is one
    assert (first["deal_id"], first["account_id"]) == (crm_data.deal["D0000001"], None)
    assert first["excerpt"] == "x" * 280 and "content" not in first  # not the whole text
    assert second["title"] == "Kick-off call with Dana."  # no title: the text's first line
    assert (second["kind"], second["url"]) == ("call_note", "https://docs.example/acme/kickoff")
    assert second["metadata"] == {"kind": "call_note", "url": "https://docs.example/acme/kickoff"}
    assert first["created_at"] > second["created_at"]

    r = await _list(client, acme, AUTH, limit=1, offset=1)
    assert _ids(r) == [call] and r.json()["total"] == 2
    assert _ids(await _list(client, crm_data.account["Deltaco"], AUTH)) == []  # an account with none


async def test_a_rep_sees_the_documents_of_the_deals_they_read_and_nothing_of_an_account_they_do_not(
    client: httpx.AsyncClient, crm_data: CRM, who: dict[str, Headers]
) -> None:
    acme = crm_data.account["Acme"]
    # Cy gets a deal on Acme too: both Ann and Cy now read the account
    r = await client.post(
        "/api/deals",
        json={
            "account_id": acme,
            "product_id": crm_data.product["GTX Pro"],
            "rep_id": crm_data.rep["Cy Gamma"],
        },
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    cys_deal = r.json()["id"]
    on_account = await _doc(client, "Acme's yearly plan", account_id=acme)
    on_anns = await _doc(client, "Ann's call about GTX Pro", deal_id=crm_data.deal["D0000001"])
    # on the account and on Cy's deal: the deal decides who reads it
    on_cys = await _doc(client, "Cy's call about the new deal", deal_id=cys_deal, account_id=acme)

    assert _ids(await _list(client, acme, AUTH)) == [on_cys, on_anns, on_account]
    assert _ids(await _list(client, acme, who["ann"])) == [on_anns, on_account]
    assert _ids(await _list(client, acme, who["cy"])) == [on_cys, on_account]
    assert _ids(await _list(client, acme, who["mia"])) == [on_anns, on_account]  # Ann's manager
    r = await _list(client, acme, who["cy"])
    assert r.json()["total"] == 2

    # Bob reads no deal on Acme: the account answers as one that does not exist
    r = await _list(client, acme, who["bob"])
    assert (r.status_code, r.json()) == (404, {"detail": f"account {acme} not found"})
    gammaco = crm_data.account["Gammaco"]
    r = await _list(client, gammaco, who["ann"])
    assert (r.status_code, r.json()) == (404, {"detail": f"account {gammaco} not found"})
    assert (await _list(client, 999_999, AUTH)).status_code == 404


async def test_the_route_checks_its_parameters_and_is_in_the_openapi(client: httpx.AsyncClient) -> None:
    for params in ({"limit": 0}, {"limit": 501}, {"offset": -1}):
        r = await client.get("/api/accounts/1/documents", params=params, headers=AUTH)
        assert (r.status_code, r.json()["field"]) == (422, next(iter(params))), params
    assert (await client.get("/api/accounts/0/documents", headers=AUTH)).status_code == 422

    spec = (await client.get("/openapi.json", headers=AUTH)).json()
    op = spec["paths"]["/api/accounts/{account_id}/documents"]["get"]
    assert set(op["responses"]) >= {"200", "401", "404", "422", "503"}
    page = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert page.endswith("/Page_DocumentOut_")
    fields = spec["components"]["schemas"]["DocumentOut"]["properties"]
    assert "content" not in fields and {"title", "kind", "url", "excerpt", "created_at"} <= set(fields)
