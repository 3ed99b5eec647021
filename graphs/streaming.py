"""Real streaming of a turn's reply: sentences go to the client as the crew writes them, each one
checked by the guards before it is sent.

A crew node opens a :class:`GuardedReplyStream` around its crew run (`crews.streaming.streaming_to`);
a streaming crew (`crews.streaming.ReplyWriter`) writes its reply into it sentence by sentence:
its own lines as it composes them, the model's sentences as the model writes them. Each piece is
checked by the per-sentence guard (`guards.sentences.SentenceGuard`: grounded figures, known names,
no leaked personal data, tone, discount policy) and then sent as `token` frames, or refused: a
piece that fails is never sent, the crew is stopped (its model stops generating), and the guard
node re-asks the crew or shows the safe reply. The whole-reply guard still runs on the finished
reply and stays the authority on what is shown.

Frames (through LangGraph's custom stream, `get_stream_writer`, to the chat service's queue):

- `{"type": "token", "content"}`: the next piece of the reply: what was checked since the last
  piece (a sentence as the crew writes it), cut at word boundaries only past `stream_chunk_chars`
  characters; a crew that does not stream has its whole guarded reply sent this way when the turn
  ends.
- `{"type": "discard", "reason"}`: forget the reply streamed so far in this turn; what follows
  replaces it. `reason`: "reask" (a sentence or the whole reply failed a check and the crew is
  asked again), "refuse" (the safe reply follows), "fixed" (the whole-reply guard changed text
  already sent; the fixed reply follows in full), "retry" (the crew run failed and is tried
  again), "error" (the turn failed; its failure message follows).

So the reply is the concatenation of the `content` of the token frames after the last `discard`
(all of them when there is none), and it equals the `reply` of the turn's `final` frame; the
`final` frame stays authoritative. When nothing failed, no `discard` is sent and what streamed is
the final reply, character for character.

Frames may be written from the crew's worker thread: they are handed to the event loop of the
graph run, in order (`frame_writer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from langgraph.config import get_stream_writer

from contracts import Source, Verdict
from crews.streaming import ReplyRejected
from guards.sentences import SentenceGuard

__all__ = [
    "DiscardReason",
    "FrameWriter",
    "GuardLoader",
    "GuardedReplyStream",
    "chunks",
    "frame_writer",
    "publish_reply",
]

#: Why a streamed reply is discarded (the `reason` of a discard frame; module docstring).
DiscardReason = Literal["reask", "refuse", "fixed", "retry", "error"]

#: Sends one frame to the client's stream of the current run.
FrameWriter = Callable[[dict[str, Any]], None]

#: Builds the sentence guard of a reply from its facts and sources (blocking: it may read the CRM).
GuardLoader = Callable[[list[Mapping[str, Any]], list[Source]], SentenceGuard]

_WORD = re.compile(r"\S+\s*|\s+")


def chunks(text: str, size: int) -> list[str]:
    """`text` cut into pieces of about `size` characters at word boundaries (whitespace kept,
    so `"".join(chunks(t, n)) == t`)."""
    out: list[str] = []
    buf = ""
    for word in _WORD.findall(text):
        buf += word
        if len(buf) >= size:
            out.append(buf)
            buf = ""
    if buf:
        out.append(buf)
    return out


def frame_writer() -> FrameWriter:
    """A writer of frames to the current graph run's custom stream that any thread may call:
    from the event loop's thread a frame is written at once, from another thread it is handed to
    the loop (in the context of the caller of this function, where LangGraph's writer finds its
    run). Frames keep their order. Outside a graph run the writer drops frames."""
    try:
        writer = get_stream_writer()
    except RuntimeError:  # outside a graph run (unit tests of a node)
        return lambda frame: None
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    context = contextvars.copy_context()

    def write(frame: dict[str, Any]) -> None:
        if threading.get_ident() == loop_thread:
            writer(frame)
        else:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody listens any more
                loop.call_soon_threadsafe(context.run, writer, frame)

    return write


class GuardedReplyStream:
    """The stream of one crew run's reply (`crews.streaming.ReplySink`; see the module docstring).

    - `write`: the frame writer (:func:`frame_writer`); `load_guard`: builds the per-sentence guard
      when the crew grounds its reply (:meth:`ground`), None to send unchecked (a graph without
      guards: tests of its plumbing); `chunk_chars`: the size past which a piece is cut in several frames.
    - `sent`: the text the client holds since the last discard (fixes applied); a re-asked run
      starts from what the previous run left (nothing, after a discard).
    - `raw`: what the crew wrote in this run, before the sentence guards' fixes.
    - `verdicts`: every check of this run's sentences that did not pass (fixes included);
      `failures`: those that stopped the stream (empty while it runs).

    Thread-safe: the crew writes from its worker thread, the node discards and closes from the
    event loop.
    """

    def __init__(
        self, write: FrameWriter, load_guard: GuardLoader | None, chunk_chars: int, sent: str = ""
    ) -> None:
        self._write = write
        self._load_guard = load_guard
        self.guard: SentenceGuard | None = None
        self.chunk_chars = max(1, chunk_chars)
        self.sent = sent
        self.raw = ""
        self.verdicts: list[Verdict] = []
        self.failures: list[Verdict] = []
        self._closed = False
        self._lock = threading.Lock()

    async def ground(self, facts: Sequence[Mapping[str, Any]], sources: Sequence[Source]) -> None:
        """Build the sentence guard for a reply grounded in `facts` and `sources` (`load_guard`
        reads the CRM: in a worker thread)."""
        if self._load_guard is not None:
            guard = await asyncio.to_thread(self._load_guard, list(facts), list(sources))
            with self._lock:
                self.guard = guard

    def emit(self, text: str) -> None:
        """Check `text` and send it as token frames; raise ReplyRejected instead when it fails a
        check, when an earlier piece failed, or after :meth:`close`."""
        with self._lock:
            if self._closed or self.failures:
                raise ReplyRejected(self.failures)
            out = text
            if self.guard is None and self._load_guard is not None:
                # a crew that writes without grounding first: the guard knows no facts, and is
                # read here, blocking the writer's thread once
                self.guard = self._load_guard([], [])
            if self.guard is not None:
                check = self.guard.check(text, before=self.sent)
                self.verdicts += check.verdicts
                if check.failed:
                    self.failures = check.failures
                    raise ReplyRejected(self.failures)
                out = check.text
            self.raw += text
            self.sent += out
            for piece in chunks(out, self.chunk_chars):
                self._write({"type": "token", "content": piece})

    def discard(self, reason: DiscardReason) -> None:
        """Tell the client to forget what was sent (no frame when nothing was)."""
        with self._lock:
            if self.sent:
                self._write({"type": "discard", "reason": reason})
            self.sent = ""
            self.raw = ""

    def close(self) -> None:
        """Refuse every later piece (ReplyRejected): the crew run is over for the turn, a worker
        thread still writing is stopped at its next piece (and its model with it)."""
        with self._lock:
            self._closed = True


def publish_reply(write: FrameWriter, reply: str, sent: str, chunk_chars: int) -> None:
    """Bring the client from `sent` (what it holds since the last discard) to `reply`: the rest
    of the reply when it continues what was sent, else a discard ("fixed") and the whole reply."""
    if sent and not reply.startswith(sent):
        write({"type": "discard", "reason": "fixed"})
        sent = ""
    for piece in chunks(reply[len(sent) :], max(1, chunk_chars)):
        write({"type": "token", "content": piece})
