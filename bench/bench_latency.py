"""Benchmark: turn latency, time to the first streamed token, and LLM calls and tokens per turn,
of questions sent to a running Flowstate.

    .venv/bin/python bench/bench_latency.py [FILE.jsonl] [--url http://127.0.0.1:8000]
        [--limit N] [--repeats R] [--rest] [--json] [--timeout S]

Each line of FILE (`{"message", "id"?, "intent"?, "answer"?, "kind"?, "tolerance"?}`; default:
the CRM questions dev set, `crm_questions_dev.jsonl` in the `shared/eval` folder next to the
checkout) is sent R times (default 3), each time in a fresh thread, one turn at a time:

- over the WebSocket `/ws/chat/{thread_id}` (default): the clock starts when the message frame is
  sent; "first token" is the first `token` frame, "turn" the `final` (or `error`) frame;
- over REST `POST /api/chat` (`--rest`): only the turn time (no streaming).

The `final` frame (or the REST body) is the turn's `ChatResult`: its `usage` gives the LLM calls
and prompt/completion tokens of the turn (counted at the HTTP boundary by the app's LLM meter),
`intent` the crew that answered. A line with `answer` is scored as the evaluation does
(`app.commands.eval_questions.is_right`).

Printed: one line per turn, then per intent (the intent that answered) the turns, median turn
and first-token seconds, and the mean LLM calls and tokens per turn; then the summary: median and
p95 (nearest rank) of every turn, and the median over questions of each question's fastest
repeat (`min_*`: the figure least disturbed by other load on the machine). `--json` prints one
JSON object instead: the summary and every turn. No Flowstate at `--url` (default `FLOWSTATE_URL`, else
http://127.0.0.1:8000): a message saying so and exit 0, so `make bench` runs without a server.
`FLOWSTATE_API_TOKEN` is sent when set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.commands.eval_questions import is_right

#: The CRM questions dev set, in the `shared/eval` folder next to the checkout (as the tests find it).
DEFAULT_FILE = Path(__file__).resolve().parents[2] / "shared" / "eval" / "crm_questions_dev.jsonl"


@dataclass
class Turn:
    """One measured turn: seconds to the final frame (`turn_s`) and to the first token frame
    (`first_token_s`, None when none came or over REST), the answering `intent`, the turn's LLM
    `calls` and tokens, whether the reply is right (None: the line has no answer), `error`."""

    id: str
    repeat: int
    turn_s: float
    first_token_s: float | None
    intent: str | None
    calls: int
    prompt_tokens: int
    completion_tokens: int
    right: bool | None
    error: str | None = None
    reply: str = field(default="", repr=False)


def _headers() -> dict[str, str]:
    h = {"Content-Type": "application/json"}
    if os.environ.get("FLOWSTATE_API_TOKEN"):
        h["Authorization"] = "Bearer " + os.environ["FLOWSTATE_API_TOKEN"]
    return h


def _turn(item: dict[str, Any], repeat: int, t0: float, first: float | None, result: dict[str, Any]) -> Turn:
    usage = result.get("usage") or {}
    reply = str(result.get("reply") or result.get("message") or "")
    error = None
    if result.get("type") == "error" or result.get("error"):
        error = str(result.get("message") or result.get("error"))
    return Turn(
        id=str(item.get("id", "")),
        repeat=repeat,
        turn_s=time.perf_counter() - t0,
        first_token_s=None if first is None else first - t0,
        intent=result.get("intent"),
        calls=int(usage.get("llm_calls", 0)),
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        right=None if "answer" not in item else error is None and is_right(item, reply),
        error=error,
        reply=reply,
    )


async def ws_turn(url: str, item: dict[str, Any], repeat: int, timeout_s: float) -> Turn:
    """One turn over the WebSocket, in a fresh thread."""
    import websockets

    thread = f"bench-{uuid.uuid4().hex[:12]}"
    ws_url = url.replace("http://", "ws://").replace("https://", "wss://") + f"/ws/chat/{thread}"
    if os.environ.get("FLOWSTATE_API_TOKEN"):
        ws_url += "?token=" + os.environ["FLOWSTATE_API_TOKEN"]
    async with websockets.connect(ws_url, max_size=None, open_timeout=30) as ws:
        t0 = time.perf_counter()
        await ws.send(json.dumps({"type": "message", "content": item["message"]}))
        first: float | None = None
        async with asyncio.timeout(timeout_s):
            while True:
                frame = json.loads(await ws.recv())
                kind = frame.get("type")
                if kind == "token" and first is None:
                    first = time.perf_counter()
                elif kind in ("final", "error", "interrupt"):
                    if kind == "interrupt":  # an action waits: the turn's reply is out
                        continue
                    return _turn(item, repeat, t0, first, frame)


def rest_turn(url: str, item: dict[str, Any], repeat: int, timeout_s: float) -> Turn:
    """One turn over `POST /api/chat`, in a fresh thread."""
    body = json.dumps({"message": item["message"]}).encode()
    req = urllib.request.Request(url + "/api/chat", body, _headers())
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=timeout_s) as r:
        result = json.loads(r.read())
    return _turn(item, repeat, t0, None, result)


def _p95(values: list[float]) -> float | None:
    """The 95th percentile by nearest rank (of 20 turns, the 19th fastest)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _r(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(v, nd)


def summarize(turns: list[Turn]) -> dict[str, Any]:
    """Median/p95 of turn and first-token seconds over all turns, the median over questions of
    each one's fastest repeat, accuracy (first repeat of each scored line), and per answering
    intent the turns, medians and mean LLM calls and tokens per turn."""
    ok = [t for t in turns if t.error is None]
    by_q: dict[str, list[Turn]] = {}
    for t in ok:
        by_q.setdefault(t.id, []).append(t)
    firsts = [t.first_token_s for t in ok if t.first_token_s is not None]
    min_firsts = [
        min(x.first_token_s for x in ts if x.first_token_s is not None)
        for ts in by_q.values()
        if any(x.first_token_s is not None for x in ts)
    ]
    scored = [t for t in turns if t.repeat == 0 and t.right is not None]
    per_intent: dict[str, dict[str, Any]] = {}
    for name in sorted({str(t.intent) for t in ok}):
        ts = [t for t in ok if str(t.intent) == name]
        fs = [t.first_token_s for t in ts if t.first_token_s is not None]
        per_intent[name] = {
            "turns": len(ts),
            "median_turn_s": _r(_median([t.turn_s for t in ts])),
            "median_first_token_s": _r(_median(fs)),
            "llm_calls_per_turn": _r(statistics.mean(t.calls for t in ts)),
            "prompt_tokens_per_turn": _r(statistics.mean(t.prompt_tokens for t in ts), 1),
            "completion_tokens_per_turn": _r(statistics.mean(t.completion_tokens for t in ts), 1),
        }
    return {
        "turns": len(turns),
        "errors": len(turns) - len(ok),
        "right": sum(bool(t.right) for t in scored),
        "scored": len(scored),
        "median_turn_s": _r(_median([t.turn_s for t in ok])),
        "p95_turn_s": _r(_p95([t.turn_s for t in ok])),
        "min_median_turn_s": _r(_median([min(x.turn_s for x in ts) for ts in by_q.values()])),
        "median_first_token_s": _r(_median(firsts)),
        "p95_first_token_s": _r(_p95(firsts)),
        "min_median_first_token_s": _r(_median(min_firsts)),
        "llm_calls_per_turn": _r(statistics.mean(t.calls for t in ok)) if ok else None,
        "prompt_tokens_per_turn": _r(statistics.mean(t.prompt_tokens for t in ok), 1) if ok else None,
        "completion_tokens_per_turn": _r(statistics.mean(t.completion_tokens for t in ok), 1) if ok else None,
        "per_intent": per_intent,
    }


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True  # it answered (e.g. 503 "degraded"): a server is there
    except OSError:
        return False


async def main_async(args: argparse.Namespace) -> int:
    url = args.url.rstrip("/")
    if not _reachable(url):
        print(f"bench_latency: no Flowstate at {url} (start `flowstate serve`, or pass --url); skipped")
        return 0
    items = [json.loads(line) for line in args.file.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = items[: args.limit] if args.limit else items
    for i, it in enumerate(items):
        it.setdefault("id", f"line{i + 1}")
    turns: list[Turn] = []
    for item in items:
        for repeat in range(args.repeats):
            try:
                if args.rest:
                    turn = await asyncio.to_thread(rest_turn, url, item, repeat, args.timeout)
                else:
                    turn = await ws_turn(url, item, repeat, args.timeout)
            except Exception as exc:  # a failed turn is counted, not fatal to the run
                turn = Turn(str(item["id"]), repeat, float("nan"), None, None, 0, 0, 0, False, repr(exc))
            turns.append(turn)
            if not args.json:
                first = "-" if turn.first_token_s is None else f"{turn.first_token_s:5.2f}s"
                mark = {True: "ok ", False: "BAD", None: "   "}[turn.right]
                print(
                    f"{mark} {turn.id} r{repeat} turn {turn.turn_s:5.2f}s first {first} {turn.intent} "
                    f"calls {turn.calls} tokens {turn.prompt_tokens}+{turn.completion_tokens} | "
                    f"{item['message'][:50]} | {(turn.error or turn.reply)[:90]!r}",
                    flush=True,
                )
    summary = summarize(turns)
    if args.json:
        print(json.dumps({"summary": summary, "turns": [asdict(t) for t in turns]}))
    else:
        for name, row in summary["per_intent"].items():
            print(f"intent {name}: " + ", ".join(f"{k} {v}" for k, v in row.items()))
        print(json.dumps({k: v for k, v in summary.items() if k != "per_intent"}))
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(description="Turn and first-token latency of a running Flowstate.")
    p.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE, help="JSONL of {message, ...}")
    p.add_argument("--url", default=os.environ.get("FLOWSTATE_URL", "http://127.0.0.1:8000"))
    p.add_argument("--limit", type=int, default=None, help="first N lines only")
    p.add_argument("--repeats", type=int, default=3, help="turns per line, each in a fresh thread")
    p.add_argument("--rest", action="store_true", help="POST /api/chat instead of the WebSocket")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per turn before it counts as failed")
    p.add_argument("--json", action="store_true", help="print the summary and turns as one JSON object")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main_async(parse_args())))
