"""Typed loaders for the YAML files in `config/` (pipeline stages, import mapping, policies,
intents).

Each loader validates the file into a pydantic model and caches it; a malformed file raises
`pydantic.ValidationError` naming the field, at start-up rather than mid-request.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, model_validator

from config.settings import CONFIG_DIR

DealField = Literal["account", "product", "engage_date", "value", "close_date"]


class StageDef(BaseModel):
    """One pipeline stage. `probability` is the chance to win in [0, 1] used by forecasts."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    probability: float = Field(ge=0, le=1)
    closed: bool = False
    won: bool = False
    requires: list[DealField] = []
    # days a deal may sit in this (open) stage before it is stuck: an alert to its owner, and to
    # the owner's manager at twice as long (the scheduled follow-up agent). None: no limit.
    max_days: int | None = Field(None, ge=1)


class PipelineConfig(BaseModel):
    """The ordered pipeline. Exactly one closed-won stage and at least one closed-lost stage."""

    stages: list[StageDef] = Field(min_length=2)

    @model_validator(mode="after")
    def _check(self) -> PipelineConfig:
        keys = [s.key for s in self.stages]
        if len(set(keys)) != len(keys):
            raise ValueError("pipeline stage keys must be unique")
        if sum(1 for s in self.stages if s.won) != 1:
            raise ValueError("exactly one stage must have won: true")
        if not any(s.closed and not s.won for s in self.stages):
            raise ValueError("at least one closed stage must be a loss (closed: true, won: false)")
        if any(s.won and not s.closed for s in self.stages):
            raise ValueError("the won stage must also be closed")
        return self

    def get(self, key: str) -> StageDef | None:
        """The stage with this key, or None."""
        return next((s for s in self.stages if s.key == key), None)

    @property
    def open_keys(self) -> list[str]:
        return [s.key for s in self.stages if not s.closed]

    @property
    def won_key(self) -> str:
        return next(s.key for s in self.stages if s.won)

    @property
    def lost_keys(self) -> list[str]:
        return [s.key for s in self.stages if s.closed and not s.won]

    def resolve(self, text: str) -> StageDef | None:
        """A stage by key or display name, case-insensitive ("closed won", "Won", "won")."""
        t = text.strip().lower()
        for s in self.stages:
            if t in (s.key, s.name.lower()) or t == s.name.lower().removeprefix("closed "):
                return s
        return None


class ImportMapping(BaseModel):
    """Export stage names -> stage keys, and known misspellings repaired on import."""

    stages: dict[str, str]
    repairs: dict[str, dict[str, str]] = {}


class DiscountPolicy(BaseModel):
    max_percent: float = Field(ge=0, le=100)


class OutboundEmailPolicy(BaseModel):
    sender_company: str
    postal_address: str
    unsubscribe_line: str


class Policies(BaseModel):
    """Sales policy shared by the closing crew and the guards."""

    discount: DiscountPolicy
    outbound_email: OutboundEmailPolicy


def _read(path: Path) -> object:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@lru_cache
def load_pipeline(path: Path = CONFIG_DIR / "pipeline.yaml") -> PipelineConfig:
    """The pipeline of `config/pipeline.yaml`. Raises ValidationError on a malformed file."""
    return PipelineConfig.model_validate(_read(path))


@lru_cache
def load_import_mapping(path: Path = CONFIG_DIR / "import_mapping.yaml") -> ImportMapping:
    """The import mapping; every stage it maps to must exist in the pipeline."""
    mapping = ImportMapping.model_validate(_read(path))
    pipeline = load_pipeline()
    unknown = sorted({v for v in mapping.stages.values() if pipeline.get(v) is None})
    if unknown:
        raise ValueError(f"import_mapping.yaml maps to unknown pipeline stages: {unknown}")
    mapping.stages = {k.lower(): v for k, v in mapping.stages.items()}
    return mapping


@lru_cache
def load_policies(path: Path = CONFIG_DIR / "policies.yaml") -> Policies:
    """The sales policies of `config/policies.yaml`."""
    return Policies.model_validate(_read(path))


class IntentDef(BaseModel):
    """One intent of `config/intents.yaml`: a one-line `definition` shown to the router's LLM,
    `examples` for the router's nearest-neighbour vote, and the `crew` folder under `crews/` that
    answers it (None: no crew, the graph answers it itself)."""

    definition: str = Field(min_length=1)
    examples: list[str] = Field(min_length=3)
    crew: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]*$")


class IntentsFile(BaseModel):
    """`config/intents.yaml`: the intents of the chat router, in the file's order."""

    intents: dict[str, IntentDef] = Field(min_length=1)


