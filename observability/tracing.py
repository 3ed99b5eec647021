"""Langfuse tracing of chat turns: one trace per turn, every LLM call a generation.

Set up once at start-up with :func:`setup_tracing` (from `Settings`); it is off without both
`LANGFUSE_PUBLIC_KEY` and `LANGFUSE_SECRET_KEY` (nothing imported, no thread, no network) and
exports OTLP/HTTP to `LANGFUSE_BASE_URL` (or `LANGFUSE_HOST`; Langfuse Cloud when neither is set)
when they are. Per chat turn::

    tracing = get_tracing()                      # or the object setup_tracing returned
    with tracing.turn_span(thread_id, user_id, input=message) as turn:
        state = await graph.ainvoke(inp, config={"configurable": {...}, "callbacks": tracing.callbacks()})
        turn.set_intent(state["intent"])         # the trace is named after the intent
        turn.record_guard_verdicts(state["verdicts"])
        turn.set_output(reply)

What ends up in the trace (all spans share the turn's trace id):

- the root span `turn_span` opens (renamed to the intent), with `session.id` = thread id and
  `user.id` = the rep on it and on every span below (Langfuse's `propagate_attributes`);
- LangGraph's nodes, chains and `ChatOpenAI` calls, through `langfuse.langchain.CallbackHandler`
  (each LLM call a `generation` with model, input, output and usage);
- CrewAI's crews, agents, tools and LLM calls, through OpenInference's CrewAI instrumentor in its
  event-listener mode (`use_event_listener=True, create_llm_spans=True`): CrewAI 1.x calls the
  `openai` SDK directly (not LiteLLM), and its event bus is the one place that sees those calls
  with their messages, reply and token usage. Its spans carry the current OpenTelemetry context,
  so they nest under the LangGraph node that kicked the crew off;
- `tools/` functions decorated with :func:`traced` as `tool` observations;
- one `guardrail` observation per guard verdict, and one Langfuse score per validator
  (`guard.<validator>`, 1 = all its verdicts passed, 0 = one failed, comment = the failures).

Exactly one generation per LLM call: only those two integrations create LLM spans (no OpenAI or
LiteLLM instrumentor is installed; OpenInference's LangChain instrumentor is deliberately not used
next to the CallbackHandler). At export, :func:`enrich_generation_spans` (Langfuse's
`mask_otel_spans` hook) marks OpenInference LLM spans as Langfuse generations (model, usage,
input, output in Langfuse's attributes) and adds `cost_details` in USD to every generation whose
model is in the price table (`config/prices.yaml`; 0 for the local model). Unless
`FLOWSTATE_TRACE_RAW` is true, e-mail addresses, phone numbers and the CRM contacts' names (other
than those of the turn's own records) are masked as well, in what the SDK records
(`Langfuse(mask=...)`) and in every exported span's attributes (:func:`enrich_and_mask_spans`;
see `observability.masking`).

The tracer provider is Flowstate's own (not the global OpenTelemetry one), so nothing else in the
process exports through it and :meth:`Tracing.shutdown` undoes everything (tests rely on it).
Tracing failures never fail a turn: every entry point here catches its own errors and logs each
kind once.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from observability.masking import mask_attributes, mask_data
from observability.metrics import verdict_fields
from observability.prices import PriceTable, active_price_table, use_price_table

if TYPE_CHECKING:
    from langfuse import Langfuse
    from langfuse.types import MaskOtelSpansParams, MaskOtelSpansResult
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from config.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_TURN_NAME = "chat-turn"
#: Prefix of the Langfuse score (and guardrail observation) of each validator.
GUARD_SCORE_PREFIX = "guard."

_warned: set[str] = set()
_warned_lock = threading.Lock()


def _field(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _warn_once(key: str, message: str) -> None:
    """Log a tracing failure once per kind (with its traceback), then stay quiet."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning(
        "tracing: %s (the turn goes on; further such errors are not logged)", message, exc_info=True
    )


