"""The end of a serving process's start-up: the app's request handling is built before the first
request, then the start-up heap is frozen, so later collections no longer walk it, and the
collector runs less often."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.types import Lifespan

__all__ = ["SERVING_GC_THRESHOLDS", "build_routes", "freeze_after_startup", "freeze_startup_heap"]

log = logging.getLogger(__name__)

#: `gc.set_threshold` of a serving process: a young collection after 50,000 net new container
#: objects, not Python's 700 (then 20 young collections per middle one and 100 middle ones per
#: full one, not 10 and 10). With the defaults a `flowstate serve` worker under 1,000 live
#: conversations collected 27 times a second and spent 12.7% of its CPU in the collector
#: (3,545 young, 321 middle and 26 full collections of about 250 ms each in 130 s); with these,
#: 2.6% (34 young, 1 full), and the workers' peak resident memory stayed about the same (1,482
#: MiB for two; most objects are freed by reference counting long before a collection, which
#: only finds cycles). Measured with a `gc.callbacks` timer in the workers of
#: `bench/bench_load.py --conversations 1000 --workers 2`. The thresholds' meaning: the `gc`
#: module's documentation.
SERVING_GC_THRESHOLDS = (50_000, 20, 100)


def freeze_startup_heap() -> int:
    """Collect once, then move every object alive now into the collector's permanent generation
    (`gc.freeze`), where later collections do not traverse it; returns how many were moved.

    Meant for the moment start-up is over (modules imported, engines, the graph and the crews
    built): those objects live as long as the process, yet each full collection walked them all,
    some 650,000 in a `flowstate serve` worker. The technique is the one `gc.freeze`'s
    documentation gives for long-lived processes (Python 3.7+). Then sets :data:`SERVING_GC_THRESHOLDS`.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_GC_THRESHOLDS)
    frozen = gc.get_freeze_count()
    log.info("start-up heap frozen: %d objects left out of later collections", frozen)
    return frozen


def build_routes(app: Starlette) -> None:
    """Build what FastAPI needs to route and validate a request of each of `app`'s routes, now.

    FastAPI builds an included router's routes (each endpoint's dependency tree and pydantic
    validators) on the first request that has to look through that router, and the chat socket's
    router is looked through last: a `flowstate serve` worker's first WebSocket connection waited
    for 60 routes to be built (0.8 s of CPU on a 2-core AMD EPYC VM, during which every other
    request waits too). The OpenAPI schema is made from those same built routes, so making it
    builds them all (and `/openapi.json` is then served from the kept schema). A plain Starlette
    app has nothing to build."""
    if isinstance(app, FastAPI):
        app.openapi()


def freeze_after_startup(app: Starlette) -> Starlette:
    """`app` with :func:`build_routes`, then :func:`freeze_startup_heap`, run when its lifespan
    has started (returns `app`): the built routes live as long as the process, so they are frozen
    with the rest.

    Only the serving process should freeze: a test process that starts many apps would keep
    every one of them, and their garbage, for its whole life.
    """
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(inner: Any) -> AsyncIterator[Mapping[str, Any] | None]:
        async with started(inner) as state:
            build_routes(app)
            freeze_startup_heap()
            yield state

    # the state the app's lifespan yields (None for a stateless one) passes through as it was
    app.router.lifespan_context = cast("Lifespan[Any]", lifespan)
    return app
