"""Pydantic models at the CRM boundary: API input/output, analytics results.

Conventions:
- Money is a JSON number (`float`) in USD everywhere (`value`, `list_price`, `won_value`, ...);
  the database keeps `Numeric(.., 2)`, so amounts are exact to the cent on the way in and out.
  `revenue_musd` is an account's annual revenue in millions of USD.
- `*Create` / `*Update` models forbid unknown fields (a typo is a 422 naming the field, not a silent
  no-op). `*Update` models are partial: only fields present in the request body change; a field
  whose column cannot be empty (`Omittable`) may be left out but not sent as null.
- Input fields use the types of `contracts.fields`: ids within 1..MAX_ID, text without NUL
  characters (`Text`; `NonBlank` where the value must say something), free-form JSON that `jsonb`
  can store (`JsonObject`), ISO dates and offset date-times, so every limit of the storage is
  in the JSON schema and a schema-valid body is never refused by the database.
- `*Out` models read from ORM rows (`from_attributes=True`).
- Dates are ISO dates (`engage_date`, `close_date`); times are timezone-aware ISO datetimes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool
from pydantic.json_schema import SkipJsonSchema

from config.files import load_access
from contracts.fields import (
    Email,
    Input,
    Instant,
    IsoDate,
    JsonObject,
    NonBlank,
    Omittable,
    RecordId,
    Text,
    TimeZoneName,
)

T = TypeVar("T")

DealStatus = Literal["open", "won", "lost"]
ReminderStatus = Literal["pending", "done", "cancelled", "escalated"]
RecommendationStatus = Literal["open", "accepted", "dismissed", "done"]

#: Largest amounts the columns hold: Numeric(14, 2) for deal values and revenue, (12, 2) for prices.
MAX_VALUE = 999_999_999_999.99
MAX_PRICE = 9_999_999_999.99


class _In(Input):
    pass


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of a list: `items` in a stable order, `total` rows matching the filters."""

    items: list[T]
    total: int
    limit: int
    offset: int


# --- accounts -------------------------------------------------------------------------------


class AccountCreate(_In):
    name: NonBlank = Field(max_length=200)
    sector: Text | None = Field(None, max_length=80)
    year_established: int | None = Field(None, ge=1000, le=2100)
    revenue_musd: float | None = Field(None, ge=0, le=MAX_VALUE, description="annual revenue, million USD")
    employees: int | None = Field(None, ge=0, le=2_000_000_000)
    office_location: Text | None = Field(None, max_length=120)
    parent_account_id: RecordId | None = Field(None, description="id of the parent account, if a subsidiary")


class AccountUpdate(_In):
    name: Omittable[NonBlank] = Field(None, max_length=200)
    sector: Text | None = Field(None, max_length=80)
    year_established: int | None = Field(None, ge=1000, le=2100)
    revenue_musd: float | None = Field(None, ge=0, le=MAX_VALUE)
    employees: int | None = Field(None, ge=0, le=2_000_000_000)
    office_location: Text | None = Field(None, max_length=120)
    parent_account_id: RecordId | None = None


class AccountOut(_Out):
    id: int
    name: str
    sector: str | None
    year_established: int | None
    revenue_musd: float | None
    employees: int | None
    office_location: str | None
    parent_account_id: int | None
    parent_name: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


class AccountBrief(_Out):
    id: int
    name: str
    sector: str | None = None


# --- contacts -------------------------------------------------------------------------------


class ContactCreate(_In):
    account_id: RecordId | None = None
    first_name: NonBlank = Field(max_length=100)
    last_name: NonBlank = Field(max_length=100)
    title: Text | None = Field(None, max_length=120)
    email: Email | None = None
    phone: Text | None = Field(None, max_length=40)


class ContactUpdate(_In):
    account_id: RecordId | None = None
    first_name: Omittable[NonBlank] = Field(None, max_length=100)
    last_name: Omittable[NonBlank] = Field(None, max_length=100)
    title: Text | None = Field(None, max_length=120)
    email: Email | None = None
    phone: Text | None = Field(None, max_length=40)


class ContactOut(_Out):
    id: int
    account_id: int | None
    account_name: str | None = None
    first_name: str
    last_name: str
    title: str | None
    email: str | None
    phone: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


# --- products and reps ----------------------------------------------------------------------


class ProductCreate(_In):
    name: NonBlank = Field(max_length=120)
    series: Text | None = Field(None, max_length=80)
    list_price: float | None = Field(None, ge=0, le=MAX_PRICE, description="USD")


