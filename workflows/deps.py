"""What the activities need, built once by the worker's entry point from the settings and the
running stack (plain data; the activities open their own engine and clients from it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from config.settings import CONFIG_DIR
from llm import LLMConfig


@dataclass(frozen=True)
class WorkerConfig:
    """- `database_url`, `redis_url` (None: notifications are not published live).
    - `temporal_address`, `temporal_namespace`, `task_queue`: where the worker polls.
    - `smtp_url`: smtp://[user:pass@]host:port or smtps://...; `?starttls=true` upgrades a plain
      connection; `mail_from`: the From address.
    - `reminders_config`, `schedules_config`, `sequences_config`: the YAML files of the ladder,
      the agents and the follow-up sequence.
    - `llm`: the model the crews draft with (None: email steps of a sequence file an alert that
      no draft could be written).
    - `dispatch_every_s`: period of the dispatch schedule; `onboarding_check_s`: how often an
      onboarding looks at its tasks.
    """

    database_url: str
    redis_url: str | None
    temporal_address: str
    temporal_namespace: str
    task_queue: str
    smtp_url: str | None
    mail_from: str
    reminders_config: Path
    schedules_config: Path
    sequences_config: Path = CONFIG_DIR / "sequences.yaml"
    llm: LLMConfig | None = None
    dispatch_every_s: float = 30.0
    onboarding_check_s: float = 3600.0
