"""Tracing and metrics of one chat turn in a single block: what the chat service wraps a turn in.

    with observe_turn(thread_id, user_id, input=message) as turn:
        config = {..., "callbacks": get_tracing().callbacks()}
        ...                                                    # run the graph
        turn.finish(intent=result.intent, outcome="answered", verdicts=result.verdicts, output=result.reply)

On exit it records `flowstate_turns_total{intent, outcome}` and `flowstate_turn_seconds` (whether
tracing is on or not); inside, the Langfuse trace of the turn is open (see
`observability.tracing.Tracing.turn_span`). An exception leaving the block counts as outcome
"error" and propagates. Nothing here raises because of tracing or metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from observability import metrics
from observability.tracing import Tracing, TurnTrace, get_tracing

logger = logging.getLogger(__name__)

#: The outcomes Flowstate reports (metrics label `outcome`); "busy": refused, no place among the
#: running turns freed up in time (counted by the chat service, not by :func:`observe_turn`).
Outcome = Literal["answered", "needs_approval", "safe_reply", "error", "busy"]


class TurnObserver:
    """The handle `observe_turn` yields: `trace` (the Langfuse trace; a no-op when off) and
    :meth:`finish`."""

    def __init__(self, trace: TurnTrace) -> None:
        self.trace = trace
        self.intent: str | None = None
        self.outcome: str | None = None

    def finish(
        self,
        *,
        intent: str | None,
        outcome: Outcome | str,
        verdicts: Iterable[Any] = (),
        output: Any = None,
    ) -> None:
        """What the turn came to: its intent (names the trace), its outcome ("answered",
        "needs_approval" when an action waits for the rep, "safe_reply" when a guard replaced
        the answer, "error"), its guard verdicts (Langfuse scores and
        `flowstate_guard_failures_total`) and its reply (the trace's output)."""
        self.intent, self.outcome = intent, outcome
        items = list(verdicts)
        try:
            metrics.observe_guard_verdicts(items)
        except Exception:
            logger.warning("metrics: could not count guard verdicts", exc_info=True)
        self.trace.set_intent(intent)
        self.trace.record_guard_verdicts(items)
        if output is not None:
            self.trace.set_output(output)


@contextmanager
def observe_turn(
    thread_id: str, user_id: str | None, *, input: Any = None, tracing: Tracing | None = None
) -> Iterator[TurnObserver]:
    """Open the turn's trace and start its clock (see the module docstring). `tracing`: default
    the process's (`get_tracing()`)."""
    tracing = tracing or get_tracing()
    started = time.perf_counter()
    observer: TurnObserver | None = None
    try:
        with tracing.turn_span(thread_id, user_id, input=input) as trace:
            observer = TurnObserver(trace)
            yield observer
    except BaseException:
        _count(observer, "error", started)
        raise
    _count(observer, None, started)


def _count(observer: TurnObserver | None, forced: str | None, started: float) -> None:
    try:
        intent = observer.intent if observer else None
        outcome = forced or (observer.outcome if observer else None) or "answered"
        metrics.observe_turn(intent, outcome, time.perf_counter() - started)
    except Exception:
        logger.warning("metrics: could not count a turn", exc_info=True)
