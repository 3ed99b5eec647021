"""The nodes of the chat graph (wired in `graphs.graph`).

    resolve_entities -> classify_intent -> <intent crew | general> -> guard
        -> (re-ask: the intent's crew again -> guard) -> [propose -> approve] -> respond

Each node reads its dependencies from the runtime context (:class:`graphs.context.ChatContext`),
reports progress through LangGraph's stream writer as `{"type": "status", "node", "crew"?}`
frames, and streams the reply as `{"type": "token", "content"}` frames (`graphs.streaming`):

- a crew that streams (the closing crew's drafts and advice) writes its reply sentence by
  sentence while the model generates; the crew node checks each sentence with the sentence guards
  (`guards.sentences`) and sends it, or stops the crew at the first sentence that fails (never
  sent) and hands its failures to the guard node, which re-asks the crew or shows the safe reply;
- the guard node then checks the whole reply (`guards.check_reply`), as for every crew;
- `propose` / `respond` send what the client does not hold yet: the rest of the guarded reply
  (all of it for a crew that does not stream), or, when the guarded reply no longer continues
  what was sent, a `{"type": "discard", "reason"}` frame and the whole reply.

A draft that fails a check never reaches the client as it stands: a failing sentence is not sent,
and text sent before a later failure is discarded (`discard` frame) before the re-ask or the safe
reply streams.

Failure is honest: a node that fails records a :class:`contracts.TurnError` in `error` and the
graph goes straight to `respond`, which ends the turn without an assistant message: the rep's
message stays in the thread, unanswered, and sending it again retries the turn. A re-asked crew
run that fails is the exception: the guard then shows the safe reply (`graphs.guarding`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.config import get_config, get_stream_writer
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from contracts import (
    INTENTS,
    ActionMeta,
    ActionResult,
    CrewRequest,
    CrewResponse,
    Entities,
    Intent,
    ProposedAction,
    ResumeValue,
    TurnError,
    Verdict,
)
from contracts.identity import Caller
from contracts.outcomes import DeferValue
from crews.streaming import ReplyRejected, streaming_to
from graphs import canned
from graphs.context import ChatContext
from graphs.failures import classify_failure, failure_reply, transient
from graphs.guarding import (
    EVENT_KIND,
    MAX_ATTEMPTS,
    failures_at,
    refused_after_failed_reask,
    safe_response,
    sentence_guard_loader,
    stream_outcome,
    tagged,
    verdicts_event,
)
from graphs.state import (
    META_KEY,
    ChatState,
    entities_of,
    error_of,
    first_response_of,
    history,
    last_assistant_message,
    last_user_message,
    pending_action_of,
    previous_intent,
    response_of,
)
from graphs.streaming import GuardedReplyStream, chunks, frame_writer, publish_reply
from observability.masking import allow_names
from tools.deals import deal_of_action
from tools.session import run_in_session

log = logging.getLogger(__name__)

NodeFn = Callable[[ChatState, Runtime[ChatContext]], Awaitable[dict[str, Any]]]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _ctx(runtime: Runtime[ChatContext]) -> ChatContext:
    ctx = runtime.context
    if not isinstance(ctx, ChatContext):
        # e.g. `langgraph dev` on the module-level graph: the app passes the context it built
        raise TypeError(
            "the chat graph needs a graphs.context.ChatContext as its runtime context "
            "(graph.ainvoke(..., context=ctx); app.services.context.build_context builds one)"
        )
    return ctx


def _thread_id() -> str | None:
    try:
        tid = get_config().get("configurable", {}).get("thread_id")
    except RuntimeError:  # called outside a graph run (unit tests of a node)
        return None
    return str(tid) if tid is not None else None


def _approval_key() -> str | None:
    """`approval:<thread>:<checkpoint namespace of this approve task>`: the same for every replay
    of one pending approval (a duplicate resume, a crash before the checkpoint is written), new
    for the next action of the thread. LangGraph derives the interrupt's id from the same
    namespace."""
    try:
        configurable = get_config().get("configurable", {})
    except RuntimeError:
        return None
    thread, ns = configurable.get("thread_id"), configurable.get("checkpoint_ns")
    return f"approval:{thread}:{ns}" if thread is not None and ns else None


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


def publish(text: str, chunk_chars: int) -> None:
    """Stream `text` as token frames, cut at word boundaries past `chunk_chars` characters."""
    for piece in chunks(text, max(1, chunk_chars)):
        emit({"type": "token", "content": piece})


def discard(streamed: str | None, reason: str) -> None:
    """A `{"type": "discard", "reason"}` frame when the client holds streamed text (`streamed`)."""
    if streamed:
        emit({"type": "discard", "reason": reason})


def _fail(exc: BaseException, node: str, llm_timeout_s: float) -> dict[str, Any]:
    err = classify_failure(exc, node, llm_timeout_s=llm_timeout_s)
    log.warning("chat turn failed in %s (%s): %r", node, err.kind, exc, exc_info=err.kind == "internal")
    return {"error": err.model_dump()}


def allow_record_names(entities: Entities | None = None, response: CrewResponse | None = None) -> None:
    """Let the turn's trace show the names of its own contacts: those resolved from the
    conversation, and those in the records the crew's reply rests on (its sources and facts);
    other people's names stay masked there (`observability.masking`). The records are read only
    when the turn is traced with names masked."""
    texts = _record_texts([e.key for e in entities.of("contact")] if entities is not None else [])
    if response is not None:
        sources = [s.model_dump(include={"label", "data"}) for s in response.sources]
        texts = itertools.chain(texts, _record_texts(sources), _record_texts(response.facts))
    allow_names(texts)


def _record_texts(value: Any) -> Iterator[str]:
    """The strings in `value` (nested dicts and lists), and "First Last" of each dict with
    `first_name` and `last_name` (a contact as a tool returns it)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        first, last = value.get("first_name"), value.get("last_name")
        if isinstance(first, str) and isinstance(last, str):
            yield f"{first} {last}"
        for item in value.values():
            yield from _record_texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _record_texts(item)


