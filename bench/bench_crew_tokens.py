"""Benchmark: LLM calls and tokens per turn of each crew, against a plain single-prompt baseline.

    .venv/bin/python bench/bench_crew_tokens.py [--repeat N] [--json]

For one representative message per crew (entities from the real resolver, Maven CRM), the crew
runs through `crews.registry.run_crew`; its requests are counted with `observability.llm_meter.usage_scope`
(prompt/completion tokens as the server reported them: llama.cpp returns `usage` on
non-streaming responses). The baseline is one direct `ChatOpenAI` call with the same data: the
facts the crew's tools gathered (`CrewResponse.facts`, compact JSON) and the question, asking for
the answer in one prompt; its tokens come from the same server. `ratio` = crew tokens / baseline
tokens. Seconds are wall time on the machine at hand (the local model shares its 2 cores).
Set-up (database, LLM) as in `bench/_crew_bench.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _crew_bench import add_arguments, database, llm_config

#: One representative message per crew (phrasings of the intent evaluation set's kinds).
CASES: list[tuple[str, str]] = [
    ("pipeline", "What is Kami Bicknell's win rate on closed deals?"),
    ("discovery", "What do we know about Betatech?"),
    ("closing", "Draft a follow-up to Cancity about GTX Plus Basic"),
    ("delivery", "We just won the Codehow deal, set up the onboarding project"),
    ("nba", "What should I do next with Gekko & Co?"),
    ("general", "What can you do?"),
]

BASELINE_SYSTEM = "You are a sales assistant. Answer the rep's request using only the CRM facts given."


async def _baseline(cfg: Any, question: str, facts: list[dict[str, Any]]) -> dict[str, float]:
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    from crews.runner import compact_json

    model = ChatOpenAI(
        base_url=cfg.base_url,
        api_key=SecretStr(cfg.api_key),
        model=cfg.model,
        temperature=0,
        timeout=cfg.timeout_s,
        max_retries=0,
        extra_body={"max_tokens": cfg.max_tokens},
    )
    start = time.perf_counter()
    msg = await model.ainvoke(
        [("system", BASELINE_SYSTEM), ("user", f"Facts: {compact_json(facts)}\n\nRequest: {question}")]
    )
    usage: dict[str, Any] = dict(msg.usage_metadata or {})
    return {
        "calls": 1,
        "prompt": usage.get("input_tokens", 0),
        "completion": usage.get("output_tokens", 0),
        "s": time.perf_counter() - start,
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    from contracts import CrewRequest
    from crews.registry import CrewDeps, run_crew
    from crm.db import session_scope
    from graphs.entities import resolve_entities
    from observability.llm_meter import usage_scope

    rows = []
    with database(args.database_url) as engine, llm_config(args) as cfg:
        deps = CrewDeps(engine=engine, llm=cfg)
        for intent, message in CASES:
            crew_runs, base_runs = [], []
            for _ in range(args.repeat):
                with session_scope(engine) as s:
                    ents = resolve_entities(s, message)
                start = time.perf_counter()
                with usage_scope() as usage:
                    r = await run_crew(CrewRequest(message=message, intent=intent, entities=ents), deps)  # type: ignore[arg-type]
                crew_runs.append(
                    {
                        "calls": usage.calls,
                        "prompt": usage.prompt_tokens,
                        "completion": usage.completion_tokens,
                        "s": time.perf_counter() - start,
                    }
                )
                base_runs.append(await _baseline(cfg, message, r.facts or [{"reply": r.reply}]))

            def med(runs: list[dict[str, float]], key: str) -> float:
                return float(statistics.median(x[key] for x in runs))

            crew_tokens = med(crew_runs, "prompt") + med(crew_runs, "completion")
            base_tokens = med(base_runs, "prompt") + med(base_runs, "completion")
            rows.append(
                {
                    "crew": intent,
                    "calls": med(crew_runs, "calls"),
                    "prompt": med(crew_runs, "prompt"),
                    "completion": med(crew_runs, "completion"),
                    "s": round(med(crew_runs, "s"), 1),
                    "base_calls": med(base_runs, "calls"),
                    "base_prompt": med(base_runs, "prompt"),
                    "base_completion": med(base_runs, "completion"),
                    "base_s": round(med(base_runs, "s"), 1),
                    "ratio": round(crew_tokens / base_tokens, 2) if base_tokens else None,
                }
            )
            if not args.json:
                print(f"done {intent}", file=sys.stderr, flush=True)
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'crew':<10} {'calls':>5} {'prompt':>7} {'compl':>6} {'sec':>6} | {'base calls':>10} "
        f"{'prompt':>7} {'compl':>6} {'sec':>6} | {'tokens ratio':>12}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        crew = (
            f"{r['crew']:<10} {r['calls']:>5.0f} {r['prompt']:>7.0f} {r['completion']:>6.0f} {r['s']:>6.1f}"
        )
        base = (
            f"{r['base_calls']:>10.0f} {r['base_prompt']:>7.0f} {r['base_completion']:>6.0f} "
            f"{r['base_s']:>6.1f}"
        )
        ratio = r["ratio"] if r["ratio"] is not None else float("nan")
        lines.append(f"{crew} | {base} | {ratio:>12.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per crew (medians are reported)")
    parser.add_argument("--json", action="store_true")
    add_arguments(parser)
    args = parser.parse_args()
    rows = asyncio.run(main_async(args))
    print(json.dumps(rows) if args.json else _table(rows))


if __name__ == "__main__":
    main()
