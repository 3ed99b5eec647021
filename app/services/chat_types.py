"""The chat engine's public types, light to import (pydantic only, no LangGraph): limits,
the errors the routes map to HTTP statuses, and the shapes of a turn's result and of a thread.
`app.services.chat` (the engine) and `app.api.routes.chat` share them."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from contracts import ActionResult, Entities, Intent, ResumeValue, Source, TurnError
from contracts.identity import Caller

#: Longest message accepted (characters): the local model reads ~120 tokens/s, and a chat
#: message is a question, not a document.
MAX_MESSAGE_CHARS = 4000
#: Thread ids: what `events.thread_id` (120 chars) can hold, URL-safe.
THREAD_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,119}$"
_THREAD_ID = re.compile(THREAD_ID_PATTERN)


# --------------------------------------------------------------------------------------------
# errors the routes map to HTTP statuses (404 / 409 / 422 / 503)
# --------------------------------------------------------------------------------------------


class ChatError(Exception):
    """A request the engine refuses; `status_code` is the HTTP status the routes answer."""

    status_code = 400


class ThreadNotFound(ChatError):
    """No conversation with this id (never started, or expired after the checkpoint TTL), or
    one that belongs to someone else (said the same way, so thread ids leak nothing)."""

    status_code = 404

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"thread {thread_id!r} not found")


class NothingPending(ChatError):
    """A resume for a thread that has no action waiting for a decision."""

    status_code = 409

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"thread {thread_id!r} has no action waiting for a decision")


class NotThePendingAction(ChatError):
    """A decision naming an action (`action_id`) that is not the one the thread waits on: a
    stale screen, or an action already decided or moved to the inbox."""

    status_code = 409

    def __init__(self, thread_id: str, action_id: str, pending_id: str | None) -> None:
        super().__init__(
            f"action_id: {action_id[:60]!r} is not the action thread {thread_id!r} waits on "
            f"(that is {pending_id!r}); reload the thread and decide on it"
        )


class ThreadBusy(ChatError):
    """Another turn of the thread (in this process or another) ran past the time a new turn
    waits for it; the new message was not saved."""

    status_code = 409

    def __init__(self, thread_id: str, waited_s: float) -> None:
        super().__init__(
            f"thread {thread_id!r} is still busy with another turn after {waited_s:g} s; "
            "your message was not saved, send it again in a moment"
        )


class StoreUnavailable(ChatError):
    """The conversation store (Redis) does not answer: the thread cannot be read right now."""

    status_code = 503

    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"the conversation store (Redis) is not reachable right now, so thread {thread_id!r} "
            "cannot be read; try again shortly"
        )


class InvalidThreadId(ChatError):
    status_code = 422

    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"thread_id: {thread_id[:40]!r} is not valid (1-120 letters, digits, '.', '_', ':', '-')"
        )


class TurnUsage(BaseModel):
    """LLM requests of one turn: `llm_calls` (failed ones included, also in `llm_failures`),
    `prompt_tokens` and `completion_tokens` as reported by the server."""

    llm_calls: int = 0
    llm_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def plus(self, other: TurnUsage) -> TurnUsage:
        """The sum of two counts."""
        return TurnUsage(
            llm_calls=self.llm_calls + other.llm_calls,
            llm_failures=self.llm_failures + other.llm_failures,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class PendingAction(BaseModel):
    """An action waiting for the rep (`id`: the interrupt id; `kind`, `summary`, `params` as
    the crew proposed them)."""

    id: str | None = None
    kind: str
    summary: str
    params: dict[str, Any] = {}


class DeferredAction(PendingAction):
    """The action a thread was waiting on when a new message came: it was filed in the caller's
    inbox as item `inbox_item_id` (approving it there runs it once) and the thread moved on."""

    inbox_item_id: int


class ChatResult(BaseModel):
    """The outcome of one turn (or one resume).

    `reply`: what the assistant said in this run (for a failed turn, what went wrong); `intent`:
    the turn's intent; `sources`: records the reply is grounded on; `pending_action`: the action
    waiting for approval, or None; `action_result`: what happened to the action this run decided;
    `error`: why the turn failed (None when it did not); `usage`: LLM calls and tokens of this run;
    `data`: the crew's typed output; `verdicts`: the guards' verdicts of every attempt (dicts
    tagged with `attempt`); `deferred_action`: the action that was waiting when this message
    came, now in the caller's inbox (None when nothing was waiting).
    """

    thread_id: str
    reply: str
    intent: Intent | None = None
    sources: list[Source] = []
    pending_action: PendingAction | None = None
    action_result: ActionResult | None = None
    error: TurnError | None = None
    usage: TurnUsage = TurnUsage()
    data: dict[str, Any] = {}
    verdicts: list[dict[str, Any]] = []
    deferred_action: DeferredAction | None = None

    def frame(self) -> dict[str, Any]:
        """The last stream frame of the run: "final", or "error" for a failed turn."""
        if self.error is not None:
            return {
                "type": "error",
                "message": self.reply,
                "kind": self.error.kind,
                "retryable": self.error.retryable,
                "thread_id": self.thread_id,
            }
        return {"type": "final", **self.model_dump(mode="json")}


class ThreadMessage(BaseModel):
    """One message of a conversation. Assistant messages carry the turn's `intent`, `sources`
    and `kind` ("reply", "proposal": the reply that proposed an action, "outcome": what happened
    to it) and `action` (the proposed action or its result)."""

    role: Literal["user", "assistant"]
    content: str
    intent: Intent | None = None
    sources: list[Source] = []
    kind: str | None = None
    action: dict[str, Any] | None = None


class ThreadView(BaseModel):
    """A conversation: its messages in order, the latest intent and entities, the action waiting
    for approval (or None), and the error of the last turn if it failed (its message is then the
    last one, unanswered). `user_id`: who wrote the latest message (`Caller.actor`)."""

    thread_id: str
    user_id: str | None = None
    messages: list[ThreadMessage]
    intent: Intent | None = None
    entities: Entities = Entities()
    pending_action: PendingAction | None = None
    error: TurnError | None = None


def new_thread_id() -> str:
    """A fresh conversation id (uuid4 hex)."""
    return uuid.uuid4().hex


def check_thread_id(thread_id: str) -> str:
    """`thread_id` if it is acceptable, else InvalidThreadId."""
    if not _THREAD_ID.match(thread_id):
        raise InvalidThreadId(thread_id)
    return thread_id


class ChatEngine(Protocol):
    """What the routes and the CLI use of `app.services.chat.ChatService` (a Protocol, so they
    can be typed without importing LangGraph). `caller` is who asks: the thread's owner (or,
    reading, an admin); never taken from a request body."""

    async def turn(self, thread_id: str | None, message: str, *, caller: Caller) -> ChatResult: ...

    async def resume(self, thread_id: str, value: ResumeValue, *, caller: Caller) -> ChatResult: ...

    def stream(
        self,
        thread_id: str | None,
        message: str | None = None,
        *,
        caller: Caller,
        resume: ResumeValue | None = None,
    ) -> AsyncIterator[dict[str, Any]]: ...

    async def get_thread(self, thread_id: str, *, caller: Caller) -> ThreadView: ...
