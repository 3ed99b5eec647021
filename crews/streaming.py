"""A crew's reply as it is written: the crews' side of real streaming.

A crew that streams writes its reply, in order, through a :class:`ReplyWriter`: the crew's own
sentences (headers, computed figures, footers) as it composes them and the model's sentences as
they are generated. The writer keeps the text (the crew's `CrewResponse.reply` is exactly
`writer.text`) and hands each piece to the run's :class:`ReplySink`, if any: the chat graph sets
one around a crew run (:func:`streaming_to`; a context variable, so it follows the crew into
`asyncio.to_thread` and CrewAI's worker thread). The sink checks each piece with the guards and
sends it to the client, or raises :class:`ReplyRejected`: the crew then stops (the model's answer
is ended early, see `crews.runner.kickoff_text`) and the exception reaches the caller of the
crew. Without a sink (the eval, the CLI, tests) writing only builds the text.

What a crew writes must be whole sentences with the whitespace after them
(`guards.text.SentenceSplitter` units): the sink checks and sends each piece as it comes, never
waiting for more. A crew that cannot keep what it wrote (it would rewrite it) must not have
written it.

Before writing, a crew declares the facts its reply comes from (`await writer.ground(facts,
sources)`, the same `facts` and `sources` its `CrewResponse` will carry), so the sink can prepare
its checks (reading the CRM if it must) without blocking the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

from contracts import Source, Verdict

__all__ = ["ReplyRejected", "ReplySink", "ReplyWriter", "current_sink", "streaming_to"]


class ReplyRejected(Exception):
    """The sink refused a piece of the reply: `failures` are the guards' verdicts on it (or
    empty when the stream was closed because the turn no longer waits for this crew)."""

    def __init__(self, failures: Sequence[Verdict] = (), reason: str = "") -> None:
        self.failures = list(failures)
        self.reason = reason or "; ".join(v.message for v in self.failures) or "the reply stream is closed"
        super().__init__(self.reason)


class ReplySink(Protocol):
    """Where a streaming crew's reply goes (the chat graph's guarded stream)."""

    async def ground(self, facts: Sequence[Mapping[str, Any]], sources: Sequence[Source]) -> None:
        """The reply's figures and names come from `facts` (tool results) and `sources` (the
        records it cites), as in its `CrewResponse`; the sink may read what its checks need
        (e.g. the CRM's names, the personal data of those records)."""
        ...

    def emit(self, text: str) -> None:
        """Check and send `text` (whole sentences); raises ReplyRejected instead of sending a
        piece that fails, and for every piece after that. Callable from any thread."""
        ...


_sink: ContextVar[ReplySink | None] = ContextVar("flowstate_reply_sink", default=None)


@contextmanager
def streaming_to(sink: ReplySink | None) -> Iterator[None]:
    """Within the block, crews write their replies to `sink` (None: to nobody)."""
    token = _sink.set(sink)
    try:
        yield
    finally:
        _sink.reset(token)


def current_sink() -> ReplySink | None:
    """The sink of the current context (None when nobody streams)."""
    return _sink.get()


class ReplyWriter:
    """One crew run's reply, written in order and streamed to the current sink (module
    docstring). Build it in the crew's own context (it reads the sink once, there)."""

    def __init__(self) -> None:
        self.sink = current_sink()
        self._parts: list[str] = []

    @property
    def text(self) -> str:
        """Everything written so far: the crew's reply."""
        return "".join(self._parts)

    async def ground(self, facts: Sequence[Mapping[str, Any]], sources: Sequence[Source] = ()) -> None:
        """Declare the facts and sources of the reply (those of its `CrewResponse`), before
        writing anything: the sink's checks are prepared here, off the event loop."""
        if self.sink is not None:
            await self.sink.ground(facts, sources)

    def write(self, text: str) -> None:
        """Append `text` (whole sentences) to the reply and stream it. Raises ReplyRejected when
        the sink refuses it (the text is then not part of any reply the rep will see)."""
        if not text:
            return
        self._parts.append(text)
        if self.sink is not None:
            self.sink.emit(text)
