"""The state of one conversation (one LangGraph thread), checkpointed in Redis after every step.

Shape (every key optional while a turn is being built up):

- `messages`: the conversation, `HumanMessage` / `AIMessage` (LangGraph's `add_messages` reducer
  appends and de-duplicates by id). Each assistant message carries
  `additional_kwargs["flowstate"] = {"intent", "sources", "action"}` (see :func:`turn_meta`), so
  the thread can be shown with the intent of every turn.
- `user_id`: who sent the latest message (`Caller.actor`; None for work no person started).
- `owner`: whose thread this is (`owner_key` of the caller of its first turn), set once and
  never reset: turns, resumes and reads by anyone else are refused as if the thread did not
  exist (`app.services.chat`). The caller itself is not kept here: it travels with each run in
  the runtime context (`graphs.context.ChatContext.caller`).
- `entities`: :class:`contracts.Entities` resolved so far; a follow-up ("and his manager?")
  reuses the previous turn's entities, so this key is *not* reset between turns.
- `intent`, `routing` (how the router decided: method, confidence, llm_calls), `response` (the
  crew's :class:`contracts.CrewResponse`, replaced by the guarded one), `pending_action`
  (:class:`contracts.ProposedAction` waiting for the rep), `action_result` (what happened
  to the last proposed action), `verdicts` (the guards' verdicts of every attempt of this turn,
  as dicts tagged with `attempt`), `error` (:class:`contracts.TurnError` as a dict when the turn
  failed): reset at the start of every turn by :func:`turn_input`.
- the guard's re-ask loop (`graphs.guarding`), also reset every turn: `attempt` (0 for the
  crew's first answer, n after the n-th re-ask), `feedback` (why the previous answer was not
  shown: `CrewRequest.feedback` of the re-asked crew), `guard_decision` (the guard's decision on
  the latest answer: pass | fixed | reask | refuse), `first_response` (the crew's first answer,
  kept while it is re-asked: its safe reply is shown if no answer passes), `reask_error` (the
  exception class name when a re-asked crew run failed).
- streaming (`graphs.streaming`), also reset every turn: `streamed` (the reply text the client
  holds since the turn's last discard frame: what a streaming crew sent, sentence by sentence,
  with the sentence guards' fixes), `stream_failures` (the sentence guards' failed verdicts, as
  dicts, when they stopped the latest crew run's stream; None otherwise).

Pydantic contract types go in as models; `graphs.checkpoint.make_serializer` allows exactly those
types back out of a checkpoint. A checkpointer with a stricter serializer may hand them back as
plain dicts, so nodes read them through the `*_of` helpers below, which accept both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langgraph.graph.message import add_messages

from contracts import ActionResult, CrewResponse, Entities, Intent, ProposedAction, Turn, TurnError
from contracts.identity import Caller

#: Key under `AIMessage.additional_kwargs` where a turn's metadata lives.
META_KEY = "flowstate"


class ChatState(TypedDict, total=False):
    """LangGraph state of a conversation (see the module docstring for each key)."""

    messages: Annotated[list[AnyMessage], add_messages]
    user_id: str | None
    owner: str | None
    entities: Entities
    intent: Intent | None
    routing: dict[str, Any]
    response: CrewResponse | None
    pending_action: ProposedAction | None
    action_result: ActionResult | None
    verdicts: list[dict[str, Any]]
    error: dict[str, Any] | None
    attempt: int
    feedback: str | None
    guard_decision: str | None
    first_response: CrewResponse | None
    reask_error: str | None
    streamed: str
    stream_failures: list[dict[str, Any]] | None


def owner_key(caller: Caller) -> str:
    """The `owner` a thread records for `caller`: `user:<id>` for a user, `token:<username>` for
    the built-in admin of the API token (which has no user id)."""
    return f"user:{caller.user_id}" if caller.user_id is not None else f"token:{caller.username}"


def turn_input(
    message: str | None, user_id: str | None, current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The graph input that starts a turn: the rep's message (None: a retried turn, whose message
    is already the thread's last) plus a reset of every per-turn key (`entities` survive for
    follow-ups). `current`: the thread's state; keys it already holds at their reset value are
    left out (each key written is one more value the checkpoint saves)."""
    update: dict[str, Any] = {"messages": [HumanMessage(content=message)]} if message is not None else {}
    for key, value in {"user_id": user_id, **TURN_RESET}.items():
        if current is None or key not in current or current[key] != value:
            update[key] = value
    return update


