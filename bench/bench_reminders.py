"""Benchmark: reminders on Temporal, at volume.

    .venv/bin/python bench/bench_reminders.py [--reminders 1000] [--within 60] [--workers 1] [--json]

What it runs: its own embedded PostgreSQL, Redis, Temporal dev server and SMTP sink in a temporary
directory, the migrated CRM with one rep, and `--workers` `flowstate worker` processes (separate
processes, as in production). Then it writes `--reminders` reminders due at random times within
`--within` seconds from `--lead` (30) seconds ahead (in one transaction, as an import would) and starts their
workflows the way the app does after a commit (`workflows.client.Workflows.start`, in batches of
100), and waits until every reminder has its inbox item.

What it prints: workflows started per second (the start calls, from the first to the last), and
the lag from each reminder's due time to its notification (the inbox item's `created_at`): p50,
p95, max, in seconds; reminders notified / written; duplicates (a reminder with more than one
first notification: must be 0). Escalations are off (an empty ladder) so that only the first
notification is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _report import print_report  # noqa: E402  (bench/, the script's own folder)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn_workers(env: dict[str, str], count: int, log: Path) -> list[subprocess.Popen[bytes]]:
    """`count` `flowstate worker` processes with `env`, their output appended to `log`."""
    with log.open("ab") as fh:
        return [
            subprocess.Popen(
                [sys.executable, "-c", "from app.cli import main; main()", "worker"],
                env=env,
                stdout=fh,
                stderr=fh,
                start_new_session=True,
            )
            for _ in range(count)
        ]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    from sqlalchemy import func, insert, select

    from app.commands.serve import ENDPOINTS_ENV, endpoints_to_json
    from config.settings import Settings
    from crm.db import make_engine, session_scope
    from crm.migrate import upgrade
    from crm.models import InboxItem, Reminder, SalesRep, WorkflowRun
    from embedded.stack import running_stack
    from workflows.client import Workflows, connect
    from workflows.deps import WorkerConfig

    ladder = tmp / "reminders.yaml"
    ladder.write_text("escalation: []\n")
    settings = Settings(
        FLOWSTATE_DATA_DIR=tmp / "data",
        FLOWSTATE_TEMPORAL_PORT=_free_port(),
        FLOWSTATE_TEMPORAL_UI_PORT=_free_port(),
        FLOWSTATE_SMTP_PORT=_free_port(),
    )
    with running_stack(settings, need={"database", "redis", "temporal", "smtp"}, show_progress=False) as ep:
        upgrade(ep.database_url)
        engine = make_engine(ep.database_url)
        config = WorkerConfig(
            database_url=ep.database_url,
            redis_url=ep.redis_url,
            temporal_address=str(ep.temporal_address),
            temporal_namespace=ep.temporal_namespace,
            task_queue="bench",
            smtp_url=ep.smtp_url,
            mail_from="bench@localhost",
            reminders_config=ladder,
            schedules_config=settings.schedules_config,
            dispatch_every_s=3600,
        )
        env = {
            **os.environ,
            ENDPOINTS_ENV: endpoints_to_json(ep),
            "FLOWSTATE_TASK_QUEUE": "bench",
            "FLOWSTATE_REMINDERS_CONFIG": str(ladder),
            "FLOWSTATE_DISPATCH_EVERY_S": "3600",
        }
        workers = _spawn_workers(env, args.workers, tmp / "worker.log")
        try:
            with session_scope(engine) as s:
                rep = s.execute(insert(SalesRep).values(name="Bench Rep").returning(SalesRep.id)).scalar_one()
            start_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=args.lead)
            rng = random.Random(7)
            dues = [
                start_at + dt.timedelta(seconds=rng.uniform(0, args.within)) for _ in range(args.reminders)
            ]
            from crm import repository
            from crm.schemas import ReminderCreate

            with session_scope(engine) as s:
                for i, due in enumerate(dues):
                    repository.create_reminder(
                        s, ReminderCreate(rep_id=rep, due_at=due, message=f"bench {i}")
                    )
            with session_scope(engine) as s:
                ids = list(s.scalars(select(WorkflowRun.workflow_id).order_by(WorkflowRun.id)))
            client = await connect(config.temporal_address, config.temporal_namespace)
            app_side = Workflows(client, engine, config)
            t0 = time.perf_counter()
            for k in range(0, len(ids), 100):
                await app_side.start(ids[k : k + 100])
            start_s = time.perf_counter() - t0
            with session_scope(engine) as s:
                started = s.scalar(select(func.count()).where(WorkflowRun.status == "started")) or 0
            deadline = time.monotonic() + args.lead + args.within + args.timeout
            notified = 0
            while time.monotonic() < deadline:
                with session_scope(engine) as s:
                    notified = s.scalar(select(func.count(func.distinct(InboxItem.reminder_id)))) or 0
                if notified >= args.reminders:
                    break
                await asyncio.sleep(1)
            with session_scope(engine) as s:
                rows = s.execute(
                    select(
                        Reminder.id, Reminder.due_at, func.min(InboxItem.created_at), func.count(InboxItem.id)
                    )
                    .join(InboxItem, InboxItem.reminder_id == Reminder.id)
                    .group_by(Reminder.id, Reminder.due_at)
                ).all()
            lags = [(first - due).total_seconds() for _id, due, first, _n in rows]
            duplicates = sum(1 for *_x, n in rows if n > 1)
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                try:
                    w.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    w.kill()
            engine.dispose()
    return {
        "reminders": args.reminders,
        "within_s": args.within,
        "workers": args.workers,
        "workflows_started": started,
        "start_s": round(start_s, 2),
        "workflows_started_per_s": round(started / start_s, 1) if start_s else None,
        "notified": notified,
        "lag_p50_s": round(_pct(lags, 0.50), 3),
        "lag_p95_s": round(_pct(lags, 0.95), 3),
        "lag_max_s": round(max(lags), 3) if lags else None,
        "lag_mean_s": round(statistics.fmean(lags), 3) if lags else None,
        "duplicates": duplicates,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reminders", type=int, default=1000)
    parser.add_argument("--within", type=float, default=60.0, help="due times spread over this many seconds")
    parser.add_argument("--lead", type=float, default=30.0, help="seconds from now to the first due time")
    parser.add_argument("--workers", type=int, default=1, help="`flowstate worker` processes")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait past the last due time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flowstate-bench-") as tmp:
        result = asyncio.run(_run(args, Path(tmp)))
    print_report(result, as_json=args.json, width=26)


if __name__ == "__main__":
    main()
