"""The nodes of the chat graph (wired in `graphs.graph`).

    resolve_entities -> classify_intent -> <intent crew> -> guard -> [propose -> approve] -> respond

Each node reads its dependencies from the runtime context (:class:`graphs.context.ChatContext`),
reports progress through LangGraph's stream writer as `{"type": "status", "node", "crew"?}`
frames, and streams the reply as `{"type": "token", "content"}` frames once the reply has passed
the guard (never the raw draft: a redacted or refused draft must not reach the client).

Failure is honest: a node that fails records a :class:`graphs.state.TurnError` in `error` and
the graph goes straight to `respond`, which ends the turn without an assistant message: the
rep's message stays in the thread, unanswered, and sending it again retries the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.config import get_config, get_stream_writer
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from crews.contracts import INTENTS, CrewRequest, CrewResponse, Intent, ProposedAction
from graphs.context import ActionMeta, ChatContext, call, default_context, real_run_crew
from graphs.failures import classify_failure, failure_reply, transient
from graphs.state import (
    META_KEY,
    ActionResult,
    ChatState,
    ResumeValue,
    TurnError,
    entities_of,
    error_of,
    history,
    last_user_message,
    pending_action_of,
    previous_intent,
    response_of,
)

log = logging.getLogger(__name__)

NodeFn = Callable[[ChatState, Runtime[ChatContext]], Awaitable[dict[str, Any]]]

_WORD = re.compile(r"\S+\s*|\s+")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _ctx(runtime: Runtime[ChatContext] | None) -> ChatContext:
    ctx = runtime.context if runtime is not None else None
    return ctx if isinstance(ctx, ChatContext) else default_context()


def _thread_id() -> str | None:
    try:
        tid = get_config().get("configurable", {}).get("thread_id")
    except RuntimeError:  # called outside a graph run (unit tests of a node)
        return None
    return str(tid) if tid is not None else None


def emit(frame: dict[str, Any]) -> None:
    """Send one frame to the stream of the current run (no-op when nobody streams)."""
    with contextlib.suppress(RuntimeError):  # outside a graph run
        get_stream_writer()(frame)


def status(node: str, crew: str | None = None) -> None:
    """A `{"type": "status", "node", "crew"?}` frame: which node (and crew) is working."""
    frame: dict[str, Any] = {"type": "status", "node": node}
    if crew is not None:
        frame["crew"] = crew
    emit(frame)


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


def publish(text: str, ctx: ChatContext) -> None:
    """Stream `text` as token frames."""
    for piece in chunks(text, max(1, ctx.stream_chunk_chars)):
        emit({"type": "token", "content": piece})


def _fail(exc: BaseException, node: str, ctx: ChatContext) -> dict[str, Any]:
    err = classify_failure(exc, node, llm_timeout_s=ctx.llm.timeout_s if ctx.llm else None)
    log.warning("chat turn failed in %s (%s): %r", node, err.kind, exc, exc_info=err.kind == "internal")
    return {"error": err.model_dump()}


def _meta(intent: Intent | None, response: CrewResponse | None, **extra: Any) -> dict[str, Any]:
    return {
        META_KEY: {
            "intent": intent,
            "sources": [s.model_dump(mode="json") for s in (response.sources if response else [])],
            **extra,
        }
    }


def crew_request(state: ChatState, ctx: ChatContext, intent: Intent) -> CrewRequest:
    """The :class:`CrewRequest` for the current turn of `state`."""
    messages = state.get("messages", [])
    return CrewRequest(
        message=last_user_message(messages),
        intent=intent,
        user_id=state.get("user_id"),
        thread_id=_thread_id(),
        entities=entities_of(state),
        history=history(messages, ctx.history_turns),
    )


# --------------------------------------------------------------------------------------------
# nodes
# --------------------------------------------------------------------------------------------


async def resolve_entities(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    """Find the accounts, deals, reps, ... named in the message (deterministic, no LLM); a
    follow-up that names nothing keeps the previous turn's entities."""
    ctx = _ctx(runtime)
    status("resolve_entities")
    message = last_user_message(state.get("messages", []))
    try:
        entities = await call(ctx.resolve, ctx, message, entities_of(state))
    except Exception as exc:
        return _fail(exc, "resolve_entities", ctx)
    return {"entities": entities}