class ProductUpdate(_In):
    name: Omittable[NonBlank] = Field(None, max_length=120)
    series: Text | None = Field(None, max_length=80)
    list_price: float | None = Field(None, ge=0, le=MAX_PRICE)


class ProductOut(_Out):
    id: int
    name: str
    series: str | None
    list_price: float | None
    created_at: dt.datetime
    updated_at: dt.datetime


class SalesRepCreate(_In):
    name: NonBlank = Field(max_length=120)
    manager: Text | None = Field(None, max_length=120)
    regional_office: Text | None = Field(None, max_length=80)
    email: Email | None = None
    time_zone: TimeZoneName = Field("UTC", description="the scheduled agents run at local hours here")


class SalesRepUpdate(_In):
    name: Omittable[NonBlank] = Field(None, max_length=120)
    manager: Text | None = Field(None, max_length=120)
    regional_office: Text | None = Field(None, max_length=80)
    email: Email | None = None
    time_zone: Omittable[TimeZoneName] = None


class SalesRepOut(_Out):
    id: int
    name: str
    manager: str | None
    regional_office: str | None
    email: str | None
    time_zone: str
    created_at: dt.datetime
    updated_at: dt.datetime


# --- deals ----------------------------------------------------------------------------------


class DealCreate(_In):
    """A new deal. It enters `stage` under that stage's entry rules (see `StageMove`)."""

    external_id: NonBlank | None = Field(
        None, max_length=64, description="id in a source CRM; generated when absent"
    )
    account_id: RecordId | None = None
    product_id: RecordId | None = None
    rep_id: RecordId | None = None
    stage: NonBlank = Field("prospecting", max_length=80, description="stage key or name")
    engage_date: IsoDate | None = None
    close_date: IsoDate | None = Field(
        None, description="not before engage_date; only for a closed stage (won or lost)"
    )
    value: float | None = Field(None, ge=0, le=MAX_VALUE, description="USD")
    # who creates it: the API sets it from the credential (never from the body), so the OpenAPI
    # schema does not offer it and a value sent anyway is replaced
    created_by: SkipJsonSchema[Text | None] = Field(None, max_length=120)


class DealUpdate(_In):
    """Changes to a deal's fields. The stage changes only through `POST /api/deals/{id}/stage`."""

    account_id: RecordId | None = None
    product_id: RecordId | None = None
    rep_id: RecordId | None = None
    engage_date: IsoDate | None = None
    close_date: IsoDate | None = Field(None, description="not before engage_date; only on a closed deal")
    value: float | None = Field(None, ge=0, le=MAX_VALUE, description="USD")


class DealOut(_Out):
    id: int
    external_id: str
    account_id: int | None
    account_name: str | None
    product_id: int | None
    product_name: str | None
    rep_id: int | None
    rep_name: str | None
    stage: str
    stage_name: str
    status: DealStatus
    engage_date: dt.date | None
    close_date: dt.date | None
    value: float | None = Field(description="USD; the close value once closed (0 for a lost deal)")
    created_at: dt.datetime
    updated_at: dt.datetime


class _MoveTo(_In):
    stage: NonBlank = Field(max_length=80, description="stage key or name")
    note: Text | None = Field(None, max_length=2000)
    value: float | None = Field(None, ge=0, le=MAX_VALUE, description="USD")
    close_date: IsoDate | None = Field(None, description="only when moving to a closed stage")


class StageMove(_MoveTo):
    """Move a deal to `stage` (key or display name).

    Entry rules come from `config/pipeline.yaml` (`requires`). `value` / `close_date` given here
    are set together with the move (e.g. the close value when a deal is won). Moving a closed
    (won/lost) deal anywhere needs `reopen: true`. Who moved it is the caller, from the credential.
    """

    reopen: StrictBool = False


class StageProposal(_MoveTo):
    """The params of a proposed stage move: those of the `move_stage` action (`tools.actions`),
    under the same entry rules as `StageMove`; `reason` is kept as the `note` when there is none.
    A closed deal is not reopened by a proposal."""

    reason: Text | None = Field(None, max_length=2000, description="why; kept as the note")


class StageChangeOut(_Out):
    id: int
    deal_id: int
    from_stage: str | None
    to_stage: str
    changed_at: dt.datetime
    changed_by: str | None
    note: str | None


class StageOut(BaseModel):
    """A configured pipeline stage; `probability` in [0, 1] weights the forecast."""

    key: str
    name: str
    position: int
    probability: float
    closed: bool
    won: bool
    requires: list[str]


# --- reminders, recommendations, events -----------------------------------------------------


