"""Garbage-collector settings of a serving process: the start-up heap is frozen once the app has
started, so later collections no longer walk it."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast

from starlette.applications import Starlette
from starlette.types import Lifespan

__all__ = ["freeze_after_startup", "freeze_startup_heap"]

log = logging.getLogger(__name__)


def freeze_startup_heap() -> int:
    """Collect once, then move every object alive now into the collector's permanent generation
    (`gc.freeze`), where later collections do not traverse it; returns how many were moved.

    Meant for the moment start-up is over (modules imported, engines, the graph and the crews
    built): those objects live as long as the process, yet each full collection walked them all,
    some 650,000 in a `flowstate serve` worker. The technique is the one `gc.freeze`'s
    documentation gives for long-lived processes (Python 3.7+).
    """
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("start-up heap frozen: %d objects left out of later collections", frozen)
    return frozen


def freeze_after_startup(app: Starlette) -> Starlette:
    """`app` with :func:`freeze_startup_heap` run when its lifespan has started (returns `app`).

    Only the serving process should freeze: a test process that starts many apps would keep
    every one of them, and their garbage, for its whole life.
    """
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(inner: Any) -> AsyncIterator[Mapping[str, Any] | None]:
        async with started(inner) as state:
            freeze_startup_heap()
            yield state

    # the state the app's lifespan yields (None for a stateless one) passes through as it was
    app.router.lifespan_context = cast("Lifespan[Any]", lifespan)
    return app