def _meta(intent: Intent | None, response: CrewResponse | None, **extra: Any) -> dict[str, Any]:
    return {
        META_KEY: {
            "intent": intent,
            "sources": [s.model_dump(mode="json") for s in (response.sources if response else [])],
            **extra,
        }
    }


def crew_request(
    state: ChatState, intent: Intent, history_turns: int, caller: Caller | None = None
) -> CrewRequest:
    """The :class:`CrewRequest` for the current turn of `state` (with the last `history_turns`
    earlier messages, and the guards' `feedback` when the crew is being re-asked), for `caller`
    (the run's `ChatContext.caller`: the crew's tools work within its scope)."""
    messages = state.get("messages", [])
    return CrewRequest(
        message=last_user_message(messages),
        intent=intent,
        user_id=caller.actor if caller is not None else state.get("user_id"),
        caller=caller,
        thread_id=_thread_id(),
        entities=entities_of(state),
        history=history(messages, history_turns),
        feedback=state.get("feedback"),
    )


# --------------------------------------------------------------------------------------------
# nodes
# --------------------------------------------------------------------------------------------


async def resolve_entities(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    """Find the accounts, deals, reps, ... named in the message (deterministic, no LLM); a
    follow-up that names nothing keeps the previous turn's entities."""
    ctx = _ctx(runtime)
    status("resolve_entities")
    messages = state.get("messages", [])
    message = last_user_message(messages)
    try:
        previous = entities_of(state)
        reply = last_assistant_message(messages)
        if reply:
            # the records the last answer introduced ("Celia Rouche", "the East office"): what a
            # follow-up's "her", "that office" or "its" may point at
            said = await asyncio.to_thread(ctx.resolver.resolve, reply, Entities())
            answered = list({(e.kind, e.key): e for e in said.items if e.kind != "stage"}.values())
            previous = previous.model_copy(update={"answered": answered})
        entities = await asyncio.to_thread(ctx.resolver.resolve, message, previous)
    except Exception as exc:
        return _fail(exc, "resolve_entities", ctx.llm.timeout_s)
    allow_record_names(entities)
    return {"entities": entities}


async def classify_intent(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    """Pick the crew for the message: one of `contracts.INTENTS`. The router gets what
    `flowstate eval intents` gives it: the message, its resolved entities (their names are
    masked for the neighbour search) and the intent of the thread's previous turn."""
    if state.get("error"):
        return {}
    ctx = _ctx(runtime)
    status("classify_intent")
    messages = state.get("messages", [])
    try:
        result = await ctx.router.aclassify(
            last_user_message(messages), previous_intent(messages), entities_of(state)
        )
    except Exception as exc:
        return _fail(exc, "classify_intent", ctx.llm.timeout_s)
    intent: str = result.intent
    routing = result.model_dump(include={"method", "confidence", "llm_calls"})
    if intent not in INTENTS:
        log.warning("classifier returned %r; answering as 'general'", intent)
        intent = "general"
    return {"intent": intent, "routing": routing}


def route_intent(state: ChatState) -> str:
    """Conditional edge after classify_intent: the intent's node, or respond on failure."""
    if state.get("error"):
        return "respond"
    intent = state.get("intent")
    return intent if intent in INTENTS else "general"


async def run_crew(
    ctx: ChatContext, request: CrewRequest, before_retry: Callable[[], None] | None = None
) -> CrewResponse:
    """`ctx.crews(request, ctx.crew_deps)`, tried again after a transient failure (up to
    `ctx.crew_attempts` runs, `before_retry()` called before each new run) and capped at
    `ctx.crew_deadline_s` per run."""
    response: CrewResponse | None = None
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(max(1, ctx.crew_attempts)),
        wait=wait_exponential(multiplier=0.5, max=2),
        retry=retry_if_exception(transient),
        reraise=True,
    ):
        with attempt:
            if attempt.retry_state.attempt_number > 1 and before_retry is not None:
                before_retry()
            response = await asyncio.wait_for(ctx.crews(request, ctx.crew_deps), ctx.crew_deadline_s)
    assert response is not None  # reraise=True: the loop either returned a value or raised
    if not isinstance(response, CrewResponse):
        response = CrewResponse.model_validate(response)
    return response


def make_crew_node(intent: Intent) -> NodeFn:
    """The node that runs the crew of `intent` (see :func:`run_crew`). On a re-ask (`attempt` >
    0 in the state) the request carries the guards' `feedback`, and a failed run is left to the
    guard (`reask_error`: the safe reply) instead of failing the turn.

    The crew's reply streams through a :class:`graphs.streaming.GuardedReplyStream` (sentence
    guards built from the CRM's facts when the graph guards replies): `streamed` in the state
    is what the client holds afterwards; a sentence that failed stops the run and leaves its
    failures in `stream_failures` for the guard node. The stored response's reply is what was
    sent (with the sentence guards' fixes) followed by what the crew wrote after it."""

    async def crew_node(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
        ctx = _ctx(runtime)
        status(intent, crew=intent)
        attempt = state.get("attempt") or 0
        request = crew_request(state, intent, ctx.history_turns, ctx.caller)
        verdicts = list(state.get("verdicts") or [])
        stream: GuardedReplyStream | None = None
        try:
            loader = sentence_guard_loader(ctx, request, attempt)
            stream = GuardedReplyStream(
                frame_writer(), loader, ctx.stream_chunk_chars, state.get("streamed") or ""
            )
            with streaming_to(stream):
                response = await run_crew(ctx, request, before_retry=lambda: _restart(stream))
        except ReplyRejected:
            assert stream is not None  # only the stream raises it
            log.info("%s crew stopped: a streamed sentence failed its checks", intent)
            return {
                "stream_failures": [v.model_dump() for v in stream.failures],
                "streamed": stream.sent,
                "verdicts": verdicts + tagged(stream.verdicts, attempt),
            }
        except Exception as exc:
            streamed = {"streamed": stream.sent if stream is not None else state.get("streamed") or ""}
            if attempt:
                log.warning("re-asked %s crew failed: %r; answering with the safe reply", intent, exc)
                return {"reask_error": type(exc).__name__, **streamed}
            return {**_fail(exc, intent, ctx.llm.timeout_s), **streamed}
        finally:
            if stream is not None:
                stream.close()  # a crew thread still writing stops at its next sentence
        allow_record_names(response=response)
        update: dict[str, Any] = {"stream_failures": None, "streamed": stream.sent}
        if stream.verdicts:
            update["verdicts"] = verdicts + tagged(stream.verdicts, attempt)
        if stream.raw:
            if response.reply.startswith(stream.raw):
                # the client holds the sent text (sentence fixes applied); the rest follows it
                response = response.model_copy(
                    update={"reply": stream.sent + response.reply[len(stream.raw) :]}
                )
            else:  # the crew rewrote what it streamed: the client must forget it
                stream.discard("fixed")
                update["streamed"] = ""
        return {"response": response, **update}

    def _restart(stream: GuardedReplyStream) -> None:
        stream.discard("retry")  # the failed run's sentences: the new run writes its own

    crew_node.__name__ = crew_node.__qualname__ = f"{intent}_crew"
    crew_node.__doc__ = f"Run the {intent} crew on the turn and store its typed CrewResponse."
    return crew_node


def make_canned_node(intent: Intent) -> NodeFn:
    """The node that answers an intent without a crew (general: greeting, thanks, help, out of
    scope) with a canned reply (`graphs.canned`: no LLM, no CRM access); the guard still checks
    it, and a re-ask gets the same reply again."""

    async def canned_node(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
        ctx = _ctx(runtime)
        status(intent, crew=intent)  # the frame clients have always been sent for this step
        return {"response": canned.answer(crew_request(state, intent, ctx.history_turns, ctx.caller))}

    canned_node.__name__ = canned_node.__qualname__ = f"{intent}_canned"
    canned_node.__doc__ = f"Answer the {intent} intent with a canned reply and store it."
    return canned_node


async def guard(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    """Check the crew's response with `ctx.guard` (pass-through when None) and decide: pass or
    fixed (the checked response is shown), reask (the guard's `feedback` goes back to the crew
    node, `attempt` + 1), refuse (the safe reply of the first answer). A crew run whose stream a
    sentence guard stopped (`stream_failures`) is decided on those failures: reask while re-asks
    are left, else refuse. Records the verdicts of every attempt in `verdicts`, and a
    `guard.verdicts` Event when any failed. On reask and refuse the client is told to discard the
    text streamed so far (`discard` frame). A guard that fails to run blocks the reply (fail
    closed) rather than showing an unchecked one."""
    response = response_of(state)
    stream_failures = state.get("stream_failures")
    if state.get("error") or (response is None and not stream_failures):
        return {}
    ctx = _ctx(runtime)
    if ctx.guard is None:
        return {}
    attempt = state.get("attempt") or 0
    if attempt == 0:  # a re-asked answer is checked within the same "checking" step
        status("guard")
    request = crew_request(state, state.get("intent") or "general", ctx.history_turns, ctx.caller)
    first = first_response_of(state) or response or CrewResponse(reply="")
    verdicts = list(state.get("verdicts") or [])
    reask_error = state.get("reask_error")
    streamed = state.get("streamed") or ""
    try:
        if reask_error:  # the re-asked crew failed: the first answer stays unshown
            asked = failures_at(verdicts, attempt - 1)
            verdicts += refused_after_failed_reask(asked, attempt, reask_error)
            await _record(ctx, request, "refuse", attempt + 1, verdicts)
            discard(streamed, "refuse")
            return {**_decided("refuse", safe_response(first, asked), verdicts), "streamed": ""}
        if stream_failures:  # tagged into `verdicts` by the crew node
            failures = [Verdict.model_validate(v) for v in stream_failures]
            decision, note = stream_outcome(failures)
            if decision == "reask" and attempt + 1 < MAX_ATTEMPTS:
                discard(streamed, "reask")
                return _reask(attempt, note, first, verdicts)
            await _record(ctx, request, "refuse", attempt + 1, verdicts)
            discard(streamed, "refuse")
            return {**_decided("refuse", safe_response(first, failures), verdicts), "streamed": ""}
        assert response is not None
        checked = await asyncio.to_thread(ctx.guard.check, request, response, attempt)
        verdicts += tagged(checked.verdicts, attempt)
        if checked.decision == "reask":
            if attempt + 1 < MAX_ATTEMPTS:
                discard(streamed, "reask")
                return _reask(attempt, checked.reask_instructions, first, verdicts)
            # MAX_ATTEMPTS reached with max_reasks set above it
            await _record(ctx, request, "refuse", attempt + 1, verdicts)
            discard(streamed, "refuse")
            return {**_decided("refuse", safe_response(first, checked.failures), verdicts), "streamed": ""}
        if any(not v["passed"] for v in verdicts):
            await _record(ctx, request, checked.decision, attempt + 1, verdicts)
        if checked.decision == "refuse":
            discard(streamed, "refuse")
            return {**_decided(checked.decision, checked.response, verdicts), "streamed": ""}
        return _decided(checked.decision, checked.response, verdicts)
    except Exception as exc:
        log.exception("guard failed")
        err = TurnError(
            node="guard",
            kind="internal",
            message=f"The answer could not be checked ({type(exc).__name__}), so it is not shown.",
        )
        return {"error": err.model_dump()}


def _reask(
    attempt: int, feedback: str | None, first: CrewResponse, verdicts: list[dict[str, Any]]
) -> dict[str, Any]:
    """The state update that sends the turn back to its crew with the guards' `feedback`."""
    return {
        "guard_decision": "reask",
        "attempt": attempt + 1,
        "feedback": feedback,
        "first_response": first,
        "verdicts": verdicts,
        "streamed": "",
        "stream_failures": None,
    }


def _decided(decision: str, response: CrewResponse, verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"guard_decision": decision, "response": response, "verdicts": verdicts}


async def _record(
    ctx: ChatContext, request: CrewRequest, decision: str, attempts: int, verdicts: list[dict[str, Any]]
) -> None:
    """The Event `guard.verdicts` of this turn (never fails the turn)."""
    payload, meta = verdicts_event(request, decision, attempts, verdicts)
    try:
        await asyncio.to_thread(ctx.actions.record, EVENT_KIND, payload, meta)
    except Exception as exc:
        log.warning("could not record %s: %r", EVENT_KIND, exc)


def route_after_guard(state: ChatState) -> str:
    """Conditional edge after guard: the intent's crew again when the guard re-asks it, propose
    when the crew asked for a side effect, else respond."""
    if state.get("error"):
        return "respond"
    if state.get("guard_decision") == "reask":
        intent = state.get("intent")
        return intent if intent in INTENTS else "general"
    response = response_of(state)
    return "propose" if response is not None and response.proposed_action is not None else "respond"


async def propose(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    """Show the crew's reply and mark its proposed action as pending (kept in the checkpoint,
    so the thread shows it while the graph waits in `approve`)."""
    ctx = _ctx(runtime)
    response = response_of(state)
    assert response is not None and response.proposed_action is not None
    publish_reply(emit, response.reply, state.get("streamed") or "", ctx.stream_chunk_chars)
    action = response.proposed_action
    message = AIMessage(
        content=response.reply,
        additional_kwargs=_meta(
            state.get("intent"), response, kind="proposal", action=action.model_dump(mode="json")
        ),
    )
    return {"messages": [message], "pending_action": action, "streamed": response.reply}


async def approve(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    """Pause for the rep's decision (`interrupt`), then carry it out.

    Interrupt value: `{"action": ProposedAction as dict, "reply": str}`. Resume value:
    :class:`contracts.ResumeValue` as a dict. approve/edit -> `ctx.actions.execute` (which writes
    the change and its Event); reject -> Event "action.rejected", nothing changes; a change the
    CRM refuses, or one on a deal outside the deciding caller's scope (`ctx.caller`) -> Event
    "action.failed". A :class:`contracts.outcomes.DeferValue` (the action was filed in the
    inbox because a new message came) -> Event "action.deferred", nothing changes here. Every
    Event records the one who decided (`ctx.caller.actor`), not whoever wrote earlier in the
    thread. The outcome is kept in `action_result`.
    """
    ctx = _ctx(runtime)
    action = pending_action_of(state)
    if action is None:  # nothing pending (e.g. state edited by hand): nothing to do
        return {}
    response = response_of(state)
    raw = interrupt({"action": action.model_dump(mode="json"), "reply": response.reply if response else ""})
    status("approve")
    actor = ctx.caller.actor if ctx.caller is not None else state.get("user_id")
    if isinstance(raw, dict) and raw.get("decision") == "defer":
        return await _deferred(ctx, action, DeferValue.model_validate(raw), actor)
    value = ResumeValue.model_validate(raw)
    meta = ActionMeta(
        actor=actor,
        thread_id=_thread_id(),
        decision=value.decision,
        original=action,
        idempotency_key=_approval_key(),
    )
    if value.decision == "reject":
        payload = {"action": action.model_dump(mode="json"), "decision": "reject", **_refs(action)}
        try:
            await asyncio.to_thread(ctx.actions.record, "action.rejected", payload, meta)
        except Exception as exc:  # the rejection stands even if the log write failed
            log.warning("could not record action.rejected: %r", exc)
        result = ActionResult(decision="reject", status="rejected", action=action)
        return {"pending_action": None, "action_result": result}

    final = action
    if value.decision == "edit" and value.edits:
        final = action.model_copy(update={"params": {**action.params, **value.edits}})
    try:
        await _check_scope(ctx, final)
        outcome = await asyncio.to_thread(ctx.actions.execute, final, meta)
    except Exception as exc:
        detail = _refusal(exc)
        payload = {
            "action": final.model_dump(mode="json"),
            "decision": value.decision,
            "error": detail,
            **_refs(final),
        }
        try:
            await asyncio.to_thread(ctx.actions.record, "action.failed", payload, meta)
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
            await asyncio.to_thread(ctx.actions.record, "action.edited", payload, meta)
        except Exception as exc:
            log.warning("could not record action.edited: %r", exc)
    result = ActionResult(decision=value.decision, status="done", action=final, result=dict(outcome or {}))
    return {"pending_action": None, "action_result": result}


class OutOfScope(Exception):
    """An action on a deal the deciding caller may not change."""


async def _check_scope(ctx: ChatContext, action: ProposedAction) -> None:
    """Raise OutOfScope when `action` is about a deal whose rep is outside `ctx.caller`'s
    `act_rep_ids` (the crews propose no such action; this holds for an edited one too)."""
    caller = ctx.caller
    if caller is None or caller.act_rep_ids is None or ctx.engine is None:
        return
    engine = ctx.engine
    deal = await run_in_session(engine, lambda s: deal_of_action(s, action))
    if deal is not None and not caller.may_act_for_rep(deal.rep_id):
        raise OutOfScope(f"deal {deal.external_id} belongs to another team; you can't change it")


async def _deferred(
    ctx: ChatContext, action: ProposedAction, value: DeferValue, actor: str | None
) -> dict[str, Any]:
    """The pending action moved to the inbox (item `value.inbox_item_id`): Event
    "action.deferred"; nothing changes until it is approved there."""
    meta = ActionMeta(
        actor=actor,
        thread_id=_thread_id(),
        decision="defer",
        original=action,
        idempotency_key=f"inbox:{value.inbox_item_id}",
    )
    payload = {
        "action": action.model_dump(mode="json"),
        "decision": "defer",
        "inbox_item_id": value.inbox_item_id,
        **_refs(action),
    }
    try:
        await asyncio.to_thread(ctx.actions.record, "action.deferred", payload, meta)
    except Exception as exc:  # the item is filed either way
        log.warning("could not record action.deferred: %r", exc)
    result = ActionResult(
        decision="defer",
        status="deferred",
        action=action,
        detail="moved to your inbox",
        result={"inbox_item_id": value.inbox_item_id},
    )
    return {"pending_action": None, "action_result": result}


def _refs(action: ProposedAction) -> dict[str, Any]:
    """account_id / deal_id of an action's params, for the Event's foreign keys."""
    return {k: action.params[k] for k in ("account_id", "deal_id") if isinstance(action.params.get(k), int)}


def _refusal(exc: BaseException) -> str:
    """Why an action could not be carried out, in one sentence."""
    from crm.errors import DomainError

    if isinstance(exc, DomainError | OutOfScope):
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
    if result.status == "deferred":
        item = result.result.get("inbox_item_id")
        return f"Moved to your inbox (item {item}): {summary}. Approve it there to go ahead."
    return f"Could not do it: {summary}. {result.detail}".rstrip()


async def respond(state: ChatState, runtime: Runtime[ChatContext]) -> dict[str, Any]:
    """End the turn: append the assistant message (the reply, or what happened to the action).

    A failed turn appends nothing: the rep's message stays unanswered in the thread and the
    reply of the run says what happened (see `graphs.failures`)."""
    ctx = _ctx(runtime)
    err = error_of(state)
    if err is not None:
        discard(state.get("streamed"), "error")
        publish(failure_reply(err), ctx.stream_chunk_chars)
        return {}
    intent = state.get("intent")
    response = response_of(state)
    result = state.get("action_result")
    if result is not None:
        action_result = result if isinstance(result, ActionResult) else ActionResult.model_validate(result)
        text = outcome_text(action_result)
        publish(text, ctx.stream_chunk_chars)
        meta = _meta(intent, response, kind="outcome", action=action_result.model_dump(mode="json"))
        return {"messages": [AIMessage(content=text, additional_kwargs=meta)]}
    reply = response.reply if response is not None else ""
    publish_reply(emit, reply, state.get("streamed") or "", ctx.stream_chunk_chars)
    return {"messages": [AIMessage(content=reply, additional_kwargs=_meta(intent, response, kind="reply"))]}