class ReminderCreate(_In):
    rep_id: RecordId | None = None
    account_id: RecordId | None = None
    deal_id: RecordId | None = None
    due_at: Instant
    message: NonBlank = Field(max_length=4000)


class ReminderUpdate(_In):
    due_at: Omittable[Instant] = None
    message: Omittable[NonBlank] = Field(None, max_length=4000)
    status: Omittable[ReminderStatus] = None
    escalation_level: Omittable[int] = Field(None, ge=0, le=100)


class ReminderOut(_Out):
    id: int
    rep_id: int | None
    account_id: int | None
    deal_id: int | None
    due_at: dt.datetime
    message: str
    status: ReminderStatus
    escalation_level: int
    fired_at: dt.datetime | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


class RecommendationCreate(_In):
    rep_id: RecordId | None = None
    account_id: RecordId | None = None
    deal_id: RecordId | None = None
    action: NonBlank = Field(max_length=4000)
    reason: NonBlank = Field(max_length=4000)
    priority: int = Field(0, ge=0, le=100, description="higher = more urgent")
    sources: JsonObject = Field(default_factory=dict, description="records the advice rests on")


class RecommendationUpdate(_In):
    status: Omittable[RecommendationStatus] = None
    priority: Omittable[int] = Field(None, ge=0, le=100)
    action: Omittable[NonBlank] = Field(None, max_length=4000)
    reason: Omittable[NonBlank] = Field(None, max_length=4000)


class RecommendationOut(_Out):
    id: int
    rep_id: int | None
    account_id: int | None
    deal_id: int | None
    action: str
    reason: str
    priority: int
    sources: dict[str, Any]
    status: RecommendationStatus
    created_at: dt.datetime
    updated_at: dt.datetime


def _client_event_kinds(schema: dict[str, Any]) -> None:
    # read when the schema is generated (not at import), so it follows config/access.yaml
    schema["enum"] = list(load_access().client_event_kinds)


class EventCreate(_In):
    """An event to log. Flowstate itself logs any kind; through the API, `kind` must be one of
    `config/access.yaml` `client_event_kinds` (the schema's enum) and the actor is the caller (the
    OpenAPI schema does not offer `actor`; a value sent anyway is replaced)."""

    kind: str = Field(
        min_length=1,
        max_length=80,
        pattern=r"^[a-z][a-z0-9_.\-]*$",
        json_schema_extra=_client_event_kinds,
    )
    actor: SkipJsonSchema[Text | None] = Field(None, max_length=120)
    thread_id: Text | None = Field(None, max_length=120)
    account_id: RecordId | None = None
    deal_id: RecordId | None = None
    payload: JsonObject = Field(default_factory=dict)


class EventOut(_Out):
    id: int
    occurred_at: dt.datetime
    kind: str
    actor: str | None
    thread_id: str | None
    account_id: int | None
    deal_id: int | None
    payload: dict[str, Any]


# --- documents ------------------------------------------------------------------------------


class DocumentOut(BaseModel):
    """A document in a list (`GET /api/accounts/{account_id}/documents`): what identifies it and
    its start, not its whole text (up to 20,000 characters; the semantic search returns it).

    `title`: the metadata's `title` (else `subject`), else the first line of the text, at most
    `TITLE_CHARS` characters. `kind`: the metadata's `kind` (e.g. "call_note", "email"), None
    without one. `url`: the metadata's `url` (else `link`) when it is an absolute http(s) URL,
    else None. `excerpt`: the first `EXCERPT_CHARS` characters of the text. `created_at`: when it
    was stored (lists sort on it)."""

    id: int
    account_id: int | None
    deal_id: int | None
    title: str
    kind: str | None
    url: str | None
    excerpt: str
    metadata: dict[str, Any]
    created_at: dt.datetime


#: The longest `DocumentOut.title` / `DocumentOut.excerpt`, in characters.
TITLE_CHARS = 120
EXCERPT_CHARS = 280


# --- analytics ------------------------------------------------------------------------------


class MetricsRow(BaseModel):
    """Deal metrics of one group (or of everything when not grouped). Full precision; round only
    when presenting. Money in USD, cycle time in days, win rate in percent (0-100)."""

    group: str | None = Field(description="group label (rep name, 'YYYY-MM', stage key...); None = no value")
    deals: int
    open: int
    won: int
    lost: int
    win_rate: float | None = Field(description="100 * won / (won + lost); None without closed deals")
    won_value: float = Field(description="sum of value of won deals (revenue)")
    avg_won_value: float | None
    max_won_value: float | None
    avg_cycle_days: float | None = Field(description="mean close_date - engage_date of won deals, days")
    open_pipeline_value: float = Field(description="open deals at value, else product list price")
    weighted_forecast: float = Field(description="sum of open value x stage probability")


