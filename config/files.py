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
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


#: The kinds of file an export holds; `ignore` (only in `roles:`) leaves a file out.
ImportRole = Literal["accounts", "products", "sales_reps", "deals", "contacts"]
FileRole = Literal["accounts", "products", "sales_reps", "deals", "contacts", "ignore"]


def header_key(text: str) -> str:
    """How headers and synonyms compare: lower case, letters and digits only
    ("Account Name", "account_name" and "AccountName" all give "accountname")."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def stage_key(text: str) -> str:
    """How export stage names compare: lower case, runs of whitespace as one space."""
    return " ".join(text.casefold().split())


class RoleColumns(BaseModel):
    """Synonyms of each canonical field of one file role (field -> headers, earlier first)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _distinct(self) -> RoleColumns:
        owner: dict[str, str] = {}
        for name in type(self).model_fields:
            for synonym in getattr(self, name):
                key = header_key(synonym)
                if not key:
                    raise ValueError(f"{name}: synonym {synonym!r} has no letters or digits")
                if owner.setdefault(key, name) != name:
                    raise ValueError(f"synonym {synonym!r} is listed for both {owner[key]} and {name}")
        return self


class AccountColumns(RoleColumns):
    """`revenue` in millions of USD, `annual_revenue` in USD; `parent_id` is an `id` of the
    accounts file."""

    id: list[str] = []
    name: list[str] = []
    sector: list[str] = []
    employees: list[str] = []
    revenue: list[str] = []
    annual_revenue: list[str] = []
    year_established: list[str] = []
    location: list[str] = []
    parent: list[str] = []
    parent_id: list[str] = []


class ProductColumns(RoleColumns):
    """`price`: list price in USD."""

    id: list[str] = []
    name: list[str] = []
    series: list[str] = []
    price: list[str] = []


class SalesRepColumns(RoleColumns):
    """`manager_id` is an `id` of the sales_reps file; the manager is stored by name."""

    id: list[str] = []
    name: list[str] = []
    manager: list[str] = []
    manager_id: list[str] = []
    office: list[str] = []


class DealColumns(RoleColumns):
    """`account`/`owner`/`product` carry names, `account_id`/`owner_id`/`product_id` ids of the
    accounts/sales_reps/products file of the same export; `value` in USD."""

    id: list[str] = []
    account: list[str] = []
    account_id: list[str] = []
    owner: list[str] = []
    owner_id: list[str] = []
    product: list[str] = []
    product_id: list[str] = []
    stage: list[str] = []
    engage_date: list[str] = []
    close_date: list[str] = []
    value: list[str] = []


class ContactColumns(RoleColumns):
    """A person at an account: `account` by name, or `account_id` (an `id` of the accounts
    file)."""

    id: list[str] = []
    first_name: list[str] = []
    last_name: list[str] = []
    email: list[str] = []
    phone: list[str] = []
    title: list[str] = []
    account: list[str] = []
    account_id: list[str] = []


class ImportColumns(BaseModel):
    """The `columns:` section: synonyms per file role."""

    model_config = ConfigDict(extra="forbid")

    accounts: AccountColumns = AccountColumns()
    products: ProductColumns = ProductColumns()
    sales_reps: SalesRepColumns = SalesRepColumns()
    deals: DealColumns = DealColumns()
    contacts: ContactColumns = ContactColumns()

    def of(self, role: ImportRole) -> RoleColumns:
        """The synonyms of `role`."""
        columns: RoleColumns = getattr(self, role)
        return columns


class ImportMapping(BaseModel):
    """`config/import_mapping.yaml`, or a `--mapping` file of the same shape: column synonyms per
    role, file-name words breaking role ties, export stage names -> stage keys (keys compared by
    `stage_key`), known misspellings repaired on import, and roles pinned per file name."""

    model_config = ConfigDict(extra="forbid")

    columns: ImportColumns = ImportColumns()
    file_names: dict[ImportRole, list[str]] = {}
    stages: dict[str, str] = {}
    repairs: dict[str, dict[str, str]] = {}
    roles: dict[str, FileRole] = {}

    @field_validator("stages")
    @classmethod
    def _stage_keys(cls, stages: dict[str, str]) -> dict[str, str]:
        return {stage_key(k): v for k, v in stages.items()}

    def merged(self, over: ImportMapping) -> ImportMapping:
        """This mapping with `over` laid on top: its synonyms come first (and leave the other
        fields of their role), its file-name words, stages, repairs and roles win."""
        columns: dict[str, RoleColumns] = {}
        for role in ImportColumns.model_fields:
            base, top = getattr(self.columns, role), getattr(over.columns, role)
            claimed = {header_key(s) for f in top.model_fields_set for s in getattr(top, f)}
            fields = {
                f: [s for s in getattr(base, f) if header_key(s) not in claimed]
                for f in type(base).model_fields
            }
            for f in top.model_fields_set:
                fields[f] = [*getattr(top, f), *fields[f]]
            columns[role] = type(base).model_validate(fields)
        return ImportMapping(
            columns=ImportColumns.model_validate(columns),
            file_names={**self.file_names, **over.file_names},
            stages={**self.stages, **over.stages},
            repairs={
                f: {**self.repairs.get(f, {}), **over.repairs.get(f, {})}
                for f in {*self.repairs, *over.repairs}
            },
            roles={**self.roles, **over.roles},
        )


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


def read_import_mapping(path: Path) -> ImportMapping:
    """An import mapping file (the config's or a `--mapping` file), not cached. Raises
    ValidationError on a malformed file, ValueError when it maps to a stage the pipeline lacks."""
    mapping = ImportMapping.model_validate(_read(path) or {})
    pipeline = load_pipeline()
    unknown = sorted({v for v in mapping.stages.values() if pipeline.get(v) is None})
    if unknown:
        raise ValueError(f"{path.name} maps to unknown pipeline stages: {unknown}")
    return mapping


@lru_cache
def load_import_mapping(path: Path = CONFIG_DIR / "import_mapping.yaml") -> ImportMapping:
    """The import mapping of `config/import_mapping.yaml` (see `read_import_mapping`); cached."""
    return read_import_mapping(path)


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
