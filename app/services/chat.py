"""The chat engine as a service: one compiled graph, its Redis checkpointer and its runtime
context, shared by the REST routes, the WebSocket and `flowstate chat`.

Every turn starts in one place, :meth:`ChatService._drive`, with
`config={"configurable": {"thread_id"}, "callbacks": callbacks_for_turn(...), "metadata": {...}}`.
There the turn is observed: `observability.turn.observe_turn` opens the turn's Langfuse
trace (named after the intent, `session.id` = thread id, `user.id` = the rep; the Langfuse
LangChain handler of :meth:`ChatService.callbacks_for_turn` puts the graph's nodes and LLM calls
in it, CrewAI's instrumentation the crews') and counts it in Prometheus (turns by intent and
outcome, latency, guard failures by validator); `observability.llm_meter.usage_scope` counts the
turn's LLM requests and tokens at the HTTP boundary (the one source of `ChatResult.usage`).

Every turn, resume and read is for a `contracts.identity.Caller` (from the credential, never
from a request body). A thread belongs to the caller of its first turn (`owner` in its state,
`graphs.state.owner_key`): anyone else's turn, decision or read is refused as ThreadNotFound
(404: a thread id leaks nothing), except that an admin may read every thread. The caller
travels with each run in the runtime context (`ChatContext.caller`, never checkpointed): the
crews' tools read and act within its scope, and the Event of a decided action records
`caller.actor`. A decision names the action it decides (`ResumeValue.action_id`, the interrupt's
id): another id is NotThePendingAction (409). A message that comes while an action waits moves
the action to the caller's inbox (`tools.inbox.file_chat_action`; approving it there runs it
once) and clears the thread's interrupt before the message is answered, in the same call.

A turn runs in its own asyncio task and hands frames to the caller through a queue, so a client
that disconnects mid-turn does not cancel it (the answer lands in the thread). Turns of one thread
run one at a time, in this process (an asyncio lock) and across processes (a lock in Redis,
`graphs.checkpoint.thread_lock`: several `flowstate serve` workers or instances share one Redis).

Every turn has an overall deadline (settings.turn_deadline_s). A turn past it is cancelled: the
graph run stops (nothing more is checkpointed), the LLM requests of its scope are refused from
then on (a crew still running in a worker thread fails at its next request, and its result is
dropped with the cancelled task), the failure is recorded in the thread (the message stays,
unanswered: sending it again retries it), the caller gets an "error" frame of kind
"turn_deadline", and the thread's locks are released. The Redis lock is a lease of
`LOCK_LEASE_S` renewed while the turn runs: it only expires on its own when the process holding
it died (or lost Redis), and then within `LOCK_LEASE_S`.

Admission control: a process runs at most `max_active_turns` turns at once (their crews, guards
and lookups compete for the same cores, so more at once only makes every one of them slower). A
turn waits for a place up to `admission_wait_s`; past it the caller gets an "error" frame of kind
"busy" (retryable) and the message is recorded in the thread unanswered, like a turn that failed,
so nothing is lost and sending it again answers it. Several processes (`flowstate serve
--workers N`) each have their own places.

Frames (dicts, JSON-ready), in order: `{"type": "status", "node", "crew"?}` while working;
`{"type": "token", "content"}` pieces of the reply as it is written (a streaming crew's sentences
as the model writes them, each checked by the guards before it is sent; other replies once
guarded); `{"type": "discard", "reason"}` when text already streamed must be forgotten (`reason`
"reask" | "refuse" | "fixed" | "retry" | "error"), the tokens that follow replacing it;
`{"type": "interrupt", "id", "action", "reply"}` when an action waits for approval; and last
either `{"type": "final", ...ChatResult}`, whose `reply` is authoritative and equals the tokens
streamed after the last discard, or, for a failed turn, `{"type": "error", "message", "kind",
"retryable", "thread_id"}`, after which any streamed text is not a reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START
from langgraph.types import Command, Durability
from redis.exceptions import RedisError

from app.services.chat_types import (
    ChatError,
    ChatResult,
    DeferredAction,
    NothingPending,
    NotThePendingAction,
    PendingAction,
    StoreUnavailable,
    ThreadBusy,
    ThreadMessage,
    ThreadNotFound,
    ThreadView,
    TurnUsage,
    check_thread_id,
    new_thread_id,
)
from contracts import CrewResponse, Intent, ProposedAction, ResumeValue, Source, TurnError
from contracts.identity import Caller
from contracts.outcomes import DeferValue
from graphs.checkpoint import DEFAULT_PREFIX, ThreadLockTimeout, thread_lock, turn_reads
from graphs.context import ChatContext
from graphs.failures import busy_error, classify_failure, deadline_error, failure_reply
from graphs.graph import GRAPH_NAME, STATE_EXTRA_TYPES, build_graph
from graphs.state import (
    action_result_of,
    entities_of,
    error_of,
    last_user_message,
    owner_key,
    response_of,
    turn_input,
    turn_meta,
    unanswered,
)
from observability.llm_meter import MeterUsage, usage_scope
from observability.metrics import observe_busy_turn
from observability.tracing import get_tracing
from observability.turn import Outcome, observe_turn
from tools.inbox import file_chat_action
from tools.names import names_read_once
from tools.session import run_in_session

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph
    from sqlalchemy import Engine

    from config.settings import Settings
    from embedded.stack import Endpoints
    from workflows.client import Workflows

log = logging.getLogger(__name__)

#: Default overall deadline of a turn, seconds (settings.turn_deadline_s overrides it in the app).
DEFAULT_TURN_DEADLINE_S = 120.0
#: Defaults of admission control (settings.max_active_turns, admission_wait_s override them).
DEFAULT_MAX_ACTIVE_TURNS = 32
DEFAULT_ADMISSION_WAIT_S = 30.0
#: Lease of a thread's Redis lock, seconds, renewed every third of it while the turn runs: how
#: long a thread stays blocked after the process running its turn died. Long enough that a busy
#: event loop (renewal late by seconds) does not lose a live turn's lock.
LOCK_LEASE_S = 15.0


@dataclass
class _Raise:
    exc: BaseException


@dataclass
class _Ended:
    """Put on the queue when the turn's task ends, whatever happened: a consumer that sees it
    before a ChatResult knows the turn died without one (cancelled, or a bug)."""

    task: asyncio.Task[None]


def _warm_up_crews() -> None:
    """`llm.warm_up_crews`, logged rather than raised (the first crew turn imports it again and
    reports a real failure)."""
    from llm import warm_up_crews

    try:
        warm_up_crews()
    except Exception as exc:
        log.warning("warm-up of the crews' LLM client failed: %r", exc)


# --------------------------------------------------------------------------------------------
# the service
# --------------------------------------------------------------------------------------------


class ChatService:
    """The chat engine: `turn`, `resume`, `stream`, `get_thread` on one compiled graph.

    Build with :meth:`open` (checkpointer on Redis, context from a running stack) or directly
    with a compiled graph and a context (tests, benchmarks).

    `turn_deadline_s`: the overall deadline of a turn (see the module docstring).
    `max_active_turns`, `admission_wait_s`: admission control (module docstring). The turns of a
    thread are serialised across processes through the checkpointer's Redis client when it has
    one (`AsyncRedisSaver.client`); with another saver, within this process only."""

    def __init__(
        self,
        graph: CompiledStateGraph[Any, Any, Any, Any],
        context: ChatContext,
        checkpointer: BaseCheckpointSaver[str] | None = None,
        *,
        turn_deadline_s: float = DEFAULT_TURN_DEADLINE_S,
        max_active_turns: int = DEFAULT_MAX_ACTIVE_TURNS,
        admission_wait_s: float = DEFAULT_ADMISSION_WAIT_S,
    ) -> None:
        if turn_deadline_s <= 0:
            raise ValueError(f"turn_deadline_s must be > 0, got {turn_deadline_s}")
        if max_active_turns < 1 or admission_wait_s < 0:
            raise ValueError("max_active_turns must be >= 1 and admission_wait_s >= 0")
        self.graph = graph
        self.context = context
        self.checkpointer = checkpointer
        self.turn_deadline_s = turn_deadline_s
        self.max_active_turns = max_active_turns
        self.admission_wait_s = admission_wait_s
        self._slots = asyncio.Semaphore(max_active_turns)
        #: how long a turn waits for its thread's lock: the holder's turn ends within its
        #: deadline, or, if its process died, the lease runs out
        self.lock_wait_s = turn_deadline_s + LOCK_LEASE_S
        self._redis = getattr(checkpointer, "client", None)
        self._lock_prefix = str(getattr(checkpointer, "prefix", None) or DEFAULT_PREFIX)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._running: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- construction

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        redis_url: str,
        *,
        settings: Settings,
        context: ChatContext | None = None,
        endpoints: Endpoints | None = None,
        warm_up: bool = True,
    ) -> AsyncIterator[ChatService]:
        """A service on the Redis at `redis_url` (checkpoint TTL and turn deadline from settings).

        Without `context`, one is built by `app.services.context.build_context` from `endpoints`
        (database and LLM of the running stack) or, without endpoints, from settings; its engine
        is disposed on exit. `warm_up` imports CrewAI and the model client first (about 5 s, which
        the first crew turn would otherwise add to its first token), then loads the guards and the
        intent router's example vectors in the background (the first turn would wait seconds for
        them otherwise). The running loop's default executor gets `settings.chat_threads`
        threads: crews, guards and lookups run there, each crew holding a thread for its LLM
        calls, and asyncio's default (CPU count + 4) would cap a 2-core server at about 6 crew
        runs at once. Raises
        `graphs.checkpoint.CheckpointStoreError` when Redis does not answer."""
        from app.services.context import build_context
        from app.services.context import warm_up as warm_context
        from graphs.checkpoint import open_checkpointer

        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=settings.chat_threads, thread_name_prefix="flowstate-turn")
        )
        owned = None
        if context is None:
            context = build_context(settings, endpoints)
            owned = context.engine
        try:
            async with open_checkpointer(
                redis_url, settings.checkpoint_ttl_minutes, extra_types=STATE_EXTRA_TYPES
            ) as saver:
                service = cls(
                    build_graph(saver),
                    context,
                    saver,
                    turn_deadline_s=settings.turn_deadline_s,
                    max_active_turns=settings.max_active_turns,
                    admission_wait_s=settings.admission_wait_s,
                )
                if warm_up:
                    # before the first turn can start, not beside it: two threads importing CrewAI
                    # at once can see its modules half-initialised
                    await asyncio.to_thread(_warm_up_crews)
                warm = asyncio.create_task(asyncio.to_thread(warm_context, context)) if warm_up else None
                try:
                    yield service
                finally:
                    await service.drain()
                    if warm is not None:
                        await asyncio.wait({warm}, timeout=30)
        finally:
            if owned is not None:
                owned.dispose()

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait (up to `timeout_s`) for turns still running, e.g. before shutdown."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=timeout_s)

    # ---------------------------------------------------------------- hooks

    def callbacks_for_turn(
        self, thread_id: str, user_id: str | None, intent: Intent | None = None
    ) -> list[BaseCallbackHandler]:
        """LangChain callbacks attached to a turn's root run: the Langfuse `CallbackHandler`
        when tracing is on (a new one per turn; `session.id` and `user.id` come from the turn's
        trace, see `observability.tracing.Tracing.turn_span`), else none."""
        callbacks: list[BaseCallbackHandler] = get_tracing().callbacks()
        return callbacks

    def config_for_turn(
        self,
        thread_id: str,
        user_id: str | None,
        extra_callbacks: list[BaseCallbackHandler] = (),  # type: ignore[assignment]
    ) -> RunnableConfig:
        """The config every run of the graph starts with (the one place a turn starts)."""
        return {
            "configurable": {"thread_id": thread_id},
            "callbacks": [*self.callbacks_for_turn(thread_id, user_id), *extra_callbacks],
            "metadata": {"thread_id": thread_id, "user_id": user_id},
            "run_name": GRAPH_NAME,
        }

    # ---------------------------------------------------------------- public API

    async def turn(self, thread_id: str | None, message: str, *, caller: Caller) -> ChatResult:
        """Answer `caller`'s `message` in thread `thread_id` (None: a new thread, owned by
        `caller`). A message identical to the thread's last, unanswered one (its turn failed)
        retries that turn instead of adding it again. When an action waits for a decision, it is
        filed in `caller`'s inbox first (`ChatResult.deferred_action`; approving it there runs it)
        and the message is answered. Raises ThreadNotFound (another's thread), InvalidThreadId."""
        return await self._collect(self._events(thread_id, caller, message=message))

    async def resume(self, thread_id: str, value: ResumeValue, *, caller: Caller) -> ChatResult:
        """Carry out `caller`'s decision on the pending action `value.action_id` ("approve" |
        "reject" | "edit" with `edits` merged into the action's params); the action's Event
        records `caller.actor`. Raises ThreadNotFound (unknown, or another's thread),
        NothingPending, NotThePendingAction (`action_id` is not the pending action's id)."""
        return await self._collect(self._events(thread_id, caller, resume=value))

    async def stream(
        self,
        thread_id: str | None,
        message: str | None = None,
        *,
        caller: Caller,
        resume: ResumeValue | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """The frames of a turn (`message`) or a resume (`resume`) by `caller`, the last one
        "final" or "error". Raises ChatError subclasses before the first frame (see :meth:`turn`
        and :meth:`resume`)."""
        async for event in self._events(thread_id, caller, message=message, resume=resume):
            yield event.frame() if isinstance(event, ChatResult) else event

    async def get_thread(self, thread_id: str, *, caller: Caller) -> ThreadView:
        """The conversation `thread_id`, for its owner or an admin (admins may read every thread,
        to review and support; only the owner writes in it). Raises ThreadNotFound (unknown, or
        another's thread: said the same way)."""
        check_thread_id(thread_id)
        try:
            snap = await self.graph.aget_state({"configurable": {"thread_id": thread_id}})
        except RedisError as exc:
            raise StoreUnavailable(thread_id) from exc
        if snap.created_at is None or not snap.values or not may_read(snap.values, caller):
            raise ThreadNotFound(thread_id)
        values: dict[str, Any] = snap.values
        messages = []
        for msg in values.get("messages", []):
            if isinstance(msg, HumanMessage):
                messages.append(ThreadMessage(role="user", content=msg.text))
            elif isinstance(msg, AIMessage):
                meta = turn_meta(msg)
                messages.append(
                    ThreadMessage(
                        role="assistant",
                        content=msg.text,
                        intent=meta.get("intent"),
                        sources=[Source.model_validate(s) for s in meta.get("sources", [])],
                        kind=meta.get("kind"),
                        action=meta.get("action"),
                    )
                )
        error = error_of(values) if unanswered(values.get("messages", [])) else None
        return ThreadView(
            thread_id=thread_id,
            user_id=values.get("user_id"),
            messages=messages,
            intent=values.get("intent"),
            entities=entities_of(values),
            pending_action=_pending(snap),
            error=error,
        )

    # ---------------------------------------------------------------- internals

    async def _collect(self, events: AsyncIterator[dict[str, Any] | ChatResult]) -> ChatResult:
        result: ChatResult | None = None
        async for event in events:
            if isinstance(event, ChatResult):
                result = event
        assert result is not None, "a run always ends with a ChatResult"
        return result

    async def _events(
        self,
        thread_id: str | None,
        caller: Caller,
        *,
        message: str | None = None,
        resume: ResumeValue | None = None,
    ) -> AsyncIterator[dict[str, Any] | ChatResult]:
        if (message is None) == (resume is None):
            raise ValueError("pass exactly one of message and resume")
        if thread_id is None:
            if resume is not None:
                raise ThreadNotFound("")
            thread_id = new_thread_id()
        check_thread_id(thread_id)
        queue: asyncio.Queue[dict[str, Any] | ChatResult | _Raise | _Ended] = asyncio.Queue()
        task = asyncio.create_task(self._drive(thread_id, message, caller, resume, queue))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        task.add_done_callback(lambda t: queue.put_nowait(_Ended(t)))
        while True:
            item = await queue.get()
            if isinstance(item, _Raise):
                raise item.exc
            if isinstance(item, _Ended):
                # the task ended without a result (cancelled at shutdown, or a bug): say so
                exc = None if item.task.cancelled() else item.task.exception()
                log.error("chat turn of thread %s ended without a result: %r", thread_id, exc)
                err = classify_failure(exc or asyncio.CancelledError(), "turn")
                yield ChatResult(thread_id=thread_id, reply=failure_reply(err), error=err)
                return
            yield item
            if isinstance(item, ChatResult):
                return

    async def _prepare(
        self, thread_id: str, message: str | None, caller: Caller, resume: ResumeValue | None
    ) -> tuple[dict[str, Any] | Command[Any], PendingAction | None]:
        """The graph input of this run, and the pending action a new message moves to the inbox
        (None: nothing waits, or this run decides it); raises ChatError subclasses."""
        snap = await self.graph.aget_state({"configurable": {"thread_id": thread_id}})
        exists = snap.created_at is not None
        values: dict[str, Any] = snap.values or {}
        if exists and not may_write(values, caller):
            raise ThreadNotFound(thread_id)
        pending = _pending(snap)
        if resume is not None:
            if not exists:
                raise ThreadNotFound(thread_id)
            if pending is None:
                raise NothingPending(thread_id)
            if resume.action_id != pending.id:
                raise NotThePendingAction(thread_id, resume.action_id, pending.id)
            return Command(resume=resume.model_dump()), None
        assert message is not None
        who = caller.actor
        msgs = values.get("messages", [])
        if pending is None and exists and unanswered(msgs) and last_user_message(msgs) == message:
            # the last turn failed on this very message: run it again rather than repeat it
            return turn_input(None, who, values), None
        # a waiting action is deferred first, which changes the state: reset every key then
        graph_input = turn_input(message, who, values if pending is None else None)
        if not exists:
            graph_input["owner"] = owner_key(caller)
        return graph_input, pending

    async def _drive(
        self,
        thread_id: str,
        message: str | None,
        caller: Caller,
        resume: ResumeValue | None,
        queue: asyncio.Queue[Any],
    ) -> None:
        """Run one turn (or resume) of `thread_id` and put its frames, then its ChatResult, on
        `queue` (a ChatError as `_Raise`). This is where every turn starts: it takes the
        thread's lock in this process, waits for a place among the turns running here
        (:meth:`_admit`), then takes the thread's Redis lock and runs :meth:`_run` under them;
        the result goes out once they are released, so a caller who has it can start the next
        turn. A turn queues for its place before it takes the Redis lock: a lease held while
        queueing would be renewed every few seconds for nothing (under 1,000 conversations those
        renewals were a fortieth of a worker's CPU), and other processes could not serve the
        thread meanwhile."""
        local = self._locks.get(thread_id)
        if local is None:
            local = self._locks[thread_id] = asyncio.Lock()
        async with local:
            admitted = await self._admit()
            try:
                # the thread's latest checkpoint is read once until the turn writes (`turn_reads`)
                with turn_reads():
                    last = await self._locked(thread_id, message, caller, resume, queue, admitted)
            finally:
                if admitted:
                    self._slots.release()
        queue.put_nowait(last)

    async def _locked(
        self,
        thread_id: str,
        message: str | None,
        caller: Caller,
        resume: ResumeValue | None,
        queue: asyncio.Queue[Any],
        admitted: bool,
    ) -> ChatResult | _Raise:
        """:meth:`_run` under the thread's Redis lock (when the checkpointer has a Redis client)."""
        if self._redis is None:
            return await self._run(thread_id, message, caller, resume, queue, admitted)
        lock = thread_lock(
            self._redis,
            thread_id,
            lease_s=LOCK_LEASE_S,
            wait_s=self.lock_wait_s,
            prefix=self._lock_prefix,
        )
        async with contextlib.AsyncExitStack() as held:
            try:
                await held.enter_async_context(lock)
            except ThreadLockTimeout:
                return _Raise(ThreadBusy(thread_id, self.lock_wait_s))
            except Exception as exc:  # Redis down: nothing can be read or saved
                err = classify_failure(exc, "lock_thread")
                return ChatResult(thread_id=thread_id, reply=failure_reply(err), error=err)
            return await self._run(thread_id, message, caller, resume, queue, admitted)

    async def _run(
        self,
        thread_id: str,
        message: str | None,
        caller: Caller,
        resume: ResumeValue | None,
        queue: asyncio.Queue[Any],
        admitted: bool,
    ) -> ChatResult | _Raise:
        """The turn itself, under the thread's locks, within the turn deadline: streams its
        frames to `queue` and returns its result (a ChatError as `_Raise`); a turn that found no
        place (`admitted` False) is refused as busy."""
        try:
            graph_input, waiting = await self._prepare(thread_id, message, caller, resume)
        except ChatError as exc:
            return _Raise(exc)
        except Exception as exc:  # Redis down while reading the thread
            err = classify_failure(exc, "load_thread")
            return ChatResult(thread_id=thread_id, reply=failure_reply(err), error=err)
        if not admitted:
            # a message that would move a waiting action is not recorded: the action stays
            record = resume is None and waiting is None
            return await self._refuse_busy(thread_id, graph_input, record)
        return await self._admitted(thread_id, message, resume, graph_input, caller, waiting, queue)

    async def _admit(self) -> bool:
        """Take a place among the `max_active_turns`, waiting up to `admission_wait_s` (0: take
        a free one or none); False when none freed up in time."""
        if self._slots.locked() and self.admission_wait_s == 0:
            return False
        try:
            async with asyncio.timeout(self.admission_wait_s):
                await self._slots.acquire()
        except TimeoutError:
            return False
        return True

    async def _refuse_busy(
        self, thread_id: str, graph_input: dict[str, Any] | Command[Any], record: bool
    ) -> ChatResult:
        """A turn that found no place within admission_wait_s: its message (`record`: a message
        turn) goes into the thread with a "busy" error, so it shows unanswered and sending it
        again retries it; a resume is left as it was (its action still waits)."""
        err = busy_error(self.max_active_turns, self.admission_wait_s)
        # counted, not logged at INFO: refusals come by the thousand exactly when the process has
        # no CPU to spare, and their INFO lines, rendered by the console's rich handler, took 5%
        # of an overloaded worker's CPU
        observe_busy_turn()
        log.debug("chat turn of thread %s refused: %d turns running", thread_id, self.max_active_turns)
        if record and isinstance(graph_input, dict):
            try:
                await self.graph.aupdate_state(
                    {"configurable": {"thread_id": thread_id}},
                    {**graph_input, "error": err.model_dump()},
                    as_node="respond",
                )
            except Exception as exc:
                log.warning("could not record the busy refusal in thread %s: %r", thread_id, exc)
                err = classify_failure(exc, "load_thread")
        return ChatResult(thread_id=thread_id, reply=failure_reply(err), error=err)

    async def _admitted(
        self,
        thread_id: str,
        message: str | None,
        resume: ResumeValue | None,
        graph_input: dict[str, Any] | Command[Any],
        caller: Caller,
        waiting: PendingAction | None,
        queue: asyncio.Queue[Any],
    ) -> ChatResult:
        """The graph run of an admitted turn, within the turn deadline; `waiting`: the pending
        action to move to `caller`'s inbox first (see :meth:`_defer`)."""
        who = caller.actor
        context = dataclasses.replace(self.context, caller=caller)
        turn_input_text: Any = message if resume is None else {"resume": resume.model_dump()}
        # names_read_once: the resolver's and the guard's name lookups share one names version
        # read (tools.names)
        with (
            observe_turn(thread_id, who, input=turn_input_text) as observed,
            usage_scope() as metered,
            names_read_once(),
        ):
            config = self.config_for_turn(thread_id, who)
            deferred: DeferredAction | None = None
            if waiting is not None:
                try:
                    async with asyncio.timeout(self.turn_deadline_s):
                        deferred = await self._defer(thread_id, waiting, context, config)
                except Exception as exc:  # the action still waits; the message was not recorded
                    log.exception("could not move the pending action of thread %s to the inbox", thread_id)
                    err = classify_failure(exc, "defer_action")
                    observed.finish(intent=None, outcome="error", verdicts=(), output=failure_reply(err))
                    return ChatResult(thread_id=thread_id, reply=failure_reply(err), error=err)
            replies: list[str] = []
            run = _RunView()
            crash: TurnError | None = None
            deadline = asyncio.timeout(self.turn_deadline_s)
            try:
                async with deadline:
                    run_input, durability = await self._record_message(thread_id, graph_input)
                    async for mode, data in self.graph.astream(
                        run_input,
                        config,
                        context=context,
                        stream_mode=["custom", "updates", "values"],
                        durability=durability,
                    ):
                        if mode == "custom":
                            if isinstance(data, dict):
                                queue.put_nowait(data)
                        elif mode == "values":
                            if isinstance(data, dict):
                                run.values = data
                        elif isinstance(data, dict):
                            self._on_updates(data, replies, queue, run)
            except TimeoutError as exc:
                if not deadline.expired():  # a timeout raised inside the run, not ours
                    log.exception("chat turn crashed in thread %s", thread_id)
                    crash = classify_failure(exc, "graph")
                else:
                    crash = await self._cancelled(thread_id, metered, record=resume is None)
            except Exception as exc:  # a bug or Redis failing mid-run: the turn ends honestly
                log.exception("chat turn crashed in thread %s", thread_id)
                crash = classify_failure(exc, "graph")
            usage = TurnUsage.model_validate(metered.as_dict())
            try:
                result = await self._result(thread_id, replies, usage, crash, run)
            except Exception as exc:
                err = crash or classify_failure(exc, "load_thread")
                result = ChatResult(thread_id=thread_id, reply=failure_reply(err), error=err, usage=usage)
            if deferred is not None:
                result = result.model_copy(update={"deferred_action": deferred})
            observed.finish(
                intent=result.intent,
                outcome=_outcome(result),
                # a resume runs no crew: the verdicts in the state are the proposing turn's
                verdicts=result.verdicts if resume is None else (),
                output=result.reply,
            )
        return result

    async def _record_message(
        self, thread_id: str, graph_input: dict[str, Any] | Command[Any]
    ) -> tuple[dict[str, Any] | Command[Any] | None, Durability]:
        """Save a message turn's input as the thread's newest checkpoint before the graph runs,
        and return what to run: (None, "exit"), the graph continuing from that checkpoint and
        saving once, when it ends or interrupts. So a process killed mid-turn leaves the message
        in the thread (unanswered; sending it again answers it) for the price of two checkpoint
        writes a turn, not one per step. A resume (a `Command`) runs with durability "sync": each
        step of an approved action is saved as soon as it is done."""
        if not isinstance(graph_input, dict):
            return graph_input, "sync"
        await self.graph.aupdate_state({"configurable": {"thread_id": thread_id}}, graph_input, as_node=START)
        return None, "exit"

    async def _defer(
        self, thread_id: str, waiting: PendingAction, context: ChatContext, config: RunnableConfig
    ) -> DeferredAction:
        """Move the action the thread waits on to the inbox of `context.caller` (its owner, who
        just wrote a new message): file it (`tools.inbox.file_chat_action`, once per thread and
        action), then resume the graph with a `DeferValue`, which records "action.deferred" and
        clears the interrupt (the thread shows what happened to the action). The frames of that
        run are not sent: the new message's answer is what the client streams."""
        caller = context.caller
        assert caller is not None and waiting.id is not None
        if context.engine is None:
            raise RuntimeError("no CRM database: a waiting action cannot be filed in the inbox")
        engine, action_id = context.engine, waiting.id
        action = ProposedAction.model_validate(waiting.model_dump(exclude={"id"}))
        item = await run_in_session(
            engine,
            lambda s: file_chat_action(
                s, action, recipient=caller.person, thread_id=thread_id, action_id=action_id
            ),
        )
        value = DeferValue(action_id=action_id, inbox_item_id=item.id)
        await self.graph.ainvoke(
            Command(resume=value.model_dump()), config, context=context, durability="sync"
        )
        return DeferredAction(**waiting.model_dump(), inbox_item_id=item.id)

    async def _cancelled(self, thread_id: str, metered: MeterUsage, *, record: bool) -> TurnError:
        """After the turn deadline cancelled the graph run: refuse the LLM requests still to
        come from the turn's worker threads, and (`record`: a message turn) record the failure
        in the thread, so it shows the message unanswered with its error, like any failed turn.
        A resume is left as it was: its action still waits for the rep's decision."""
        metered.cancel()
        err = deadline_error(self.turn_deadline_s)
        log.warning("chat turn of thread %s cancelled at its %g s deadline", thread_id, self.turn_deadline_s)
        if record:
            try:
                await self.graph.aupdate_state(
                    {"configurable": {"thread_id": thread_id}}, {"error": err.model_dump()}, as_node="respond"
                )
            except Exception as exc:
                log.warning("could not record the deadline failure in thread %s: %r", thread_id, exc)
        return err

    @staticmethod
    def _on_updates(
        data: dict[str, Any], replies: list[str], queue: asyncio.Queue[Any], run: _RunView
    ) -> None:
        for node, update in data.items():
            if node == "__interrupt__":
                run.interrupts.extend(update or ())
                for intr in update or ():
                    value = intr.value if isinstance(intr.value, dict) else {}
                    queue.put_nowait(
                        {
                            "type": "interrupt",
                            "id": intr.id,
                            "action": value.get("action"),
                            "reply": value.get("reply"),
                        }
                    )
            elif isinstance(update, dict):
                for msg in update.get("messages") or ():
                    if isinstance(msg, AIMessage):
                        replies.append(msg.text)

    async def _result(
        self,
        thread_id: str,
        replies: list[str],
        usage: TurnUsage,
        crash: TurnError | None,
        run: _RunView,
    ) -> ChatResult:
        """The turn's result from the state the run streamed last (`run`), or read back from the
        thread when the run streamed none or failed (the saved state is then the truth)."""
        snap: Any = run if run.values is not None and crash is None else None
        if snap is None:
            snap = await self.graph.aget_state({"configurable": {"thread_id": thread_id}})
        values: dict[str, Any] = snap.values or {}
        response: CrewResponse | None = response_of(values)
        err = crash or error_of(values)
        if err is not None:
            reply = failure_reply(err)
        else:
            reply = "\n\n".join(r for r in replies if r) or (response.reply if response else "")
        return ChatResult(
            thread_id=thread_id,
            reply=reply,
            intent=values.get("intent"),
            sources=response.sources if response else [],
            pending_action=_pending(snap),
            action_result=action_result_of(values),
            error=err,
            usage=usage,
            data=response.data if response else {},
            verdicts=list(values.get("verdicts") or []),
        )


@dataclass
class _RunView:
    """What a graph run streamed: its last state (`values`, None before the first step) and the
    interrupts it ended on; read like a state snapshot by :func:`_pending`."""

    values: dict[str, Any] | None = None
    interrupts: list[Any] = dataclasses.field(default_factory=list)


def _outcome(result: ChatResult) -> Outcome:
    """What a turn came to, for metrics and the trace: "error" (the turn failed),
    "needs_approval" (an action waits for the rep), "safe_reply" (a guard refused the crew's
    answer and the safe reply was shown), else "answered"."""
    if result.error is not None:
        return "error"
    if result.pending_action is not None:
        return "needs_approval"
    if any(v.get("action") == "refused" for v in result.verdicts):
        return "safe_reply"
    return "answered"


def may_read(values: dict[str, Any], caller: Caller) -> bool:
    """Whether `caller` may read the thread of state `values`: its owner, or any admin."""
    return caller.role == "admin" or may_write(values, caller)


def may_write(values: dict[str, Any], caller: Caller) -> bool:
    """Whether `caller` may write in (send to, decide in) the thread of state `values`: its owner
    only. A thread that records no owner (started before owners were recorded) is the admins'."""
    owner = values.get("owner")
    if owner is None:
        return caller.role == "admin"
    return bool(owner == owner_key(caller))


def _pending(snap: Any) -> PendingAction | None:
    """The action waiting for a decision in a state snapshot (from its pending interrupt)."""
    for intr in snap.interrupts or ():
        value = intr.value if isinstance(intr.value, dict) else {}
        action = value.get("action")
        if isinstance(action, dict):
            return PendingAction(id=intr.id, **action)
    return None


@contextlib.asynccontextmanager
async def chat_service(
    endpoints: Endpoints, settings: Settings | None = None, workflows: Workflows | None = None
) -> AsyncIterator[ChatService | None]:
    """The app's chat engine for a running stack (None when the stack has no Redis: the chat
    routes then answer 503). Used by `create_app`'s lifespan and `flowstate chat`. On a llama.cpp
    model server it also fills the server's prompt cache with the streamed crews' fixed prompts,
    in the background (`crews.warmup`; settings.llm_warm_prompts). With `workflows`, an approved
    action starts the workflows it asked for as soon as it has committed."""
    if endpoints.redis_url is None:
        log.warning("no Redis in the running stack: chat is disabled")
        yield None
        return
    if settings is None:
        from config.settings import get_settings

        settings = get_settings()
    from observability.masking import set_name_loader
    from observability.tracing import setup_tracing

    # Langfuse tracing for the engine's lifetime (off without LANGFUSE_* keys; never raises)
    tracing = setup_tracing(settings)
    try:
        async with ChatService.open(endpoints.redis_url, settings=settings, endpoints=endpoints) as service:
            if tracing.enabled and not settings.trace_raw and service.context.engine is not None:
                await _mask_contact_names(service.context.engine)
            if workflows is not None:
                from app.services.workflows import StartingActions

                actions = StartingActions(service.context.actions, workflows, asyncio.get_running_loop())
                service.context = dataclasses.replace(service.context, actions=actions)
            warm = None
            if settings.llm_warm_prompts and service.context.llm.dialect == "llama_cpp":
                # in the background: the server answers turns meanwhile, one request at a time
                from crews.warmup import warm_prompt_cache

                warm = asyncio.create_task(warm_prompt_cache(service.context.llm))
            try:
                yield service
            finally:
                if warm is not None and not warm.done():
                    warm.cancel()
    finally:
        tracing.shutdown()  # its last export still masks the names
        set_name_loader(None)


async def _mask_contact_names(engine: Engine) -> None:
    """Have traces mask the CRM contacts' names (`observability.masking`), read from `engine`;
    loaded now, in a worker thread, so that no turn waits for the first load."""
    from observability.masking import refresh_names, set_name_loader

    set_name_loader(functools.partial(_contact_names, engine))
    await asyncio.to_thread(refresh_names)


def _contact_names(engine: Engine) -> list[str]:
    from crm.db import session_scope
    from crm.repository import contact_full_names

    with session_scope(engine) as session:
        return contact_full_names(session)