class StageSummary(BaseModel):
    stage: str
    name: str
    deals: int
    value: float = Field(description="USD; open deals without a value count at the product list price")


class PipelineSummary(BaseModel):
    """Totals of a pipeline slice. `win_rate` = 100 * won / (won + lost), one decimal; None when
    nothing is closed. `won_value` = revenue of won deals (USD). `by_stage` in pipeline order."""

    total_deals: int
    open: int
    won: int
    lost: int
    win_rate: float | None
    won_value: float
    by_stage: list[StageSummary]


class SectorCount(BaseModel):
    sector: str | None
    accounts: int


class AccountProfile(BaseModel):
    """An account with its hierarchy, contacts count and deal metrics (see `MetricsRow`)."""

    account: AccountOut
    parent: AccountBrief | None
    subsidiaries: list[AccountBrief]
    contacts: int
    metrics: MetricsRow


class RepBrief(BaseModel):
    id: int
    name: str
    manager: str | None
    regional_office: str | None


class RepProfile(BaseModel):
    """A sales rep with their manager, office, teammates (same manager) and deal metrics."""

    rep: SalesRepOut
    teammates: list[str]
    metrics: MetricsRow


class StuckDeal(BaseModel):
    deal: DealOut
    in_stage_since: dt.date
    days_in_stage: int


# --- inbox, outbox, workflows ------------------------------------------------------------------

InboxKind = Literal["reminder", "draft", "action", "alert", "digest", "report"]
InboxStatus = Literal["open", "approved", "rejected", "done", "snoozed", "dismissed"]
InboxDecisionKind = Literal["approve", "edit", "reject", "snooze", "done", "dismiss"]
OutboxStatus = Literal["queued", "sent", "failed"]
WorkflowKind = Literal["reminder", "email", "sequence", "onboarding"]
WorkflowRunStatus = Literal["pending", "started", "completed", "cancelled", "failed"]


class InboxItemOut(_Out):
    """Something waiting for `recipient`: `action` is the ProposedAction an approval carries out
    (drafts and actions), `reminder_id` the reminder that fell due."""

    id: int
    recipient: str
    rep_id: int | None
    kind: InboxKind
    status: InboxStatus
    title: str
    body: str
    action: dict[str, Any] | None
    result: dict[str, Any] | None
    reminder_id: int | None
    deal_id: int | None
    account_id: int | None
    workflow_id: str | None
    decided_by: str | None
    decided_at: dt.datetime | None
    created_at: dt.datetime


class InboxDecision(_In):
    """A person's decision on an inbox item. approve / edit (with `edits` to the action's params) /
    reject apply to drafts and actions; done / snooze (until `until`, else the configured snooze)
    to reminders; dismiss to alerts, digests and reports. Who decides is the caller, from the
    credential (recorded in `decided_by` and as the actor of what the decision does)."""

    decision: InboxDecisionKind
    edits: JsonObject | None = None
    until: Instant | None = Field(None, description="snooze until this time (ISO, with offset)")


#: The `ActionKind`s a client may propose on a deal (their params are typed below).
ProposalKind = Literal["move_stage"]


class ProposalCreate(_In):
    """An action on a deal proposed for approval (`POST /api/deals/{deal_id}/proposals`): it is
    filed in the proposer's inbox as a `ProposedAction` and runs once when approved there. The
    deal is the one in the path. So far the one kind is `move_stage`, with `StageProposal` params
    (typed, so that a request the schema accepts is refused only by the data: a 409)."""

    kind: ProposalKind = Field(description="the ActionKind proposed")
    params: StageProposal


class OutboxMessageOut(_Out):
    """An approved email and its delivery: `message_id` is the RFC 5322 Message-ID it carries."""

    id: int
    message_id: str
    to_addr: str | None
    subject: str
    body: str
    status: OutboxStatus
    attempts: int
    last_error: str | None
    rep_id: int | None
    account_id: int | None
    deal_id: int | None
    created_at: dt.datetime
    sent_at: dt.datetime | None


class WorkflowRunOut(_Out):
    """A Temporal workflow the CRM asked for (`workflow_id` is its id on the cluster)."""

    workflow_id: str
    kind: WorkflowKind
    status: WorkflowRunStatus
    deal_id: int | None
    reminder_id: int | None
    outbox_id: int | None
    created_at: dt.datetime
    started_at: dt.datetime | None
