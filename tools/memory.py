"""The documents memory for the crews: semantic search over notes, emails and call summaries
(`crm.documents`, pgvector cosine search)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from crm.documents import DocumentHit, search_documents
from crm.embeddings import Embedder
from observability.tracing import traced

__all__ = ["DocumentHit", "Embedder", "search_memory"]

#: Longest excerpt of a document handed to a crew (characters): prompts must stay short.
EXCERPT_CHARS = 300


@traced()
def search_memory(
    session: Session, embedder: Embedder | None, query: str, *, k: int = 3, account_id: int | None = None
) -> list[DocumentHit]:
    """The `k` documents closest to `query` (optionally of one account), best first, each cut to
    EXCERPT_CHARS characters. [] without an embedder (memory is optional) or for an empty query."""
    if embedder is None or not query.strip():
        return []
    hits = search_documents(session, embedder, query, k=k, account_id=account_id)
    for h in hits:
        if len(h.content) > EXCERPT_CHARS:
            h.content = h.content[: EXCERPT_CHARS - 1].rstrip() + "…"
    return hits