async def classify_intent(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    """Pick the crew for the message: one of `crews.contracts.INTENTS`."""
    if state.get("error"):
        return {}
    ctx = _ctx(runtime)
    status("classify_intent")
    messages = state.get("messages", [])
    try:
        result = await call(
            ctx.classify,
            ctx,
            last_user_message(messages),
            entities_of(state),
            history(messages, ctx.history_turns),
            previous_intent(messages),
        )
    except Exception as exc:
        return _fail(exc, "classify_intent", ctx)
    intent = getattr(result, "intent", result)
    routing = (
        result.model_dump(include={"method", "confidence", "llm_calls"})
        if hasattr(result, "model_dump")
        else {}
    )
    if intent not in INTENTS:
        log.warning("classifier returned %r; answering as 'general'", intent)
        intent = "general"
    return {"intent": intent, "routing": routing}


def route_intent(state: ChatState) -> str:
    """Conditional edge after classify_intent: the intent's crew node, or respond on failure."""
    if state.get("error"):
        return "respond"
    intent = state.get("intent")
    return intent if intent in INTENTS else "general"


async def _run_crew(ctx: ChatContext, request: CrewRequest) -> CrewResponse:
    if ctx.crew_deps is not None:
        deps = ctx.crew_deps
    elif ctx.run_crew is real_run_crew:
        deps = ctx.crew_deps_for()
    else:  # an injected run_crew gets the context itself
        deps = ctx
    response: CrewResponse | None = None
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(max(1, ctx.crew_attempts)),
        wait=wait_exponential(multiplier=0.5, max=2),
        retry=retry_if_exception(transient),
        reraise=True,
    ):
        with attempt:
            response = await asyncio.wait_for(call(ctx.run_crew, request, deps), ctx.crew_deadline_s())
    assert response is not None  # reraise=True: the loop either returned a value or raised
    if not isinstance(response, CrewResponse):
        response = CrewResponse.model_validate(response)
    return response


