"""`/api/documents`: the documents memory (notes, emails, call summaries) and semantic search.

Embedding runs in a worker thread (the model is CPU-bound C code; running it on the event loop
would stall every other request), then the SQL runs through `session.run_sync` like every route.
The embedder is one per process, kept in `app.state.embedder` (set it at start-up to share or
replace it; otherwise it is created on first use from the settings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from app.api.deps import SessionDep
from app.api.responses import errors
from contracts.fields import NonBlank, RecordId
from crm.documents import DocumentHit, DocumentIn, add_documents, search_by_vector
from crm.embeddings import Embedder

router = APIRouter(prefix="/documents", tags=["documents"], responses=errors(422, 503))


class SearchResults(BaseModel):
    """The query as received and its hits, best first (`score` = cosine similarity)."""

    query: str
    results: list[DocumentHit]


class DocumentCreated(BaseModel):
    id: int
    content: str
    metadata: dict[str, Any]
    account_id: int | None
    deal_id: int | None
    embedding_model: str


class _Precomputed:
    """An Embedder that hands back vectors computed beforehand (off the event loop)."""

    def __init__(self, model_name: str, vectors: list[list[float]]) -> None:
        self.model_name = model_name
        self._vectors = vectors

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        assert len(texts) == len(self._vectors)
        return self._vectors

    def embed_query(self, text: str) -> list[float]:
        raise NotImplementedError


def get_app_embedder(request: Request) -> Embedder:
    """The process-wide embedder of this app (created from the settings on first use)."""
    embedder: Embedder | None = getattr(request.app.state, "embedder", None)
    if embedder is None:
        from config.settings import get_settings
        from crm.embeddings import get_embedder

        embedder = get_embedder(get_settings())
        request.app.state.embedder = embedder
    return embedder


@router.get("/search", response_model=SearchResults)
async def search(
    request: Request,
    session: SessionDep,
    q: Annotated[NonBlank, Query(max_length=2000, description="what to look for, in words")],
    k: Annotated[int, Query(ge=1, le=50, description="how many results")] = 5,
    account_id: Annotated[RecordId | None, Query(description="only documents of this account")] = None,
) -> SearchResults:
    """The `k` documents closest in meaning to `q` (cosine similarity of embeddings), best first."""
    embedder = get_app_embedder(request)
    vector = await run_in_threadpool(embedder.embed_query, q.strip())
    hits = await session.run_sync(search_by_vector, vector, k, account_id)
    return SearchResults(query=q, results=hits)


@router.post(
    "", response_model=DocumentCreated, status_code=status.HTTP_201_CREATED, responses=errors(400, 409)
)
async def create_document(request: Request, session: SessionDep, body: DocumentIn) -> DocumentCreated:
    """Store one document with its embedding. 409 naming `account_id` / `deal_id` if the
    referenced record does not exist."""
    embedder = get_app_embedder(request)
    vectors = await run_in_threadpool(embedder.embed_documents, [body.content])
    (doc_id,) = await session.run_sync(add_documents, _Precomputed(embedder.model_name, vectors), [body])
    return DocumentCreated(id=doc_id, embedding_model=embedder.model_name, **body.model_dump())
