"""Benchmark: the crews alone on the CRM question set, with the real entity resolver.

    .venv/bin/python bench/bench_crew_accuracy.py [FILE.jsonl] [--limit N] [--json] [--stub]

Each line's message goes through `graphs.entities.resolve_entities` and then
`crews.registry.run_crew` with the line's own `intent` (so the router is out of the measure: this
is the crews' share of `flowstate eval questions`), and the reply is scored the way the
evaluation scores it (numbers within tolerance, names present). Prints one line per
question, then a summary: accuracy, median/p95 seconds per crew run, LLM calls and tokens per
turn (as the server reported them). `--stub` answers every LLM request instantly with a minimal
JSON (the crews then fall back to their computed sentences): the deterministic part alone.
Set-up (database, LLM) as in `bench/_crew_bench.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _crew_bench import add_arguments, database, llm_config

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "shared" / "eval" / "crm_questions_dev.jsonl"
NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def right(item: dict[str, Any], reply: str) -> bool:
    """Whether `reply` answers `item`, scored as the evaluation does: a number within the item's
    tolerance, every expected name present ("set") or one of them ("text")."""
    kind, ans = item["kind"], item["answer"]
    low = reply.lower()
    if kind in ("number", "percent"):
        tol = float(item.get("tolerance", 0)) + 1e-9
        return any(abs(float(n.replace(",", "")) - ans) <= tol for n in NUM.findall(reply))
    if kind == "text":
        return any(a.lower() in low for a in ans)
    if kind == "set":
        return all(a.lower() in low for a in ans)
    raise ValueError(kind)


async def main_async(args: argparse.Namespace, items: list[dict[str, Any]]) -> dict[str, Any]:
    from contracts import CrewRequest
    from crews.registry import CrewDeps, run_crew
    from crm.db import session_scope
    from graphs.entities import resolve_entities
    from llm import LLMConfig
    from observability.llm_meter import usage_scope

    with database(args.database_url) as engine:
        if args.stub:
            from tests.support.stub_llm import StubLLM

            stub = StubLLM().start()
            cm_cfg: Any = LLMConfig(base_url=stub.base_url, api_key="x", model=stub.model, timeout_s=10)
        with llm_config(args) if not args.stub else _nullcfg(cm_cfg) as cfg:
            deps = CrewDeps(engine=engine, llm=cfg)
            rows = []
            for it in items:
                with session_scope(engine) as s:
                    ents = resolve_entities(s, it["message"])
                start = time.perf_counter()
                with usage_scope() as usage:
                    try:
                        r = await run_crew(
                            CrewRequest(message=it["message"], intent=it["intent"], entities=ents), deps
                        )
                        reply = r.reply
                    except Exception as exc:  # a failed turn counts as wrong
                        reply = f"<error {type(exc).__name__}: {exc}>"
                secs = time.perf_counter() - start
                ok = right(it, reply)
                rows.append({"id": it["id"], "ok": ok, "s": secs, **usage.as_dict()})
                if not args.json:
                    print(
                        f"{'ok ' if ok else 'BAD'} {it['id']} {secs:5.1f}s calls={usage.calls} "
                        f"p={usage.prompt_tokens} c={usage.completion_tokens} | {it['message'][:60]} | "
                        f"{reply[:150]!r}",
                        flush=True,
                    )
    lat = sorted(r["s"] for r in rows)
    n = len(rows)
    summary = {
        "file": Path(args.file).name,
        "n": n,
        "right": sum(r["ok"] for r in rows),
        "accuracy": round(sum(r["ok"] for r in rows) / n, 3) if n else 0.0,
        "median_s": round(statistics.median(lat), 2) if lat else None,
        "p95_s": round(lat[int(0.95 * (n - 1))], 2) if lat else None,
        "llm_calls_per_turn": round(sum(r["llm_calls"] for r in rows) / n, 2) if n else 0,
        "prompt_tokens_per_turn": round(sum(r["prompt_tokens"] for r in rows) / n, 1) if n else 0,
        "completion_tokens_per_turn": round(sum(r["completion_tokens"] for r in rows) / n, 1) if n else 0,
        "llm": "stub" if args.stub else "real",
    }
    return summary


class _nullcfg:
    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def __enter__(self) -> Any:
        return self.cfg

    def __exit__(self, *exc: object) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", nargs="?", default=str(DEFAULT_FILE))
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    parser.add_argument("--stub", action="store_true", help="instant stub LLM instead of a real one")
    add_arguments(parser)
    args = parser.parse_args()
    lines = Path(args.file).read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in lines if line.strip()][: args.limit]
    summary = asyncio.run(main_async(args, items))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