def make_crew_node(intent: Intent) -> NodeFn:
    """The node that runs the crew of `intent` through `ctx.run_crew` (retried once after a
    transient failure, capped at `ctx.crew_deadline_s()`)."""

    async def crew_node(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
        ctx = _ctx(runtime)
        status(intent, crew=intent)
        try:
            response = await _run_crew(ctx, crew_request(state, ctx, intent))
        except Exception as exc:
            return _fail(exc, intent, ctx)
        return {"response": response}

    crew_node.__name__ = crew_node.__qualname__ = f"{intent}_crew"
    crew_node.__doc__ = f"Run the {intent} crew on the turn and store its typed CrewResponse."
    return crew_node


async def guard(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    """Check the crew's response with `ctx.guard` (pass-through when None). A guard that fails
    to run blocks the reply (fail closed) rather than showing an unchecked one."""
    response = response_of(state)
    if state.get("error") or response is None:
        return {}
    ctx = _ctx(runtime)
    if ctx.guard is None:
        return {}
    status("guard")
    intent = state.get("intent") or "general"
    try:
        outcome = await call(ctx.guard, ctx, crew_request(state, ctx, intent), response)
    except Exception as exc:
        log.exception("guard failed")
        err = TurnError(
            node="guard",
            kind="internal",
            message=f"The answer could not be checked ({type(exc).__name__}), so it is not shown.",
        )
        return {"error": err.model_dump()}
    return {"response": outcome.response, "verdicts": list(outcome.verdicts)}


def route_after_guard(state: ChatState) -> str:
    """Conditional edge after guard: propose when the crew asked for a side effect."""
    if state.get("error"):
        return "respond"
    response = response_of(state)
    return "propose" if response is not None and response.proposed_action is not None else "respond"


async def propose(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    """Show the crew's reply and mark its proposed action as pending (kept in the checkpoint,
    so the thread shows it while the graph waits in `approve`)."""
    ctx = _ctx(runtime)
    response = response_of(state)
    assert response is not None and response.proposed_action is not None
    publish(response.reply, ctx)
    action = response.proposed_action
    message = AIMessage(
        content=response.reply,
        additional_kwargs=_meta(
            state.get("intent"), response, kind="proposal", action=action.model_dump(mode="json")
        ),
    )
    return {"messages": [message], "pending_action": action}


async def approve(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    """Pause for the rep's decision (`interrupt`), then carry it out.

    Interrupt value: `{"action": ProposedAction as dict, "reply": str}`. Resume value:
    :class:`graphs.state.ResumeValue` as a dict. approve/edit -> `ctx.execute_action` (which
    writes the change and its Event); reject -> Event "action.rejected", nothing changes; a
    change the CRM refuses -> Event "action.failed". The outcome is kept in `action_result`.
    """
    ctx = _ctx(runtime)
    action = pending_action_of(state)
    if action is None:  # nothing pending (e.g. state edited by hand): nothing to do
        return {}
    response = response_of(state)
    raw = interrupt({"action": action.model_dump(mode="json"), "reply": response.reply if response else ""})
    status("approve")
    value = ResumeValue.model_validate(raw)
    meta = ActionMeta(
        actor=state.get("user_id"), thread_id=_thread_id(), decision=value.decision, original=action
    )
    if value.decision == "reject":
        payload = {"action": action.model_dump(mode="json"), "decision": "reject", **_refs(action)}
        try:
            await call(ctx.record_event, ctx, "action.rejected", payload, meta)
        except Exception as exc:  # the rejection stands even if the log write failed
            log.warning("could not record action.rejected: %r", exc)
        result = ActionResult(decision="reject", status="rejected", action=action)
        return {"pending_action": None, "action_result": result}

    final = action
    if value.decision == "edit" and value.edits:
        final = action.model_copy(update={"params": {**action.params, **value.edits}})
    try:
        outcome = await call(ctx.execute_action, ctx, final, meta)
    except Exception as exc:
        detail = _refusal(exc)
        payload = {
            "action": final.model_dump(mode="json"),
            "decision": value.decision,
            "error": detail,
            **_refs(final),
        }
        try:
            await call(ctx.record_event, ctx, "action.failed", payload, meta)
        except Exception as log_exc:
            log.warning("could not record action.failed: %r", log_exc)
        result = ActionResult(decision=value.decision, status="failed", action=final, detail=detail)
        return {"pending_action": None, "action_result": result}
    if value.decision == "edit":
        # the executed action's Event carries the final params; this one keeps what was changed
        payload = {
            "proposed": action.model_dump(mode="json"),
            "edits": value.edits,
            **_refs(final),
        }
        try:
            await call(ctx.record_event, ctx, "action.edited", payload, meta)
        except Exception as exc:
            log.warning("could not record action.edited: %r", exc)
    result = ActionResult(decision=value.decision, status="done", action=final, result=dict(outcome or {}))
    return {"pending_action": None, "action_result": result}


def _refs(action: ProposedAction) -> dict[str, Any]:
    """account_id / deal_id of an action's params, for the Event's foreign keys."""
    return {k: action.params[k] for k in ("account_id", "deal_id") if isinstance(action.params.get(k), int)}


def _refusal(exc: BaseException) -> str:
    """Why an action could not be carried out, in one sentence."""
    from crm.errors import DomainError

    if isinstance(exc, DomainError):
        return str(exc)
    err = classify_failure(exc, "approve")
    return err.message


def _params_text(action: ProposedAction) -> str:
    return ", ".join(f"{k}={v}" for k, v in action.params.items())


def outcome_text(result: ActionResult) -> str:
    """The sentence that tells the rep what happened to the action."""
    summary = result.action.summary.rstrip(".")
    if result.status == "done" and result.decision == "edit":
        return f"Done with your edits: {result.action.kind.replace('_', ' ')} {_params_text(result.action)}."
    if result.status == "done":
        return f"Done: {summary}."
    if result.status == "rejected":
        return f"Cancelled: {summary}. Nothing was changed."
    return f"Could not do it: {summary}. {result.detail}".rstrip()


async def respond(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    """End the turn: append the assistant message (the reply, or what happened to the action).

    A failed turn appends nothing: the rep's message stays unanswered in the thread and the
    reply of the run says what happened (see `graphs.failures`)."""
    ctx = _ctx(runtime)
    err = error_of(state)
    if err is not None:
        publish(failure_reply(err), ctx)
        return {}
    intent = state.get("intent")
    response = response_of(state)
    result = state.get("action_result")
    if result is not None:
        action_result = result if isinstance(result, ActionResult) else ActionResult.model_validate(result)
        text = outcome_text(action_result)
        publish(text, ctx)
        meta = _meta(intent, response, kind="outcome", action=action_result.model_dump(mode="json"))
        return {"messages": [AIMessage(content=text, additional_kwargs=meta)]}
    reply = response.reply if response is not None else ""
    publish(reply, ctx)
    return {"messages": [AIMessage(content=reply, additional_kwargs=_meta(intent, response, kind="reply"))]}