@lru_cache
def load_intents_file(path: Path = CONFIG_DIR / "intents.yaml") -> IntentsFile:
    """The intents of `config/intents.yaml` (order kept). Raises ValidationError on a malformed
    file."""
    return IntentsFile.model_validate(_read(path))


def intent_names() -> tuple[str, ...]:
    """The intent names of `config/intents.yaml`, in the file's order."""
    return tuple(load_intents_file().intents)


# --- time-based work ----------------------------------------------------------------------------

Recipient = Literal["owner", "manager"]


class EscalationStep(BaseModel):
    """One rung of the ladder: `after` the reminder's due time (ISO 8601 duration such as `P1D`,
    or seconds), notify `notify` again if nobody has acknowledged it."""

    after: dt.timedelta = Field(gt=dt.timedelta(0))
    notify: Recipient


class RemindersConfig(BaseModel):
    """`config/reminders.yaml`: the escalation ladder (rungs in increasing `after`) and how long
    a snooze without a time puts a reminder off."""

    escalation: list[EscalationStep] = []
    snooze: dt.timedelta = Field(dt.timedelta(hours=1), gt=dt.timedelta(0))

    @model_validator(mode="after")
    def _increasing(self) -> RemindersConfig:
        afters = [step.after for step in self.escalation]
        if afters != sorted(set(afters)):
            raise ValueError("escalation steps must have strictly increasing `after` durations")
        return self


@lru_cache
def load_reminders(path: Path = CONFIG_DIR / "reminders.yaml") -> RemindersConfig:
    """The reminder settings of `path`. Raises ValidationError on a malformed file."""
    return RemindersConfig.model_validate(_read(path))


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
AgentName = Literal["reminder_digest", "follow_up", "closure", "nurture", "upsell"]


class AgentSchedule(BaseModel):
    """When a scheduled agent runs, in each rep's own time zone: at `at` (HH:MM) every
    `every_days` days, or on the listed `weekdays`; `days` is the agent's own threshold (no touch
    for, quiet for), where it has one; `max_items` caps what one run files per rep."""

    at: dt.time
    every_days: int = Field(1, ge=1, le=31)
    weekdays: list[Weekday] = []
    days: int | None = Field(None, ge=1)
    max_items: int = Field(5, ge=1, le=100)


class SchedulesConfig(BaseModel):
    """`config/schedules.yaml`: the scheduled agents."""

    agents: dict[AgentName, AgentSchedule]


@lru_cache
def load_schedules(path: Path = CONFIG_DIR / "schedules.yaml") -> SchedulesConfig:
    """The scheduled agents of `path`. Raises ValidationError on a malformed file."""
    return SchedulesConfig.model_validate(_read(path))


class SequenceStep(BaseModel):
    """One step of a follow-up sequence, `after` the sequence's start: an `email` drafted for
    `brief`, or a `task` titled `title` ({account}, {product}, {deal} filled in)."""

    after: dt.timedelta = Field(ge=dt.timedelta(0))
    kind: Literal["email", "task"]
    brief: str | None = Field(None, min_length=1, max_length=300)
    title: str | None = Field(None, min_length=1, max_length=300)

    @model_validator(mode="after")
    def _what(self) -> SequenceStep:
        if self.kind == "email" and not self.brief:
            raise ValueError("an email step needs a `brief`")
        if self.kind == "task" and not self.title:
            raise ValueError("a task step needs a `title`")
        return self


class SequencesConfig(BaseModel):
    """`config/sequences.yaml`: the steps of a follow-up sequence, in increasing `after`."""

    steps: list[SequenceStep] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> SequencesConfig:
        afters = [s.after for s in self.steps]
        if afters != sorted(afters):
            raise ValueError("sequence steps must be in order of `after`")
        return self


@lru_cache
def load_sequences(path: Path = CONFIG_DIR / "sequences.yaml") -> SequencesConfig:
    """The follow-up sequence of `path`. Raises ValidationError on a malformed file."""
    return SequencesConfig.model_validate(_read(path))


ReadWidth = Literal["own", "team", "all"]


class AccessConfig(BaseModel):
    """Who reads what beyond their role's own scope (`config/access.yaml`). `read` maps a role to
    `own` (a rep: their deals; a manager: their team's), `team` (a rep reads their manager's
    whole team) or `all`; acting is never widened. `client_event_kinds` is the closed list of
    event kinds REST clients may write (every other kind is the system's own)."""

    read: dict[Literal["rep", "manager"], ReadWidth] = {}
    client_event_kinds: list[str] = Field(min_length=1)


@lru_cache
def load_access(path: Path = CONFIG_DIR / "access.yaml") -> AccessConfig:
    """The access rules; cached."""
    return AccessConfig.model_validate(_read(path))
