"""`flowstate eval questions FILE [--json] [--url URL] [--limit N] [--fail-under ACC]`.

Sends each line of FILE (`{"message", "answer", "kind", "tolerance"?, "id"?, "intent"?}`) through
`POST {url}/api/chat` in a fresh thread and scores the reply the way shared/tools/ask.py does:

- `number` / `percent`: some number in the reply is within `tolerance` of `answer` (thousands
  separators allowed: "1,234" is 1234; a percent is in points: 63.2 means 63.2%);
- `text`: the reply names one of the strings in `answer` (case-insensitive);
- `set`: the reply names every string in `answer`.

A request that fails (connection, timeout, non-200) counts as wrong and as an error. Prints one
line per question, then accuracy, median and p95 latency (seconds, p95 as ask.py computes it:
the value at index int(0.95 x (n - 1)) of the sorted latencies), intent accuracy where lines name
an intent, and LLM calls and prompt/completion tokens per turn from the replies' `usage`.
`--json` prints the summary (and the per-question rows) as one JSON object instead.
Exit codes: 0 done (and accuracy >= --fail-under when given), 1 below --fail-under, 2 bad file.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from guards.numbers import numbers_in

T = TypeVar("T")

#: Every number in a text ("1,234.5" -> 1234.5), read as the guards read them.
numbers = numbers_in

#: How long one turn may take before it counts as failed (seconds): the local model's slowest
#: turns take tens of seconds on 2 cores.
DEFAULT_TIMEOUT_S = 300.0


class QuestionFileError(ValueError):
    """A line of the questions file is not usable (the message names the line)."""


def is_right(item: dict[str, Any], reply: str) -> bool:
    """Whether `reply` answers `item` (rules in the module docstring). Raises ValueError for an
    unknown kind."""
    kind, answer = item["kind"], item["answer"]
    low = reply.lower()
    if kind in ("number", "percent"):
        tol = float(item.get("tolerance") or 0) + 1e-9
        return any(abs(n - float(answer)) <= tol for n in numbers(reply))
    if kind == "text":
        return any(str(a).lower() in low for a in answer)
    if kind == "set":
        return all(str(a).lower() in low for a in answer)
    raise ValueError(f"unknown kind {kind!r}")


def load_questions(path: Path) -> list[dict[str, Any]]:
    """The questions of a JSONL file; raises QuestionFileError naming the first bad line."""
    items: list[dict[str, Any]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionFileError(f"{path}:{n}: not JSON ({exc.msg})") from exc
        if not isinstance(item, dict):
            raise QuestionFileError(f"{path}:{n}: expected an object")
        missing = [k for k in ("message", "answer", "kind") if k not in item]
        if missing:
            raise QuestionFileError(f"{path}:{n}: missing {', '.join(missing)}")
        if item["kind"] not in ("number", "percent", "text", "set"):
            raise QuestionFileError(f"{path}:{n}: unknown kind {item['kind']!r}")
        item.setdefault("id", f"line{n}")
        items.append(item)
    return items


Post = Callable[[str, dict[str, Any]], dict[str, Any]]


def http_post(timeout_s: float, token: str | None = None) -> Post:
    """A JSON POST with httpx, sending `Authorization: Bearer <token>` when a token is given (a
    user's API token, or FLOWSTATE_API_TOKEN); raises on a non-200 answer."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    client = httpx.Client(timeout=timeout_s, headers=headers)

    def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
        r = client.post(url, json=body)
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    return post


def run_questions(
    base_url: str,
    items: list[dict[str, Any]],
    post: Post,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Ask every question in a fresh thread; returns the summary with the per-question `rows`."""
    rows: list[dict[str, Any]] = []
    for item in items:
        start = time.monotonic()
        error = None
        try:
            r = post(base_url.rstrip("/") + "/api/chat", {"message": item["message"]})
            reply, intent, usage = str(r.get("reply", "")), r.get("intent"), r.get("usage") or {}
            if r.get("error"):
                error = str(r["error"].get("kind"))
        except Exception as exc:  # a failed turn counts as wrong
            reply, intent, usage, error = f"<error {exc}>", None, {}, type(exc).__name__
        row = {
            "id": item["id"],
            "right": is_right(item, reply),
            "latency_s": round(time.monotonic() - start, 3),
            "intent": intent,
            "intent_right": (intent == item["intent"]) if "intent" in item else None,
            "error": error,
            "llm_calls": int(usage.get("llm_calls") or 0),
            "prompt_tokens": int(usage.get("prompt_tokens") or 0),
            "completion_tokens": int(usage.get("completion_tokens") or 0),
            "message": item["message"],
            "reply": reply,
        }
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return summarize(rows)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy, latency (median, p95 as ask.py), intent accuracy, LLM usage per turn."""
    n = len(rows)
    lat = sorted(r["latency_s"] for r in rows)
    intents = [r["intent_right"] for r in rows if r["intent_right"] is not None]

    def per_turn(key: str) -> float | None:
        return round(statistics.fmean(r[key] for r in rows), 1) if rows else None

    return {
        "n": n,
        "right": sum(r["right"] for r in rows),
        "accuracy": round(sum(r["right"] for r in rows) / n, 3) if n else 0.0,
        "errors": sum(1 for r in rows if r["error"]),
        "median_s": round(statistics.median(lat), 2) if lat else None,
        "p95_s": round(lat[int(0.95 * (n - 1))], 2) if lat else None,
        "intent_accuracy": round(sum(intents) / len(intents), 3) if intents else None,
        "llm_calls_per_turn": per_turn("llm_calls"),
        "prompt_tokens_per_turn": per_turn("prompt_tokens"),
        "completion_tokens_per_turn": per_turn("completion_tokens"),
        "rows": rows,
    }


#: The options every scorer over REST takes (`--json`, `--url`, `--timeout`).
JsonOption = Annotated[bool, typer.Option("--json", help="Print the summary as JSON")]
UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="Flowstate base URL [default: http://FLOWSTATE_HOST:FLOWSTATE_PORT]"),
]
TimeoutOption = Annotated[float, typer.Option("--timeout", min=1, help="Seconds per turn")]


