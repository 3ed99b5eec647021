"""The documents memory: notes, emails and call summaries with their embeddings (pgvector).

Search is cosine distance (`<=>`) on `documents.embedding`, served by the HNSW index
`ix_documents_embedding_hnsw` (`vector_cosine_ops`): the query has the index's shape
(`ORDER BY embedding <=> :q LIMIT k`). `score` = 1 - cosine distance = cosine similarity, in
[-1, 1], higher is closer. With the local E5 model scores of related texts sit in a narrow band
(about 0.72-0.83 measured), so compare scores with each other, not with a fixed threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Row, Table, bindparam, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from contracts.fields import Input, JsonObject, NonBlank, RecordId
from crm.access import documents_condition
from crm.embeddings import Embedder
from crm.errors import Inconsistent, Invalid
from crm.models import Account, Deal, Document
from crm.schemas import EXCERPT_CHARS, TITLE_CHARS, DocumentOut, Page

#: Largest document accepted: E5 reads 512 tokens at most, so longer text is not searchable
#: beyond its start anyway; this bound just keeps one request from carrying megabytes.
MAX_CONTENT_CHARS = 20_000
#: HNSW candidate list size (pgvector's `hnsw.ef_search`, default 40). An index scan returns at
#: most ef_search rows, and a filter (account_id) is applied after the scan, so it is raised with
#: k and more when filtering.
EF_SEARCH_MIN = 40
#: Documents per embedding call in `reembed_all`.
REEMBED_BATCH = 64


class DocumentIn(Input):
    """A document to store: its text, free-form metadata (e.g. {"kind": "call_note"}) and the
    account / deal it is about."""

    content: NonBlank = Field(max_length=MAX_CONTENT_CHARS)
    metadata: JsonObject = Field(default_factory=dict)
    account_id: RecordId | None = None
    deal_id: RecordId | None = None


class DocumentHit(BaseModel):
    """A search result; `score` is the cosine similarity to the query (1 - cosine distance)."""

    id: int
    content: str
    metadata: dict[str, Any]
    account_id: int | None
    deal_id: int | None
    score: float


def _check_refs(session: Session, docs: Sequence[DocumentIn]) -> None:
    for field, model, ids in (
        ("account_id", Account, {d.account_id for d in docs if d.account_id is not None}),
        ("deal_id", Deal, {d.deal_id for d in docs if d.deal_id is not None}),
    ):
        if not ids:
            continue
        found = set(session.scalars(select(model.id).where(model.id.in_(ids))))
        missing = sorted(ids - found)
        if missing:
            raise Inconsistent(field, f"no {field.removesuffix('_id')} with id {missing[0]}")


def add_documents(session: Session, embedder: Embedder, docs: Sequence[DocumentIn]) -> list[int]:
    """Embed (as passages) and store `docs`; returns their ids in order.

    Raises `Inconsistent("account_id" | "deal_id", ...)` when a referenced account or deal does
    not exist. Runs in the caller's transaction.
    """
    if not docs:
        return []
    _check_refs(session, docs)
    vectors = embedder.embed_documents([d.content for d in docs])
    table = Document.__table__
    assert isinstance(table, Table)
    rows = [
        {
            "content": d.content,
            "metadata": d.metadata,
            "account_id": d.account_id,
            "deal_id": d.deal_id,
            "embedding": v,
            "embedding_model": embedder.model_name,
        }
        for d, v in zip(docs, vectors, strict=True)
    ]
    # Single-row RETURNING keeps ids in input order; executemany's batched RETURNING may not.
    return [session.execute(insert(table).returning(table.c.id), [row]).scalar_one() for row in rows]


def search_by_vector(
    session: Session,
    vector: Sequence[float],
    k: int = 5,
    account_id: int | None = None,
    scope: ColumnElement[bool] | None = None,
) -> list[DocumentHit]:
    """The `k` documents nearest to `vector` by cosine distance, best first; optionally only
    those of `account_id`, and only those `scope` lets the caller read
    (`crm.access.documents_condition`). Documents without an embedding are skipped."""
    # a filter applies after the index scan: look at more candidates so k of them survive it
    filtered = account_id is not None or scope is not None
    ef = max(200, 10 * k) if filtered else max(EF_SEARCH_MIN, 2 * k)
    # SET LOCAL lasts until the end of the current transaction only.
    session.execute(text(f"SET LOCAL hnsw.ef_search = {int(ef)}"))
    distance = Document.embedding.cosine_distance(list(vector))
    stmt = (
        select(
            Document.id,
            Document.content,
            Document.metadata_,
            Document.account_id,
            Document.deal_id,
            distance.label("distance"),
        )
        .where(Document.embedding.isnot(None))
        .order_by(distance)
        .limit(k)
    )
    if account_id is not None:
        stmt = stmt.where(Document.account_id == account_id)
    if scope is not None:
        stmt = stmt.where(scope)
    return [
        DocumentHit(
            id=r.id,
            content=r.content,
            metadata=r.metadata_,
            account_id=r.account_id,
            deal_id=r.deal_id,
            score=round(1.0 - float(r.distance), 6),
        )
        for r in session.execute(stmt)
    ]


def search_documents(
    session: Session, embedder: Embedder, q: str, k: int = 5, account_id: int | None = None
) -> list[DocumentHit]:
    """Semantic search: embed `q` as a query, then `search_by_vector`. Raises Invalid for an
    empty query or k outside 1..50."""
    if not q.strip():
        raise Invalid("q", "the search text is empty")
    if not 1 <= k <= 50:
        raise Invalid("k", "must be between 1 and 50")
    return search_by_vector(session, embedder.embed_query(q), k=k, account_id=account_id)


def reembed_all(session: Session, embedder: Embedder) -> int:
    """Recompute every document's embedding with `embedder` (after a model switch); returns the
    number of documents updated. Runs in the caller's transaction, so a failure keeps the old
    vectors."""
    table = Document.__table__
    assert isinstance(table, Table)
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(embedding=bindparam("b_embedding"), embedding_model=bindparam("b_model"))
    )
    ids = list(session.scalars(select(Document.id).order_by(Document.id)))
    for start in range(0, len(ids), REEMBED_BATCH):
        chunk = ids[start : start + REEMBED_BATCH]
        rows = session.execute(
            select(Document.id, Document.content).where(Document.id.in_(chunk)).order_by(Document.id)
        ).all()
        vectors = embedder.embed_documents([r.content for r in rows])
        session.execute(
            stmt,
            [
                {"b_id": r.id, "b_embedding": v, "b_model": embedder.model_name}
                for r, v in zip(rows, vectors, strict=True)
            ],
        )
    return len(ids)


def count_documents(session: Session) -> int:
    """Number of stored documents."""
    return session.scalar(select(func.count()).select_from(Document)) or 0


# --- an account's documents -------------------------------------------------------------


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _title(metadata: dict[str, Any], excerpt: str) -> str:
    for key in ("title", "subject"):
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            return _clip(value, TITLE_CHARS)
    first = next((line for line in excerpt.splitlines() if line.strip()), excerpt)
    return _clip(first, TITLE_CHARS)


def _link(metadata: dict[str, Any]) -> str | None:
    # only an absolute http(s) URL: the page puts it in an href, where `javascript:` would run
    for key in ("url", "link"):
        value = metadata.get(key)
        if not isinstance(value, str):
            continue
        try:
            parts = urlsplit(value.strip())
        except ValueError:
            continue
        if parts.scheme.lower() in ("http", "https") and parts.netloc:
            return value.strip()
    return None


def _document_out(row: Row[Any]) -> DocumentOut:
    metadata: dict[str, Any] = row.metadata_ or {}
    kind = metadata.get("kind")
    return DocumentOut(
        id=row.id,
        account_id=row.account_id,
        deal_id=row.deal_id,
        title=_title(metadata, row.excerpt),
        kind=kind if isinstance(kind, str) and kind.strip() else None,
        url=_link(metadata),
        excerpt=row.excerpt,
        metadata=metadata,
        created_at=row.created_at,
    )


def account_documents(
    s: Session, account_id: int, rep_ids: frozenset[int] | None, *, limit: int, offset: int
) -> Page[DocumentOut]:
    """A page (`limit`, `offset`) of the documents on account `account_id` or on a deal of it
    that `rep_ids` (the caller's `read_rep_ids`; None: all) may read
    (`crm.access.documents_condition`), newest first (created_at, then id); only the text's
    first EXCERPT_CHARS characters leave the database. The account's own readability is the
    caller's to check (`crm.access.readable_account`)."""
    scope = documents_condition(rep_ids)
    deals = select(Deal.id).where(Deal.account_id == account_id)
    stmt = select(
        Document.id,
        Document.account_id,
        Document.deal_id,
        Document.metadata_,
        func.left(Document.content, EXCERPT_CHARS).label("excerpt"),
        Document.created_at,
    ).where(or_(Document.account_id == account_id, Document.deal_id.in_(deals)))
    if scope is not None:
        stmt = stmt.where(scope)
    total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    newest = stmt.order_by(Document.created_at.desc(), Document.id.desc())
    rows = s.execute(newest.limit(limit).offset(offset))
    return Page(items=[_document_out(r) for r in rows], total=total, limit=limit, offset=offset)
