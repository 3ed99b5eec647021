"""Chat over REST and WebSocket, on the engine in `app.state.chat` (`app.services.chat`).

Who speaks is the caller of the credential (`app.api.auth`), never a field of the body or the
query: a thread belongs to the caller of its first turn. Another user's turn, decision or read
of it is answered 404, as for a thread that does not exist; an admin may read every thread (to
review and support), but writes only in their own.

REST (mounted under /api):
- `POST /api/chat` `{"message", "thread_id"?}` -> `ChatResult` (`thread_id`, `reply`, `intent`,
  `sources`, `pending_action`, `deferred_action`, `usage`, `error`, ...). A turn that fails
  inside (LLM down or slow, unusable answer) still answers 200 with `error` set and a `reply`
  that says what happened; the message stays in the thread and sending it again retries the
  turn. A message while an action waits for a decision moves that action to the caller's inbox
  (`deferred_action`: the action and its `inbox_item_id`; approving it there runs it) and is
  answered.
- `POST /api/chat/{thread_id}/resume` `{"decision": "approve"|"reject"|"edit", "action_id",
  "edits"?}` (`action_id`: the `id` of the interrupt frame, = `pending_action.id`): 404 unknown
  (or another's) thread, 409 nothing pending or `action_id` not the pending action, 422
  malformed decision (edit without edits). The action's Event records the caller as the one
  who decided.
- `GET /api/threads/{thread_id}` -> `ThreadView` (404 unknown, or another's thread).

WebSocket `/ws/chat/{thread_id}` (the caller of the connection's credential): the client sends
`{"type": "message", "content"}` or `{"type": "resume", "decision", "action_id", "edits"?}`; the
server answers with the frames of `ChatEngine.stream`: status, token, discard, interrupt, then
final or error. Show the token frames' `content` as it arrives; on `discard` clear what was shown
of the reply (the re-asked or safe reply follows); the `final` frame's `reply` is the reply. A
malformed frame, or a request the engine refuses (409/404), gets one
`{"type": "error", "message", "code"?}` frame and the connection stays open. Between turns (or
during one) a `{"type": "notification", "recipient", "kind", "title", "body", "item_id", ...}`
frame tells the connection's caller (inbox items filed under `Caller.person`) of something new
in their inbox: a reminder that fell due, a draft or alert from a workflow.

503 (REST) or an error frame (WS) when the app runs without Redis (no chat engine).

Limits (`app.api.limits`, `app.api.ws_limits`): each turn, REST or WebSocket, counts against the
caller's `FLOWSTATE_CHAT_RATE_LIMIT` and `FLOWSTATE_MAX_TURNS_PER_USER` running at once: 429
with `Retry-After` (REST), or an error frame with `"code": 429` and `retry_after` (WS). On the
WebSocket a binary frame (415), a text frame over `FLOWSTATE_MAX_BODY_BYTES` (413) or JSON nested
too deeply (400) gets an error frame; the connection stays open. A browser `Origin` that is not
the app's own or allowed (`FLOWSTATE_ALLOWED_ORIGINS`) cannot open the socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from app.api.auth import CallerDep, current_caller
from app.api.limits import ChatTurn
from app.api.responses import errors, links
from app.api.ws_limits import limited_turn, receive_text

# Only the engine's light types: the engine itself (LangGraph, seconds to import) is built in the
# app's lifespan (`app.services.chat.chat_service`) and reached through `app.state.chat`.
from app.services.chat_types import (
    MAX_MESSAGE_CHARS,
    THREAD_ID_PATTERN,
    ChatEngine,
    ChatError,
    ChatResult,
    ThreadView,
)
from app.services.notifications import NotificationHub
from contracts import ResumeValue
from contracts.fields import NonBlank
from contracts.notifications import Notification

log = logging.getLogger(__name__)

router = APIRouter(tags=["chat"], responses=errors(422, 503))
ws_router = APIRouter(tags=["chat"])

ThreadId = Annotated[str, Path(pattern=THREAD_ID_PATTERN, description="conversation id")]


# --------------------------------------------------------------------------------------------
# request bodies
# --------------------------------------------------------------------------------------------


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


class ChatRequest(BaseModel):
    """A message of the caller. `thread_id` continues one of the caller's conversations (omit to
    start one). Who writes is the credential's caller: a `user_id` field is refused (422)."""

    model_config = ConfigDict(extra="forbid")

    message: NonBlank = Field(max_length=MAX_MESSAGE_CHARS)
    thread_id: str | None = Field(None, pattern=THREAD_ID_PATTERN)

    _blank = field_validator("message")(_not_blank)


class MessageFrame(BaseModel):
    """A message sent over the WebSocket (its writer is the connection's caller)."""

    type: Literal["message"]
    content: NonBlank = Field(max_length=MAX_MESSAGE_CHARS)

    _blank = field_validator("content")(_not_blank)


class ResumeFrame(ResumeValue):
    """A decision sent over the WebSocket: `contracts.ResumeValue` plus the frame type."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["resume"]


ClientFrame = Annotated[MessageFrame | ResumeFrame, Field(discriminator="type")]
_client_frame: TypeAdapter[MessageFrame | ResumeFrame] = TypeAdapter(ClientFrame)


# --------------------------------------------------------------------------------------------
# REST
# --------------------------------------------------------------------------------------------


def get_chat(request: Request) -> ChatEngine:
    """The app's chat engine; 503 when the app runs without one (no Redis)."""
    chat: ChatEngine | None = getattr(request.app.state, "chat", None)
    if chat is None:
        raise HTTPException(status_code=503, detail="chat is not available: the app runs without Redis")
    return chat


ChatDep = Annotated[ChatEngine, Depends(get_chat)]