def load_or_exit(file: Path, load: Callable[[Path], list[T]], error: type[Exception]) -> list[T]:
    """`load(file)`, or exit 2 with the message when the file is missing or `error` is raised."""
    if not file.is_file():
        typer.echo(f"error: {file}: no such file", err=True)
        raise typer.Exit(2)
    try:
        return load(file)
    except error as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def target(url: str | None) -> tuple[str, str | None]:
    """The base URL (`url`, else FLOWSTATE_HOST:FLOWSTATE_PORT) and the bearer token
    (FLOWSTATE_API_TOKEN, None when unset) the scorers send requests with."""
    from config.settings import get_settings

    settings = get_settings()
    token = settings.api_token.get_secret_value() if settings.api_token is not None else None
    return url or f"http://{settings.host}:{settings.port}", token


def echo_usage(summary: dict[str, Any]) -> None:
    """The LLM calls and tokens per turn line of a summary."""
    calls, prompt = summary["llm_calls_per_turn"], summary["prompt_tokens_per_turn"]
    completion = summary["completion_tokens_per_turn"]
    typer.echo(f"per turn: {calls} LLM calls, {prompt} prompt + {completion} completion tokens")


def questions_command(
    file: Annotated[Path, typer.Argument(help="JSONL of {message, answer, kind, tolerance?}")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N questions")] = None,
    timeout_s: TimeoutOption = DEFAULT_TIMEOUT_S,
    fail_under: Annotated[
        float | None, typer.Option("--fail-under", help="Exit 1 if accuracy is below this")
    ] = None,
) -> None:
    """Accuracy, latency and LLM usage of chat answers on a question set (through POST /api/chat)."""
    items = load_or_exit(file, load_questions, QuestionFileError)[:limit]
    base, token = target(url)

    def show(row: dict[str, Any]) -> None:
        if not as_json:
            mark = "ok " if row["right"] else "BAD"
            typer.echo(
                f"{mark} {row['id']} {row['latency_s']:5.1f}s intent={row['intent']} "
                f"calls={row['llm_calls']} | {row['message'][:60]} | {row['reply'][:160]!r}"
            )

    summary = run_questions(base, items, http_post(timeout_s, token), show)
    if as_json:
        typer.echo(json.dumps({"file": file.name, "url": base, **summary}))
    else:
        typer.echo(
            f"{file.name}: {summary['right']}/{summary['n']} right, accuracy {summary['accuracy']:.1%}, "
            f"errors {summary['errors']}, median {summary['median_s']} s, p95 {summary['p95_s']} s"
        )
        if summary["intent_accuracy"] is not None:
            typer.echo(f"intent accuracy {summary['intent_accuracy']:.1%}")
        echo_usage(summary)
    if fail_under is not None and summary["accuracy"] < fail_under:
        raise typer.Exit(1)
