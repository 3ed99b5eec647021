"""`flowstate eval multiturn FILE [--json] [--url URL] [--limit N] [--timeout S] [--fail-under ACC]`.

Plays each conversation of FILE (`{"id"?, "turns": [{"message", "answer", "kind",
"tolerance"?}, ...]}`, e.g. `eval/multiturn_heldout.jsonl`) through `POST {url}/api/chat`: the
first turn starts a thread (no `thread_id`), every later turn is sent, in order, with the
`thread_id` the first reply returned. Each turn is scored like a question
(`app.commands.eval_questions.is_right`).

A request that fails (connection, timeout, non-200) counts that turn as wrong and as an error;
later turns still run in the same thread when its id is known (the first turn failed: they each
start a thread of their own until one answers). Prints one line per turn (ok/BAD, `id#turn`,
latency, intent, message, reply), then turn accuracy (turns right / turns: the headline, what
`--fail-under` compares), conversations fully right / conversations, errors, median and p95
latency per turn (seconds, p95 as `eval questions`) and LLM usage per turn. `--json` prints the
summary with the per-turn rows as one JSON object instead.
Exit codes: 0 done (and accuracy >= --fail-under when given), 1 below --fail-under, 2 bad file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from app.commands.eval_questions import (
    DEFAULT_TIMEOUT_S,
    JsonOption,
    Post,
    TimeoutOption,
    UrlOption,
    echo_usage,
    http_post,
    is_right,
    load_or_exit,
    summarize,
    target,
)

#: Scoring kinds a turn may use (those of `eval_questions.is_right`).
KINDS = ("number", "percent", "text", "set")


class ConversationFileError(ValueError):
    """A line of the conversations file is not usable (the message names the line and turn)."""


def load_conversations(path: Path) -> list[dict[str, Any]]:
    """The conversations of a JSONL file, each `{"id", "turns": [turn, ...]}` with at least one
    turn (`id` defaults to `line<N>`). Raises ConversationFileError naming the first bad line
    (and turn, counted from 1)."""
    items: list[dict[str, Any]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConversationFileError(f"{path}:{n}: not JSON ({exc.msg})") from exc
        if not isinstance(item, dict):
            raise ConversationFileError(f"{path}:{n}: expected an object")
        turns = item.get("turns")
        if not isinstance(turns, list) or not turns:
            raise ConversationFileError(f"{path}:{n}: turns must be a non-empty list")
        for t, turn in enumerate(turns, start=1):
            if not isinstance(turn, dict):
                raise ConversationFileError(f"{path}:{n}: turn {t}: expected an object")
            missing = [k for k in ("message", "answer", "kind") if k not in turn]
            if missing:
                raise ConversationFileError(f"{path}:{n}: turn {t}: missing {', '.join(missing)}")
            if turn["kind"] not in KINDS:
                raise ConversationFileError(f"{path}:{n}: turn {t}: unknown kind {turn['kind']!r}")
            if not isinstance(turn["message"], str) or not turn["message"].strip():
                raise ConversationFileError(f"{path}:{n}: turn {t}: message must be a non-blank string")
        item.setdefault("id", f"line{n}")
        items.append(item)
    return items


def run_conversations(
    base_url: str,
    items: list[dict[str, Any]],
    post: Post,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Play every conversation in a thread of its own and score each turn; returns
    `eval_questions.summarize` of the turns (`n`, `right`, `accuracy`, `errors`, `median_s`,
    `p95_s`, usage per turn, `rows`) plus `conversations`, `conversations_right` and
    `conversation_accuracy` (share of conversations with every turn right)."""
    url = base_url.rstrip("/") + "/api/chat"
    rows: list[dict[str, Any]] = []
    fully_right = 0
    for item in items:
        thread_id: str | None = None
        all_right = True
        for t, turn in enumerate(item["turns"], start=1):
            body: dict[str, Any] = {"message": turn["message"]}
            if thread_id is not None:
                body["thread_id"] = thread_id
            start = time.monotonic()
            error = None
            try:
                r = post(url, body)
                reply, intent, usage = str(r.get("reply", "")), r.get("intent"), r.get("usage") or {}
                if thread_id is None and r.get("thread_id"):
                    thread_id = str(r["thread_id"])
                if r.get("error"):
                    error = str(r["error"].get("kind"))
            except Exception as exc:  # a failed turn counts as wrong; the conversation goes on
                reply, intent, usage, error = f"<error {exc}>", None, {}, type(exc).__name__
            right = is_right(turn, reply)
            all_right = all_right and right
            row = {
                "id": f"{item['id']}#{t}",
                "conversation": item["id"],
                "turn": t,
                "thread_id": thread_id,
                "right": right,
                "latency_s": round(time.monotonic() - start, 3),
                "intent": intent,
                "intent_right": None,
                "error": error,
                "llm_calls": int(usage.get("llm_calls") or 0),
                "prompt_tokens": int(usage.get("prompt_tokens") or 0),
                "completion_tokens": int(usage.get("completion_tokens") or 0),
                "message": turn["message"],
                "reply": reply,
            }
            rows.append(row)
            if on_row is not None:
                on_row(row)
        fully_right += all_right
    summary = summarize(rows)
    summary["conversations"] = len(items)
    summary["conversations_right"] = fully_right
    summary["conversation_accuracy"] = round(fully_right / len(items), 3) if items else 0.0
    return summary


def multiturn_command(
    file: Annotated[Path, typer.Argument(help='JSONL of {"id", "turns": [{message, answer, kind}, ...]}')],
    as_json: JsonOption = False,
    url: UrlOption = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the first N conversations")
    ] = None,
    timeout_s: TimeoutOption = DEFAULT_TIMEOUT_S,
    fail_under: Annotated[
        float | None, typer.Option("--fail-under", help="Exit 1 if turn accuracy is below this")
    ] = None,
) -> None:
    """Turn and conversation accuracy of multi-turn chats (each conversation in one thread)."""
    items = load_or_exit(file, load_conversations, ConversationFileError)[:limit]
    base, token = target(url)

    def show(row: dict[str, Any]) -> None:
        if not as_json:
            mark = "ok " if row["right"] else "BAD"
            typer.echo(
                f"{mark} {row['id']} {row['latency_s']:5.1f}s intent={row['intent']} "
                f"| {row['message'][:60]} | {row['reply'][:160]!r}"
            )

    summary = run_conversations(base, items, http_post(timeout_s, token), show)
    if as_json:
        typer.echo(json.dumps({"file": file.name, "url": base, **summary}))
    else:
        typer.echo(
            f"{file.name}: {summary['right']}/{summary['n']} turns right, accuracy "
            f"{summary['accuracy']:.1%}; {summary['conversations_right']}/{summary['conversations']} "
            f"conversations fully right ({summary['conversation_accuracy']:.1%}); errors "
            f"{summary['errors']}, median {summary['median_s']} s, p95 {summary['p95_s']} s"
        )
        echo_usage(summary)
    if fail_under is not None and summary["accuracy"] < fail_under:
        raise typer.Exit(1)
