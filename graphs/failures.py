"""Honest failure: turn any exception raised while answering into a :class:`TurnError` that says
what happened in words a rep understands, and decide whether a retry is worth it.

The exception chain (`__cause__` / `__context__`) is searched, because CrewAI and our own crew
runner wrap the client's errors (`CrewOutputError` from `openai.APITimeoutError`, ...). Classes
are matched by name where importing them would be costly (openai, sqlalchemy are already loaded
whenever they can have raised).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from pydantic import ValidationError

from contracts import TurnError

#: Sentence appended to every failure reply: the message is kept and the turn can be re-sent.
RETRY_HINT = "Your message is saved in this conversation; send it again to retry."


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def classify_failure(exc: BaseException, node: str, *, llm_timeout_s: float | None = None) -> TurnError:
    """Map `exc` (raised in graph node `node`) to a TurnError.

    Kinds, in priority order along the exception chain: "state_store" (any Redis error: the
    checkpoint could not be read or written), "llm_timeout" (openai/httpx timeout,
    asyncio timeout), "llm_unavailable" (connection refused/reset), "llm_http_error" (the server
    answered 4xx/5xx), "database" (SQLAlchemy operational/interface errors), "llm_bad_output"
    (the answer did not validate: pydantic ValidationError, JSON errors, `LLMOutputError`,
    `CrewOutputError` without a transport cause), else "internal" (a bug: not retryable).
    """
    chain = list(_chain(exc))
    names = [_names(e) for e in chain]
    wait = f" within {llm_timeout_s:g} s" if llm_timeout_s else ""
    if any(type(e).__module__.startswith("redis") for e in chain):
        return TurnError(
            node=node,
            kind="state_store",
            message="The conversation store (Redis) is not reachable right now; nothing was saved.",
        )

    def has(*wanted: str) -> BaseException | None:
        for e, ns in zip(chain, names, strict=True):
            if ns.intersection(wanted):
                return e
        return None

    if has("APITimeoutError", "TimeoutException", "TimeoutError", "ReadTimeout") or any(
        isinstance(e, asyncio.TimeoutError | TimeoutError) for e in chain
    ):
        return TurnError(
            node=node,
            kind="llm_timeout",
            message=f"The language model did not answer{wait} (it may be busy or overloaded).",
        )
    if has("APIConnectionError", "ConnectError", "ConnectionError", "RemoteProtocolError"):
        if has("OperationalError", "InterfaceError"):
            return TurnError(
                node=node, kind="database", message="The CRM database is not reachable right now."
            )
        return TurnError(
            node=node, kind="llm_unavailable", message="The language model server is not reachable right now."
        )
    status_exc = has("APIStatusError", "HTTPStatusError")
    if status_exc is not None:
        code = getattr(status_exc, "status_code", None) or getattr(
            getattr(status_exc, "response", None), "status_code", "?"
        )
        return TurnError(
            node=node,
            kind="llm_http_error",
            message=f"The language model server answered with an error (HTTP {code}).",
        )
    if has("OperationalError", "InterfaceError", "DisconnectionError"):
        return TurnError(node=node, kind="database", message="The CRM database is not reachable right now.")
    if has("LLMOutputError", "CrewOutputError", "JSONDecodeError") or any(
        isinstance(e, ValidationError) for e in chain
    ):
        return TurnError(
            node=node,
            kind="llm_bad_output",
            message="The language model gave an answer I could not use (it did not match the expected form).",
        )
    return TurnError(
        node=node,
        kind="internal",
        message=f"Something went wrong while working on your request ({type(exc).__name__} in {node}).",
        retryable=False,
    )


def transient(exc: BaseException) -> bool:
    """True for failures a quick second attempt may fix: a dropped or refused connection, or an
    HTTP 5xx/429. Timeouts are *not* transient here: another attempt would double a wait the
    client already sat through (the OpenAI client itself retries once)."""
    err = classify_failure(exc, "?")
    if err.kind == "llm_unavailable":
        return True
    if err.kind == "llm_http_error":
        for e in _chain(exc):
            code = getattr(e, "status_code", None)
            if isinstance(code, int):
                return code >= 500 or code == 429
    return False


def deadline_error(deadline_s: float, node: str = "turn") -> TurnError:
    """The TurnError of a turn cancelled at the overall turn deadline (`deadline_s` seconds,
    settings.turn_deadline_s): kind "turn_deadline", retryable (the message stays in the
    thread; a quieter moment may answer it)."""
    return TurnError(
        node=node,
        kind="turn_deadline",
        message=f"This took longer than the {deadline_s:g} s a turn may take, so it was stopped.",
    )


def busy_error(active: int, wait_s: float, node: str = "turn") -> TurnError:
    """The TurnError of a turn refused because `active` turns already ran in this process for
    the `wait_s` seconds it waited for a place (settings.max_active_turns, admission_wait_s):
    kind "busy", retryable (the message stays in the thread)."""
    return TurnError(
        node=node,
        kind="busy",
        message=f"Flowstate is busy: {active} conversations were being answered and no place freed "
        f"up within {wait_s:g} s.",
    )


def failure_reply(err: TurnError) -> str:
    """The text shown to the rep for a failed turn."""
    return f"{err.message} {RETRY_HINT}" if err.retryable else err.message
