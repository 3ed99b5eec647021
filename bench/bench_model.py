"""Speed of the embedded model server: prompt and generation throughput, time to first token.

Streams chat completions from a llama.cpp server (the embedded one on FLOWSTATE_LLM_PORT, or the
one at --base-url) and prints, over --repeats runs, min and median of: time to first token of a
long prompt (about 450 tokens, different each run so the prefix cache cannot serve it), prompt
tokens per second derived from it, and generated tokens per second (64 tokens from a short
prompt). Usage:

    .venv/bin/python bench/bench_model.py [--repeats 5] [--base-url http://127.0.0.1:8089/v1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

from config.settings import get_settings

#: A filler sentence; 30 repetitions make a prompt of about 450 tokens with Qwen's tokenizer.
_FILLER = "The account Acme Corp signed a deal worth 12,500 dollars in the third quarter. "


def _stream(base_url: str, model: str, prompt: str, max_tokens: int) -> tuple[float, float, int, int]:
    """(seconds to first content token, total seconds, prompt tokens, generated pieces)."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    started = time.perf_counter()
    first: float | None = None
    pieces = 0
    with httpx.stream("POST", f"{base_url}/chat/completions", json=body, timeout=300) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            if '"content":"' in line.replace(" ", "") and first is None:
                first = time.perf_counter() - started
            if '"content"' in line:
                pieces += 1
    total = time.perf_counter() - started
    usage = httpx.post(
        f"{base_url.removesuffix('/v1')}/extras/tokenize",
        json={"input": prompt, "model": model},
        timeout=30,
    )
    prompt_tokens = len(usage.json().get("tokens", [])) if usage.status_code == 200 else 0
    return first if first is not None else total, total, prompt_tokens, pieces


def main() -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base-url", default=f"http://127.0.0.1:{settings.llm_port}/v1")
    parser.add_argument("--model", default=settings.llm_model)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    ttft, prompt_rate, gen_rate = [], [], []
    for run in range(args.repeats):
        long_prompt = f"Run {run}-{time.time_ns()}. " + _FILLER * 30 + "Answer with one word: which account?"
        first, _total, n_prompt, _pieces = _stream(args.base_url, args.model, long_prompt, 1)
        ttft.append(first)
        if n_prompt:
            prompt_rate.append(n_prompt / first)
        short = f"Count from 1 to 100, run {run}."
        first, total, _n, pieces = _stream(args.base_url, args.model, short, 64)
        if total > first and pieces > 1:
            gen_rate.append((pieces - 1) / (total - first))

    def show(name: str, values: list[float], unit: str) -> None:
        if values:
            print(f"{name:<34} min {min(values):7.2f}  median {statistics.median(values):7.2f} {unit}")

    print(f"model {args.model} at {args.base_url}, {args.repeats} runs")
    show("first token, ~450-token prompt", ttft, "s")
    show("prompt processing", prompt_rate, "tokens/s")
    show("generation (64 tokens)", gen_rate, "tokens/s")


if __name__ == "__main__":
    main()