# ---------------------------------------------------------------------------------------------
# one turn
# ---------------------------------------------------------------------------------------------
class TurnTrace:
    """Handle on the trace of one chat turn (a no-op when tracing is off or failed to start).

    `trace_id`: 32 hex characters, None when off."""

    def __init__(self, tracing: Tracing | None = None, observation: Any = None) -> None:
        self._tracing = tracing
        self._observation = observation
        self.trace_id: str | None = getattr(observation, "trace_id", None)
        self.intent: str | None = None

    @property
    def enabled(self) -> bool:
        return self._observation is not None

    def set_intent(self, intent: str | None) -> None:
        """Name the trace (and its root span) after the classified intent."""
        if not intent or self._observation is None:
            return
        self.intent = intent
        try:
            self._observation.update(name=intent)
            # The trace takes its name from this attribute (else from the root span's name).
            self._observation._otel_span.set_attribute("langfuse.trace.name", intent)
        except Exception:
            _warn_once("set_intent", "could not rename the turn's trace")

    def set_output(self, output: Any) -> None:
        """The turn's reply (shown as the trace's output)."""
        self.update(output=output)

    def update(self, *, input: Any = None, output: Any = None, metadata: Any = None) -> None:
        """Set the root span's input, output or metadata."""
        if self._observation is None:
            return
        try:
            self._observation.update(input=input, output=output, metadata=metadata)
        except Exception:
            _warn_once("update", "could not update the turn's trace")

    def record_guard_verdicts(self, verdicts: Iterable[Any]) -> int:
        """See :meth:`Tracing.record_guard_verdicts`; scores go to this turn's trace."""
        if self._tracing is None or self._observation is None:
            return 0
        return self._tracing.record_guard_verdicts(verdicts, trace_id=self.trace_id)


_NOOP_TURN = TurnTrace()
_current_turn: ContextVar[TurnTrace | None] = ContextVar("flowstate_current_turn", default=None)


def current_turn() -> TurnTrace:
    """The turn being traced in this context (graph nodes run in the turn's context), or a
    no-op handle outside any turn."""
    return _current_turn.get() or _NOOP_TURN


