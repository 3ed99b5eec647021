"""Benchmark: many live WebSocket conversations against `flowstate serve` with a slow stub model.

    .venv/bin/python bench/bench_load.py [--conversations 1000] [--interval 20] [--duration 180]
        [--workers 1] [--llm-delay 0.5] [--llm-share 0.5] [--keep-data] [--json]

What it runs: its own embedded PostgreSQL and Redis in a temporary directory (or DATABASE_URL /
REDIS_URL), a stub OpenAI-compatible model in a separate process that answers every request
after `--llm-delay` seconds (tests/support/stub_llm.py), and `flowstate serve --workers N` on a
free port with the demo CRM. Each conversation is its own signed-in user (an admin with an API
token, created before the app starts), so the per-user rate limits and concurrent-turn cap apply at
their defaults, as for a real team. Then `--conversations` WebSocket connections are opened (one thread
each) and held for `--duration` seconds; each sends a message every `--interval` seconds (first
one at a random offset, so C / interval turns per second are offered) and waits for its last
frame. A share `--llm-share` of the messages needs the model (a discovery briefing on a demo
account: the crew's LLM calls); the others are pipeline questions that rules and SQL answer.

What it prints: turns offered per second, turns sent / answered ("final") / failed ("error", by
kind: "busy" is a turn refused by admission control, FLOWSTATE_ADMISSION_WAIT_S), p50 / p95 / p99
turn latency (send -> last frame, seconds) and p50 / p95 of the answered turns alone, lost
messages (a sent message with no final or error frame, or missing from its thread when the
threads are read back at the end), the
LLM requests the stub served, the peak RSS of the app (parent and workers, MiB), the app's CPU
seconds per turn, and the rest of the machine's: this client's and everything else's (Redis,
PostgreSQL, the stub model, Temporal), with how busy the cores were, and how many warnings and
errors the app logged (its log stays at the printed `app_log` path to read them; the run's
PostgreSQL and Redis data are deleted at the end unless `--keep-data`). Target on 2
cores: p95 <= 1.5 s, 0 lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _report import print_report  # noqa: E402  (bench/, the script's own folder)

#: Pipeline questions the demo CRM answers from rules and SQL (no model call).
RULE_QUESTIONS = (
    "How many deals did we win?",
    "How many deals did we lose?",
    "How many open deals do we have?",
    "What is our win rate?",
    "How many deals are in the pipeline?",
    "What is the total won revenue?",
    "How many deals did we win this year?",
    "How many deals have we lost this year?",
    "What is our average deal size?",
    "How many deals are stuck?",
    "Which rep has won the most deals?",
    "How many won deals do we have in total?",
)


# ---------------------------------------------------------------------------------------------
# the stub model, in its own process (its request threads must not share the client's GIL)
# ---------------------------------------------------------------------------------------------


def _stub_main(delay_s: float, port_out: Any, count_out: Any) -> None:
    from tests.support.stub_llm import StubLLM

    stub = StubLLM(delay_s=delay_s).start()
    port_out.value = stub.port
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(0.5)
        count_out.value = stub.count


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mib(pid: int) -> float:
    """RSS of `pid` and its descendants, MiB (from /proc)."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        pids.extend(int(c) for c in children)
    return total / 1024


