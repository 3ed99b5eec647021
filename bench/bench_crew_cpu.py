"""Benchmark: CPU of one crew run (CrewAI's own work around one LLM call), with an instant model.

    .venv/bin/python bench/bench_crew_cpu.py [--runs 40] [--repeats 3] [--no-reuse] [--json]

Runs the discovery crew's research briefing (`crews.runner.kickoff_validated`, one LLM call that
answers JSON) `--runs` times against a stub OpenAI-compatible server in this process that answers
at once (tests/support/stub_llm.py), after five warm-up runs, and prints the CPU seconds of this
process per run (time.process_time: the stub's share is included and small) and the wall time,
min and median over `--repeats` repeats. `--no-reuse` keeps no idle agent in the agent pool
(`crews.crewkit.AGENTS`), so every run builds its agent and executor anew, as before the pool.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _report import print_report

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")


async def _repeat(runs: int) -> tuple[float, float]:
    from crews.discovery.flow import _researcher
    from crews.discovery.models import ResearchBrief
    from crews.runner import kickoff_validated
    from llm import LLMConfig
    from tests.support.stub_llm import StubLLM

    with StubLLM() as stub:
        cfg = LLMConfig(base_url=stub.base_url, api_key="stub-key", model=stub.model)
        build = _researcher("research")

        async def once(i: int) -> None:
            inputs = {"question": f"Research account {i} for me", "records": "{}"}
            await kickoff_validated("discovery", build, inputs, ResearchBrief, cfg, max_tokens=100)

        for i in range(5):
            await once(i)
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(runs):
            await once(i)
        return (time.process_time() - cpu) / runs, (time.perf_counter() - wall) / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-reuse", action="store_true", help="build every agent anew")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.no_reuse:
        from crews.crewkit import AGENTS

        AGENTS.per_config = 0
    results = [asyncio.run(_repeat(args.runs)) for _ in range(args.repeats)]
    cpu = [1000 * c for c, _ in results]
    wall = [1000 * w for _, w in results]
    out = {
        "runs": args.runs,
        "repeats": args.repeats,
        "agent_reuse": not args.no_reuse,
        "cpu_ms_per_run_min": round(min(cpu), 2),
        "cpu_ms_per_run_median": round(statistics.median(cpu), 2),
        "wall_ms_per_run_min": round(min(wall), 2),
        "wall_ms_per_run_median": round(statistics.median(wall), 2),
    }
    print_report(out, as_json=args.json)


if __name__ == "__main__":
    main()
