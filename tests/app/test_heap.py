"""The serving process's start-up heap freeze (app.heap)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from app.heap import SERVING_GC_THRESHOLDS, freeze_after_startup


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """Leave the test process's heap as it was: nothing frozen before or after, the collector's
    thresholds as they were."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_the_heap_is_frozen_after_the_apps_own_start_up_and_its_state_passes_through() -> None:
    frozen_at_start: list[int] = []

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, str]]:
        frozen_at_start.append(gc.get_freeze_count())
        assert gc.get_threshold() != SERVING_GC_THRESHOLDS  # Python's defaults until then
        yield {"answer": "from the lifespan"}

    app = FastAPI(lifespan=lifespan)

    @app.get("/answer")
    def answer(request: Request) -> dict[str, object]:
        return {
            "answer": request.state.answer,
            "frozen": gc.get_freeze_count(),
            "thresholds": list(gc.get_threshold()),
        }

    assert freeze_after_startup(app) is app
    with TestClient(app) as client:
        body = client.get("/answer").json()
    assert frozen_at_start == [0]  # the app's own start-up ran first, nothing frozen then
    assert body["frozen"] > 1000  # then the heap (this process's modules and all) was frozen
    assert body["answer"] == "from the lifespan"
    assert body["thresholds"] == list(SERVING_GC_THRESHOLDS)  # and the collector runs less often


def test_the_routes_are_built_at_start_up_before_the_first_request() -> None:
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    app = FastAPI()
    app.include_router(router, prefix="/api")
    freeze_after_startup(app)
    assert app.openapi_schema is None
    with TestClient(app) as client:
        # made when the lifespan started, not on demand: FastAPI built every route for it
        assert app.openapi_schema is not None
        assert "/api/items/{item_id}" in app.openapi_schema["paths"]
        assert client.get("/api/items/7").json() == {"item_id": 7}