#: Per-turn keys cleared at the start of a turn (and of a retried turn).
TURN_RESET: dict[str, Any] = {
    "intent": None,
    "routing": {},
    "response": None,
    "pending_action": None,
    "action_result": None,
    "verdicts": [],
    "error": None,
    "attempt": 0,
    "feedback": None,
    "guard_decision": None,
    "first_response": None,
    "reask_error": None,
    "streamed": "",
    "stream_failures": None,
}


def entities_of(state: ChatState | dict[str, Any]) -> Entities:
    """The state's entities as a model (empty when none were resolved yet)."""
    value = state.get("entities")
    if value is None:
        return Entities()
    return value if isinstance(value, Entities) else Entities.model_validate(value)


def response_of(state: ChatState | dict[str, Any]) -> CrewResponse | None:
    """The state's crew response as a model, or None."""
    value = state.get("response")
    if value is None:
        return None
    return value if isinstance(value, CrewResponse) else CrewResponse.model_validate(value)


def first_response_of(state: ChatState | dict[str, Any]) -> CrewResponse | None:
    """The crew's first answer of a turn whose crew was re-asked, as a model, or None."""
    value = state.get("first_response")
    if value is None:
        return None
    return value if isinstance(value, CrewResponse) else CrewResponse.model_validate(value)


def pending_action_of(state: ChatState | dict[str, Any]) -> ProposedAction | None:
    """The action waiting for the rep's decision, or None."""
    value = state.get("pending_action")
    if value is None:
        return None
    return value if isinstance(value, ProposedAction) else ProposedAction.model_validate(value)


def action_result_of(state: ChatState | dict[str, Any]) -> ActionResult | None:
    """The outcome of the last decided action of this turn, or None."""
    value = state.get("action_result")
    if value is None:
        return None
    return value if isinstance(value, ActionResult) else ActionResult.model_validate(value)


def error_of(state: ChatState | dict[str, Any]) -> TurnError | None:
    """Why this turn failed, or None."""
    value = state.get("error")
    return None if value is None else TurnError.model_validate(value)


def last_user_message(messages: list[BaseMessage] | list[AnyMessage]) -> str:
    """Text of the latest human message ("" when there is none)."""
    for msg in reversed(messages):
        if isinstance(msg, HumanMessage):
            return msg.text if isinstance(msg.content, list) else str(msg.content)
    return ""


def last_assistant_message(messages: list[BaseMessage] | list[AnyMessage]) -> str:
    """Text of the latest assistant message ("" when there is none)."""
    for msg in reversed(messages):
        if isinstance(msg, AIMessage):
            return msg.text if isinstance(msg.content, list) else str(msg.content)
    return ""


def unanswered(messages: list[BaseMessage] | list[AnyMessage]) -> bool:
    """True when the thread ends with a human message that got no answer (a failed turn)."""
    return bool(messages) and isinstance(messages[-1], HumanMessage)


def history(messages: list[BaseMessage] | list[AnyMessage], limit: int = 6) -> list[Turn]:
    """The last `limit` messages *before* the current one, as crew-ready :class:`Turn` items
    (short on purpose: prompts on the local model must stay small)."""
    earlier = messages[:-1] if messages and isinstance(messages[-1], HumanMessage) else messages
    turns: list[Turn] = []
    for msg in earlier[-limit:]:
        text = msg.text if isinstance(msg.content, list) else str(msg.content)
        if isinstance(msg, HumanMessage):
            turns.append(Turn(role="user", content=text))
        elif isinstance(msg, AIMessage):
            turns.append(Turn(role="assistant", content=text))
    return turns


def previous_intent(messages: list[BaseMessage] | list[AnyMessage]) -> Intent | None:
    """The intent of the latest answered turn (from its assistant message), or None."""
    for msg in reversed(messages):
        intent = turn_meta(msg).get("intent")
        if intent:
            return intent  # type: ignore[no-any-return]
    return None


def turn_meta(message: BaseMessage) -> dict[str, Any]:
    """The metadata Flowstate stored on an assistant message (`{}` for others)."""
    meta = message.additional_kwargs.get(META_KEY) if isinstance(message, AIMessage) else None
    return meta if isinstance(meta, dict) else {}