def _machine_cpu_s() -> float:
    """CPU seconds this machine's cores have been busy since boot, all processes (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and its descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        pids.extend(int(c) for c in children)
    return total


# ---------------------------------------------------------------------------------------------
# the conversations
# ---------------------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    answered_latencies: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=lambda: {"rules": [], "llm": []})
    sent: int = 0
    answered: int = 0
    failed: int = 0
    lost: int = 0
    connect_errors: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    sent_by_thread: dict[str, list[str]] = field(default_factory=dict)


async def _conversation(
    index: int,
    url: str,
    token: str,
    args: argparse.Namespace,
    accounts: list[str],
    tally: Tally,
    stop_at: float,
) -> None:
    import websockets

    rng = random.Random(index)
    thread = f"load-{os.getpid()}-{index}"
    rules = list(RULE_QUESTIONS)
    rng.shuffle(rules)
    briefs = [f"Research {name} for me" for name in rng.sample(accounts, len(accounts))]
    sent: list[str] = []
    tally.sent_by_thread[thread] = sent
    next_at = time.monotonic() + rng.uniform(0, args.interval)
    try:
        async with websockets.connect(
            f"{url}/ws/chat/{thread}",
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=60,
            ping_interval=None,
            compression=None,
        ) as ws:
            while True:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                if time.monotonic() >= stop_at:
                    return
                next_at += args.interval
                pool = briefs if rng.random() < args.llm_share else rules
                message = next((m for m in pool if m not in sent), None) or next(
                    m for m in (*briefs, *rules) if m not in sent
                )
                kind = "llm" if message in briefs else "rules"
                sent.append(message)
                tally.sent += 1
                started = time.monotonic()
                await ws.send(json.dumps({"type": "message", "content": message}))
                try:
                    async with asyncio.timeout(args.turn_timeout):
                        while True:
                            frame = json.loads(await ws.recv())
                            if frame["type"] in ("final", "error"):
                                break
                except (TimeoutError, websockets.ConnectionClosed):
                    tally.lost += 1
                    return
                tally.latencies.append(time.monotonic() - started)
                tally.by_kind[kind].append(tally.latencies[-1])
                if frame["type"] == "final":
                    tally.answered += 1
                    tally.answered_latencies.append(tally.latencies[-1])
                else:
                    tally.failed += 1
                    key = str(frame.get("kind") or frame.get("code") or "?")
                    tally.errors[key] = tally.errors.get(key, 0) + 1
    except (OSError, TimeoutError, websockets.WebSocketException):
        tally.connect_errors += 1


async def _read_back(http: str, tally: Tally, tokens: list[str]) -> int:
    """Messages sent but missing from their thread (read back over REST)."""
    import httpx

    missing = 0
    sem = asyncio.Semaphore(20)
    async with httpx.AsyncClient(base_url=http, timeout=30) as client:

        async def check(thread: str, sent: list[str]) -> None:
            nonlocal missing
            if not sent:
                return
            token = tokens[int(thread.rsplit("-", 1)[1])]
            async with sem:
                r = await client.get(f"/api/threads/{thread}", headers={"Authorization": f"Bearer {token}"})
            stored = (
                [m["content"] for m in r.json()["messages"] if m["role"] == "user"] if r.is_success else []
            )
            missing += sum(1 for m in sent if m not in stored)

        await asyncio.gather(*(check(t, s) for t, s in tally.sent_by_thread.items()))
    return missing


def _make_users(database_url: str, count: int) -> list[str]:
    """`count` admin users `load-<i>`, each with an API token; returns the tokens by index."""
    from crm.db import make_engine, session_scope
    from crm.users import add_user, issue

    engine = make_engine(database_url)
    tokens = []
    with session_scope(engine) as session:
        for i in range(count):
            add_user(session, f"load-{i}", role="admin")
            tokens.append(issue(session, f"load-{i}", "token", label="bench").secret)
    engine.dispose()
    return tokens


async def _drive(args: argparse.Namespace, port: int, app_pid: int, tokens: list[str]) -> dict[str, Any]:
    import httpx

    http = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {tokens[0]}"}
    async with httpx.AsyncClient(base_url=http, timeout=30, headers=auth) as client:
        accounts = [a["name"] for a in (await client.get("/api/accounts?limit=100")).json()["items"]]
    tally = Tally()
    peak_rss = _rss_mib(app_pid)
    cpu_before = _cpu_s(app_pid)
    machine_before, client_before = _machine_cpu_s(), time.process_time()
    started = time.monotonic()
    stop_at = started + args.duration
    tasks = []
    for i in range(args.conversations):  # open the connections at about 200 per second
        tasks.append(
            asyncio.create_task(
                _conversation(i, f"ws://127.0.0.1:{port}", tokens[i], args, accounts, tally, stop_at)
            )
        )
        if i % 20 == 19:
            await asyncio.sleep(0.1)
    while not all(t.done() for t in tasks):
        peak_rss = max(peak_rss, _rss_mib(app_pid))
        await asyncio.sleep(1.0)
    elapsed = time.monotonic() - started
    cpu = _cpu_s(app_pid) - cpu_before
    machine = _machine_cpu_s() - machine_before
    client_cpu = time.process_time() - client_before
    missing = await _read_back(http, tally, tokens)
    lat = sorted(tally.latencies)

    def pct_of(values: list[float], q: float) -> float | None:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else None

    def pct(q: float) -> float | None:
        return pct_of(lat, q)

    turns = tally.answered + tally.failed
    return {
        "conversations": args.conversations,
        "workers": args.workers,
        "offered_turns_per_s": round(args.conversations / args.interval, 1),
        "achieved_turns_per_s": round(turns / elapsed, 1),
        "duration_s": round(elapsed, 1),
        "sent": tally.sent,
        "answered": tally.answered,
        "failed": tally.failed,
        "errors_by_kind": tally.errors,
        "lost_no_final_frame": tally.lost,
        "lost_not_in_thread": missing,
        "connect_errors": tally.connect_errors,
        "p50_s": pct(0.50),
        "p95_s": pct(0.95),
        "p99_s": pct(0.99),
        "mean_s": round(statistics.fmean(lat), 3) if lat else None,
        "p50_s_answered": pct_of(tally.answered_latencies, 0.50),
        "p95_s_answered": pct_of(tally.answered_latencies, 0.95),
        "p50_s_rules_turns": round(statistics.median(tally.by_kind["rules"]), 3)
        if tally.by_kind["rules"]
        else None,
        "p50_s_llm_turns": round(statistics.median(tally.by_kind["llm"]), 3)
        if tally.by_kind["llm"]
        else None,
        "app_peak_rss_mib": round(peak_rss),
        "app_cpu_s_per_turn": round(cpu / turns, 4) if turns else None,
        # the rest of the machine: this client, Redis, PostgreSQL, the stub model, Temporal
        "client_cpu_s_per_turn": round(client_cpu / turns, 4) if turns else None,
        "other_cpu_s_per_turn": round((machine - cpu - client_cpu) / turns, 4) if turns else None,
        "machine_busy_pct": round(100 * machine / (elapsed * (os.cpu_count() or 1)), 1),
    }


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=20.0, help="seconds between a conversation's turns")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    parser.add_argument("--workers", type=int, default=1, help="flowstate serve --workers")
    parser.add_argument("--llm-delay", type=float, default=0.5, help="the stub model's answer time, s")
    parser.add_argument("--llm-share", type=float, default=0.5, help="share of messages that need the model")
    parser.add_argument(
        "--turn-timeout", type=float, default=120.0, help="a turn with no last frame by then is lost"
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the run's PostgreSQL and Redis data directory"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))

    from crm.migrate import upgrade
    from embedded.postgres import start_postgres
    from embedded.redis import start_redis

    work = Path(tempfile.mkdtemp(prefix="flowstate-load-"))
    pg = rd = None
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not database_url:
        pg = start_postgres(work)
        database_url = pg.url
    upgrade(database_url)
    tokens = _make_users(database_url, args.conversations)
    if not redis_url:
        rd = start_redis(work)
        redis_url = rd.url

    ctx = multiprocessing.get_context("spawn")
    port_v, count_v = ctx.Value("i", 0), ctx.Value("i", 0)
    stub = ctx.Process(target=_stub_main, args=(args.llm_delay, port_v, count_v), daemon=True)
    stub.start()
    while port_v.value == 0:
        time.sleep(0.05)

    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "OPENAI_BASE_URL": f"http://127.0.0.1:{port_v.value}/v1",
        "OPENAI_API_KEY": "stub-key",
        "FLOWSTATE_LLM_MODEL": "stub-model",
        "FLOWSTATE_DATA_DIR": str(work),
        "FLOWSTATE_DEMO_DATA": "true",
        "CREWAI_DISABLE_TELEMETRY": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "CREWAI_DISABLE_VERSION_CHECK": "true",
    }
    # the log outlives the run (it is how problems under load show); the data directory does not
    log_fd, log_name = tempfile.mkstemp(prefix="flowstate-load-", suffix=".log")
    os.close(log_fd)
    log_path = Path(log_name)
    with log_path.open("wb") as log:
        app = subprocess.Popen(
            [
                str(REPO / ".venv" / "bin" / "flowstate"),
                "serve",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        import httpx

        deadline = time.monotonic() + 180
        while True:
            if app.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"flowstate serve did not come up:\n{log_path.read_text()[-3000:]}")
            try:
                probe = httpx.get(
                    f"http://127.0.0.1:{port}/api/accounts?limit=1",
                    headers={"Authorization": f"Bearer {tokens[0]}"},
                    timeout=2,
                )
                if probe.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        time.sleep(float(os.environ.get("BENCH_SETTLE_S", "20")))  # let the workers' warm-up finish
        served_before = count_v.value
        result = asyncio.run(_drive(args, port, app.pid, tokens))
        time.sleep(1.0)
        result["llm_requests"] = count_v.value - served_before
        result["app_log"] = str(log_path)
    finally:
        app.send_signal(signal.SIGTERM)
        try:
            app.wait(60)
        except subprocess.TimeoutExpired:
            app.kill()
        stub.terminate()
        if rd is not None:
            rd.stop()
        if pg is not None:
            pg.stop()
        if args.keep_data:
            print(f"data kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    result.update(_log_problems(log_path))
    print_report(result, as_json=args.json)


#: A log record's level at the start of its line, as the app's rich handler and Python's default
#: format write it ("[12/01/26 15:41:39] WARNING  ...", "WARNING:graphs.checkpoint:...").
_LEVEL = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(WARNING|ERROR|CRITICAL)\b")


def _log_problems(log_path: Path) -> dict[str, int]:
    """Warnings and errors (ERROR or CRITICAL) the app logged during the run: a clean run has
    none, and under load they were how concurrency bugs first showed (read the log's lines)."""
    counts = {"app_log_warnings": 0, "app_log_errors": 0}
    for line in log_path.read_text(errors="replace").splitlines():
        level = _LEVEL.match(line)
        if level is not None:
            counts["app_log_warnings" if level.group(1) == "WARNING" else "app_log_errors"] += 1
    return counts


if __name__ == "__main__":
    main()