# ---------------------------------------------------------------------------------------------
# the process-wide tracing
# ---------------------------------------------------------------------------------------------
class Tracing:
    """Tracing of this process; build it with :func:`setup_tracing`. `Tracing()` is the
    disabled one (every method a cheap no-op)."""

    def __init__(
        self,
        client: Langfuse | None = None,
        tracer_provider: TracerProvider | None = None,
        public_key: str | None = None,
    ) -> None:
        self._client = client
        self._tracer_provider = tracer_provider
        self._public_key = public_key
        self._crewai: Any = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._client is not None

    @property
    def client(self) -> Langfuse | None:
        """The Langfuse client (None when off)."""
        return self._client

    # ------------------------------------------------------------------ per turn
    @contextmanager
    def turn_span(
        self,
        thread_id: str,
        user_id: str | None = None,
        *,
        name: str = DEFAULT_TURN_NAME,
        input: Any = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Iterator[TurnTrace]:
        """Open the trace of one chat turn: a root span `name` (rename it with
        `TurnTrace.set_intent`) with `session.id` = `thread_id` and `user.id` = `user_id` on
        every span created inside. Everything traced inside the block (LangGraph through
        :meth:`callbacks`, CrewAI, guard verdicts) joins this trace. An exception from the block
        marks the span as an error and propagates; a tracing failure is logged and the block
        runs untraced."""
        turn = _NOOP_TURN
        stack = ExitStack()
        if self._client is not None:
            try:
                from langfuse import propagate_attributes

                observation = stack.enter_context(
                    self._client.start_as_current_observation(
                        as_type="span", name=name, input=input, metadata=dict(metadata) if metadata else None
                    )
                )
                user = None if user_id is None else str(user_id)
                stack.enter_context(propagate_attributes(session_id=str(thread_id), user_id=user))
                turn = TurnTrace(self, observation)
            except Exception:
                _warn_once("turn_span", "could not open the turn's trace")
                self._close(stack, None)
                stack = ExitStack()
                turn = _NOOP_TURN
        token = _current_turn.set(turn)
        try:
            yield turn
        except BaseException as exc:
            _current_turn.reset(token)
            self._close(stack, exc)
            raise
        _current_turn.reset(token)
        self._close(stack, None)

    @staticmethod
    def _close(stack: ExitStack, exc: BaseException | None) -> None:
        try:
            if exc is None:
                stack.close()
            else:
                stack.__exit__(type(exc), exc, exc.__traceback__)
        except Exception:
            _warn_once("close", "could not close the turn's trace")

    def callbacks(self) -> list[Any]:
        """LangChain callbacks for the graph's root call (`config={"callbacks": ...}`): a new
        Langfuse `CallbackHandler` per turn, or [] when off."""
        if self._client is None:
            return []
        try:
            return [_inline_handler_class()(public_key=self._public_key)]
        except Exception:
            _warn_once("callbacks", "could not create the LangChain callback handler")
            return []

    def record_guard_verdicts(self, verdicts: Iterable[Any], *, trace_id: str | None = None) -> int:
        """Record a turn's guard verdicts on its trace.

        - one `guardrail` observation per verdict (under the current span), named
          `guard.<validator>`, output `{"passed", "message", "target", "action"}`, level WARNING
          when it failed;
        - one Langfuse score per validator, named `guard.<validator>`, data type BOOLEAN: 1 when
          every verdict of that validator in the turn passed, 0 when any failed (a validator
          runs once per target, and again after a re-ask: a failure caught and then repaired
          still counts, it is what a reviewer wants to find); comment = the failed verdicts'
          messages, `target: message (action)`, joined with "; " (the message when all passed).

        A verdict is a `guards.types.Verdict`, its dict form, or any object or mapping with
        `validator`, `passed`, `message` (`target`, `action` optional; see
        `observability.metrics.verdict_fields`). `trace_id`: default the current turn's.
        Returns the number of scores sent."""
        if self._client is None:
            return 0
        client = self._client
        try:
            items = list(verdicts)
            trace_id = trace_id or current_turn().trace_id or client.get_current_trace_id()
            by_validator: dict[str, list[tuple[bool, str | None]]] = {}
            for verdict in items:
                validator, passed, message = verdict_fields(verdict)
                target, action = _field(verdict, "target"), _field(verdict, "action")
                label = f"{target}: {message}" if target and message else message
                if action and not passed:
                    label = f"{label} ({action})" if label else str(action)
                by_validator.setdefault(validator, []).append((passed, label))
                observation = client.start_observation(
                    as_type="guardrail",
                    name=f"{GUARD_SCORE_PREFIX}{validator}",
                    output={"passed": passed, "message": message, "target": target, "action": action},
                    level="DEFAULT" if passed else "WARNING",
                    status_message=None if passed else message,
                )
                observation.end()
            if trace_id is None:
                return 0
            for validator, results in by_validator.items():
                failed = [label for ok, label in results if not ok]
                notes = failed or [label for _, label in results]
                comment = "; ".join(n for n in notes if n) or None
                client.create_score(
                    name=f"{GUARD_SCORE_PREFIX}{validator}",
                    value=0.0 if failed else 1.0,
                    trace_id=trace_id,
                    data_type="BOOLEAN",
                    comment=comment,
                )
            return len(by_validator)
        except Exception:
            _warn_once("guard_scores", "could not record guard verdicts")
            return 0

    @contextmanager
    def observation(
        self,
        name: str,
        *,
        as_type: str = "span",
        input: Any = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Iterator[Any]:
        """A child observation of the current span for work no integration traces (a `tools/`
        query a crew runs before its kickoff, a guard): `as_type` is a Langfuse observation
        type ("span", "tool", "retriever", "guardrail", "chain", "agent", "evaluator", "event").
        Yields the Langfuse observation (call `.update(output=...)`), or None when off."""
        if self._client is None:
            yield None
            return
        stack = ExitStack()
        observation: Any = None
        client: Any = self._client  # `as_type` picks an overload mypy cannot follow
        try:
            observation = stack.enter_context(
                client.start_as_current_observation(
                    as_type=as_type,
                    name=name,
                    input=input,
                    metadata=dict(metadata) if metadata else None,
                )
            )
        except Exception:
            _warn_once("observation", "could not open an observation")
            self._close(stack, None)
            stack = ExitStack()
            observation = None
        try:
            yield observation
        except BaseException as exc:
            self._close(stack, exc)
            raise
        self._close(stack, None)

    # ------------------------------------------------------------------ CrewAI
    def instrument_crewai(self) -> bool:
        """Trace CrewAI (imports crewai: seconds). Idempotent; True when instrumented."""
        if self._client is None:
            return False
        with self._lock:
            if self._crewai is not None:
                return True
            try:
                from openinference.instrumentation.crewai import CrewAIInstrumentor

                instrumentor = CrewAIInstrumentor()  # a process-wide singleton
                if instrumentor.is_instrumented_by_opentelemetry:  # left by an earlier Tracing
                    instrumentor.uninstrument()
                instrumentor.instrument(
                    tracer_provider=self._tracer_provider,
                    use_event_listener=True,
                    create_llm_spans=True,
                    skip_dep_check=True,
                )
                self._crewai = instrumentor
                return True
            except Exception:
                _warn_once("crewai", "could not instrument CrewAI; crews run untraced")
                return False

    # ------------------------------------------------------------------ lifecycle
    def flush(self) -> None:
        """Send every finished span and score now (blocks; tests and shutdown)."""
        if self._client is None:
            return
        try:
            self._client.flush()
        except Exception:
            _warn_once("flush", "could not flush traces")

    def shutdown(self) -> None:
        """Flush, then undo everything `setup_tracing` did: CrewAI instrumentation, the Langfuse
        client (and its registration, so a later setup with the same key starts afresh), the
        tracer provider. The object is disabled afterwards."""
        global _active
        client, self._client = self._client, None
        with self._lock:
            instrumentor, self._crewai = self._crewai, None
        if instrumentor is not None:
            try:
                instrumentor.uninstrument()
            except Exception:
                _warn_once("uninstrument", "could not uninstrument CrewAI")
        if client is not None:
            try:
                client.flush()
                client.shutdown()
            except Exception:
                _warn_once("shutdown", "could not shut the Langfuse client down")
            try:
                # Langfuse keeps one resource manager per public key for the process; drop ours.
                from langfuse._client.resource_manager import LangfuseResourceManager

                with LangfuseResourceManager._lock:
                    LangfuseResourceManager._instances.pop(self._public_key or "", None)
            except Exception:
                _warn_once("forget", "could not unregister the Langfuse client")
        if self._tracer_provider is not None:
            try:
                self._tracer_provider.shutdown()
            except Exception:
                _warn_once("provider", "could not shut the tracer provider down")
            self._tracer_provider = None
        if _active is self:
            _active = None


F = TypeVar("F", bound=Callable[..., Any])


def _loggable_arguments(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by name, without database sessions/engines (noise, not data)."""
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
    except TypeError:
        return {"args": list(args), **kwargs}
    return {
        name: value
        for name, value in bound.arguments.items()
        if not any(t in type(value).__name__ for t in ("Session", "Engine", "Connection"))
    }


def traced(name: str | None = None, *, as_type: str = "tool") -> Callable[[F], F]:
    """Decorator: each call of the function becomes an observation (default type "tool") in the
    current trace, input = its arguments (sessions and engines left out), output = its result.
    For the `tools/` functions crews call before their kickoff, which no integration sees.
    When tracing is off it costs one attribute check per call. Works on sync and async
    functions; the function's exceptions propagate (and mark the observation as an error)."""

    def decorate(fn: F) -> F:
        label = name or f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                tracing = get_tracing()
                if not tracing.enabled:
                    return await fn(*args, **kwargs)
                with tracing.observation(
                    label, as_type=as_type, input=_loggable_arguments(fn, args, kwargs)
                ) as obs:
                    result = await fn(*args, **kwargs)
                    _set_output(obs, result)
                    return result

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            tracing = get_tracing()
            if not tracing.enabled:
                return fn(*args, **kwargs)
            with tracing.observation(
                label, as_type=as_type, input=_loggable_arguments(fn, args, kwargs)
            ) as obs:
                result = fn(*args, **kwargs)
                _set_output(obs, result)
                return result

        return run  # type: ignore[return-value]

    return decorate


def _set_output(observation: Any, result: Any) -> None:
    if observation is None:
        return
    try:
        observation.update(output=result)
    except Exception:
        _warn_once("output", "could not record an observation's output")


@lru_cache(maxsize=1)
def _inline_handler_class() -> type[Any]:
    """Langfuse's LangChain `CallbackHandler`, run inline in async code.

    The handler makes each run's span the current OpenTelemetry span (so what a node does
    outside LangChain, a CrewAI crew, nests under that node). LangChain runs a synchronous
    handler of an async run in a thread-pool copy of the context unless `run_inline` is set, so
    in async graphs the node's span never became current and crews hung off the turn's root
    (measured). Inline, the span is attached in the node's own task; the handler does no I/O
    (spans are exported in the background), so running it on the event loop costs microseconds.
    """
    from langfuse.langchain import CallbackHandler

    class InlineCallbackHandler(CallbackHandler):  # type: ignore[misc]
        run_inline = True

    return InlineCallbackHandler


_active: Tracing | None = None
_DISABLED = Tracing()


def get_tracing() -> Tracing:
    """The tracing set up by :func:`setup_tracing`, or the disabled one."""
    return _active or _DISABLED


def ensure_crewai_instrumented() -> None:
    """Instrument CrewAI if tracing is on. For the CrewAI LLM factory (`llm.crewai.crew_llm`), which
    imports crewai lazily: calling it there traces every crew without importing crewai at
    start-up. Cheap when off or already done."""
    tracing = _active
    if tracing is not None and tracing.enabled and tracing._crewai is None:
        tracing.instrument_crewai()


def setup_tracing(
    settings: Settings,
    *,
    prices: PriceTable | None = None,
    span_exporter: SpanExporter | None = None,
    flush_interval_s: float | None = None,
) -> Tracing:
    """Set up tracing for this process from `settings` (call once at start-up; a second call
    replaces the first).

    - Off (the disabled :class:`Tracing`) unless `settings.langfuse_enabled` (both keys set):
      nothing imported, no thread, no network.
    - On: a Langfuse client on a tracer provider of its own, exporting to
      `settings.langfuse_url` (Langfuse Cloud if None), environment `LANGFUSE_TRACING_ENVIRONMENT`
      or `settings.environment`, sampling `LANGFUSE_SAMPLE_RATE` of the turns (default all);
      CrewAI instrumented now if crewai is already imported, else by
      :func:`ensure_crewai_instrumented` when the first crew LLM is built. Other `LANGFUSE_*`
      variables (timeout, flush interval, debug...) are read by the Langfuse SDK itself.
    - `prices`: the price table for generation costs (default `config/prices.yaml`).
    - `span_exporter`: export somewhere else than Langfuse's OTLP endpoint (tests).
    - `flush_interval_s`: seconds between span exports (Langfuse's default 5).

    Never raises: a failure is logged and tracing stays off.
    """
    global _active
    if _active is not None:
        _active.shutdown()
    if prices is not None:
        use_price_table(prices)
    if not settings.langfuse_enabled or settings.langfuse_secret_key is None:
        _active = None
        return _DISABLED
    try:
        from langfuse import Langfuse
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

        environment = os.environ.get("LANGFUSE_TRACING_ENVIRONMENT") or settings.environment
        # Langfuse applies LANGFUSE_SAMPLE_RATE only to a provider it builds itself; ours honours
        # it the same way (a trace-id ratio, which Langfuse's score sampling also understands).
        rate = float(os.environ.get("LANGFUSE_SAMPLE_RATE", "1") or 1)
        provider = TracerProvider(
            resource=Resource.create({"service.name": "flowstate", "langfuse.environment": environment}),
            sampler=TraceIdRatioBased(rate) if 0 <= rate < 1 else None,
        )
        client = Langfuse(
            public_key=settings.langfuse_public_key,
            secret_key=settings.langfuse_secret_key.get_secret_value(),
            base_url=settings.langfuse_url,
            environment=environment,
            tracer_provider=provider,
            # personal data masked unless FLOWSTATE_TRACE_RAW (observability.masking)
            mask=None if settings.trace_raw else mask_data,
            mask_otel_spans=enrich_generation_spans if settings.trace_raw else enrich_and_mask_spans,
            span_exporter=span_exporter,
            flush_interval=flush_interval_s,
        )
        tracing = Tracing(client=client, tracer_provider=provider, public_key=settings.langfuse_public_key)
    except Exception:
        _warn_once("setup", "could not set up Langfuse tracing; it stays off")
        _active = None
        return _DISABLED
    _active = tracing
    if "crewai" in sys.modules:
        tracing.instrument_crewai()
    return tracing


# ---------------------------------------------------------------------------------------------
# export-time enrichment of generations
# ---------------------------------------------------------------------------------------------
_OI_KIND = "openinference.span.kind"
_LF_TYPE = "langfuse.observation.type"
_LF_MODEL = "langfuse.observation.model.name"
_LF_USAGE = "langfuse.observation.usage_details"
_LF_COST = "langfuse.observation.cost_details"
_LF_INPUT = "langfuse.observation.input"
_LF_OUTPUT = "langfuse.observation.output"


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def usage_tokens(usage: Mapping[str, Any]) -> tuple[int, int]:
    """(prompt, completion) tokens from Langfuse `usage_details` in any of the shapes the
    integrations write: `input`/`output`, `prompt_tokens`/`completion_tokens`,
    `input_tokens`/`output_tokens`."""
    prompt = usage.get("input", usage.get("prompt_tokens", usage.get("input_tokens")))
    completion = usage.get("output", usage.get("completion_tokens", usage.get("output_tokens")))
    return _int(prompt), _int(completion)


def generation_patch(attributes: Mapping[str, Any], prices: PriceTable) -> dict[str, Any]:
    """The attributes to add to one exported span so Langfuse shows it as a generation with a
    cost: for an OpenInference LLM span (CrewAI's calls), Langfuse's generation attributes
    from OpenInference's (`llm.model_name`, `llm.token_count.*`, `input.value`,
    `output.value`); for every generation with a priced model and token usage and no
    `cost_details` yet, `cost_details` in USD. Empty when nothing applies."""
    patch: dict[str, Any] = {}
    kind = attributes.get(_LF_TYPE)
    model = attributes.get(_LF_MODEL)
    usage: dict[str, Any] | None = None
    if kind is None and attributes.get(_OI_KIND) == "LLM":
        kind = "generation"
        patch[_LF_TYPE] = "generation"
        model = attributes.get("llm.model_name")
        if model:
            patch[_LF_MODEL] = model
        prompt = attributes.get("llm.token_count.prompt")
        completion = attributes.get("llm.token_count.completion")
        if prompt is not None or completion is not None:
            tokens_in, tokens_out = _int(prompt), _int(completion)
            usage = {"input": tokens_in, "output": tokens_out, "total": tokens_in + tokens_out}
            patch[_LF_USAGE] = json.dumps(usage)
        if attributes.get("input.value") is not None:
            patch[_LF_INPUT] = str(attributes["input.value"])
        if attributes.get("output.value") is not None:
            patch[_LF_OUTPUT] = str(attributes["output.value"])
    if kind != "generation" or _LF_COST in attributes:
        return patch
    if usage is None:
        raw = attributes.get(_LF_USAGE)
        try:
            usage = json.loads(raw) if isinstance(raw, str) else None
        except json.JSONDecodeError:
            usage = None
    if not isinstance(usage, dict):
        return patch
    prompt_tokens, completion_tokens = usage_tokens(usage)
    cost = prices.cost(str(model) if model else None, prompt_tokens, completion_tokens)
    if cost is not None:
        patch[_LF_COST] = json.dumps(cost.as_details())
    return patch


def enrich_generation_spans(*, params: MaskOtelSpansParams) -> MaskOtelSpansResult | None:
    """Langfuse `mask_otel_spans` hook: applies :func:`generation_patch` to each span of an
    export batch. Never raises (Langfuse would drop the whole batch): on an error it leaves the
    batch unchanged and logs once."""
    try:
        from langfuse.types import MaskOtelSpansResult, OtelSpanPatch

        prices = active_price_table()
        patches = {}
        for identifier, span in params.spans.items():
            patch = generation_patch(span.attributes, prices)
            if patch:
                patches[identifier] = OtelSpanPatch(set_attributes=patch)
        return MaskOtelSpansResult(span_patches=patches) if patches else None
    except Exception:
        _warn_once("enrich", "could not add generation details at export")
        return None


def enrich_and_mask_spans(*, params: MaskOtelSpansParams) -> MaskOtelSpansResult | None:
    """The export hook when traces are masked: :func:`generation_patch`, then
    `observability.masking.mask_attributes` over every span's attributes (those the patch sets
    included), keeping the names the span's own trace may show (`masking.allow_names`). Fails
    closed: if masking raises, so does the hook, and Langfuse drops the batch rather than export
    it unmasked; a failure of the enrichment alone only skips it."""
    from langfuse.types import MaskOtelSpansResult, OtelSpanPatch

    try:
        prices = active_price_table()
    except Exception:
        _warn_once("enrich", "could not add generation details at export")
        prices = None
    patches = {}
    for identifier, span in params.spans.items():
        patch: dict[str, Any] = {}
        if prices is not None:
            try:
                patch = generation_patch(span.attributes, prices)
            except Exception:
                _warn_once("enrich", "could not add generation details at export")
        patch.update(mask_attributes({**span.attributes, **patch}, trace_id=span.trace_id))
        if patch:
            patches[identifier] = OtelSpanPatch(set_attributes=patch)
    return MaskOtelSpansResult(span_patches=patches) if patches else None