def _http(exc: ChatError) -> HTTPException | RequestValidationError:
    """The HTTP error of a refused chat request; a 422 takes the shape of every other 422."""
    if exc.status_code == 422:
        issue = {"loc": ("path", "thread_id"), "msg": str(exc), "type": "value_error"}
        return RequestValidationError([issue])
    return HTTPException(status_code=exc.status_code, detail=str(exc))


_THREAD = links("thread_id", "GET /threads/{thread_id}", "POST /chat/{thread_id}/resume", field="thread_id")


@router.post(
    "/chat",
    response_model=ChatResult,
    responses={200: {"links": _THREAD}, **errors(400, 404, 409)},
    dependencies=[ChatTurn],  # chat rate limit and concurrent turns per user (app.api.limits)
)
async def chat(chat: ChatDep, caller: CallerDep, body: ChatRequest) -> ChatResult:
    """Answer one message of the caller (a new thread when `thread_id` is omitted); 404 for a
    thread of someone else."""
    try:
        return await chat.turn(body.thread_id, body.message, caller=caller)
    except ChatError as exc:
        raise _http(exc) from exc


@router.post(
    "/chat/{thread_id}/resume",
    response_model=ChatResult,
    responses=errors(400, 404, 409),
    dependencies=[ChatTurn],
)
async def resume(chat: ChatDep, caller: CallerDep, thread_id: ThreadId, body: ResumeValue) -> ChatResult:
    """Approve, edit or reject the action `action_id` the caller's thread is waiting on; 409 when
    it is not the pending one."""
    try:
        return await chat.resume(thread_id, body, caller=caller)
    except ChatError as exc:
        raise _http(exc) from exc


@router.get("/threads/{thread_id}", response_model=ThreadView, responses=errors(404))
async def get_thread(chat: ChatDep, caller: CallerDep, thread_id: ThreadId) -> ThreadView:
    """The conversation: messages (role, content, intent and sources per answer), pending action.
    The owner's, or any thread for an admin; 404 otherwise."""
    try:
        return await chat.get_thread(thread_id, caller=caller)
    except ChatError as exc:
        raise _http(exc) from exc


# --------------------------------------------------------------------------------------------
# WebSocket
# --------------------------------------------------------------------------------------------


_EXPECTED = (
    'malformed frame: expected {"type": "message", "content": ...} or {"type": "resume", "decision": ...}'
)


def _frame_error(raw: str) -> tuple[MessageFrame | ResumeFrame | None, str | None]:
    """Parse a client frame; (frame, None) or (None, message naming what is wrong)."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"malformed frame: not JSON ({exc.msg} at position {exc.pos})"
    if not isinstance(data, dict) or data.get("type") not in ("message", "resume"):
        return None, _EXPECTED
    try:
        return _client_frame.validate_python(data), None
    except ValidationError as exc:
        parts = [f"{'.'.join(str(p) for p in e['loc'][1:]) or 'frame'}: {e['msg']}" for e in exc.errors()]
        return None, "malformed frame: " + "; ".join(parts)


@ws_router.websocket("/ws/chat/{thread_id}")
async def chat_socket(websocket: WebSocket, thread_id: str) -> None:
    """Stream chat turns of one thread (see the module docstring for the frames)."""
    await websocket.accept()
    chat: ChatEngine | None = getattr(websocket.app.state, "chat", None)
    caller = await current_caller(websocket)  # run as the router's dependency: cached
    notifications = _Notifications(websocket)
    notifications.follow(caller.person)
    try:
        while True:
            raw = await receive_text(websocket)
            if isinstance(raw, dict):  # a binary, oversized or too deeply nested frame
                await notifications.send(raw)
                continue
            if chat is None:
                await notifications.send(
                    {"type": "error", "message": "chat is not available: no Redis", "code": 503}
                )
                continue
            frame, problem = _frame_error(raw)
            if frame is None:
                await notifications.send({"type": "error", "message": problem})
                continue
            try:
                if isinstance(frame, MessageFrame):
                    stream = chat.stream(thread_id, frame.content, caller=caller)
                else:
                    value = ResumeValue(decision=frame.decision, action_id=frame.action_id, edits=frame.edits)
                    stream = chat.stream(thread_id, caller=caller, resume=value)
                async for out in limited_turn(websocket, stream):  # 429 frame over a limit
                    await notifications.send(out)
            except ChatError as exc:
                await notifications.send({"type": "error", "message": str(exc), "code": exc.status_code})
    except WebSocketDisconnect:
        return
    finally:
        await notifications.close()


class _Notifications:
    """The `notification` frames of one connection: the caller it speaks for gets the
    notifications meant for them (`Caller.person`, the name inbox items are filed under), sent
    between the chat's own frames (one lock orders every send on the socket)."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.hub: NotificationHub | None = getattr(websocket.app.state, "notifications", None)
        self.lock = asyncio.Lock()
        self.queues: list[asyncio.Queue[Notification]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.users: set[str] = set()

    def follow(self, user: str) -> None:
        if self.hub is None or user in self.users:
            return
        self.users.add(user)
        queue = self.hub.register(user)
        self.queues.append(queue)
        self.tasks.append(asyncio.create_task(self._forward(queue)))

    async def _forward(self, queue: asyncio.Queue[Notification]) -> None:
        while True:
            notification = await queue.get()
            try:
                await self.send(notification.model_dump(mode="json"))
            except Exception:  # the connection is gone; the receive loop ends it
                return

    async def send(self, frame: dict[str, Any]) -> None:
        async with self.lock:
            await self.websocket.send_json(frame)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.hub is not None:
            for queue in self.queues:
                self.hub.unregister(queue)
