"""`/api/documents`: the documents memory (notes, emails, call summaries) and semantic search.

Embedding runs in a worker thread (the model is CPU-bound C code; running it on the event loop
would stall every other request), then the SQL runs through `session.run_sync` like every route.
The embedder is one per process, kept in `app.state.embedder` (set it at start-up to share or
replace it; otherwise it is created on first use from the settings).

Scope (`crm.access`): search finds the documents of the deals and accounts the caller reads, and
those tied to neither (general material). A document on a deal needs the caller to act for its
rep (403 naming `deal_id`); one on an account they do not read is answered like an unknown id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.api.auth import CallerDep
from app.api.deps import SessionDep
from app.api.responses import errors
from contracts.fields import NonBlank, RecordId
from crm import access
from crm.documents import MAX_CONTENT_CHARS, DocumentHit, DocumentIn, add_documents, search_by_vector
from crm.embeddings import Embedder

router = APIRouter(prefix="/documents", tags=["documents"], responses=errors(422, 503))

#: The body limit of /api/documents (app.api.body_limit), above FLOWSTATE_MAX_BODY_BYTES: a document of
#: `MAX_CONTENT_CHARS` characters written as JSON escapes (12 bytes a character at worst: an emoji
#: as the escaped surrogate pair `\ud83d\ude00`) plus 64 KiB for its metadata: about 300 KiB.
MAX_BODY_BYTES = MAX_CONTENT_CHARS * 12 + 64 * 1024


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
    caller: CallerDep,
    q: Annotated[NonBlank, Query(max_length=2000, description="what to look for, in words")],
    k: Annotated[int, Query(ge=1, le=50, description="how many results")] = 5,
    account_id: Annotated[RecordId | None, Query(description="only documents of this account")] = None,
) -> SearchResults:
    """The `k` documents closest in meaning to `q` (cosine similarity of embeddings), best first."""
    embedder = get_app_embedder(request)
    vector = await run_in_threadpool(embedder.embed_query, q.strip())
    scope = access.documents_condition(caller.read_rep_ids)
    hits = await session.run_sync(search_by_vector, vector, k, account_id, scope)
    return SearchResults(query=q, results=hits)


@router.post(
    "",
    response_model=DocumentCreated,
    status_code=status.HTTP_201_CREATED,
    responses=errors(400, 409),
)
async def create_document(
    request: Request, session: SessionDep, caller: CallerDep, body: DocumentIn
) -> DocumentCreated:
    """Store one document with its embedding. 409 naming `account_id` / `deal_id` if the
    referenced record does not exist; 403 for a deal of a rep the caller does not act for."""

    def _check(s: Session) -> None:
        if body.deal_id is not None:
            access.check_deal_ref(s, caller, body.deal_id)
        if body.account_id is not None:
            access.check_account_ref(s, caller, body.account_id)

    await session.run_sync(_check)  # before the embedding: refuse cheaply
    embedder = get_app_embedder(request)
    vectors = await run_in_threadpool(embedder.embed_documents, [body.content])
    (doc_id,) = await session.run_sync(add_documents, _Precomputed(embedder.model_name, vectors), [body])
    return DocumentCreated(id=doc_id, embedding_model=embedder.model_name, **body.model_dump())
