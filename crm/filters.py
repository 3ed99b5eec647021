"""`DealFilter`: one description of a slice of deals, shared by the deal list (repository), the
metrics (analytics) and the chat tools, so "Kami's open deals in Q3" means the same everywhere."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from config.files import PipelineConfig, load_pipeline
from crm.errors import Inconsistent, Invalid, NotFound
from crm.lookup import resolve_id
from crm.models import Account, Deal, Product, SalesRep

FilterStatus = Literal["open", "won", "lost", "closed"]


class DealFilter(BaseModel):
    """Which deals to count or list. Every field narrows the set (AND); None = no condition.

    - `rep`, `account`, `product`: an id (int) or a name, matched case-insensitively (and, if that
      fails, ignoring punctuation: "GTXPro" = "GTX Pro"). An unknown one is `Inconsistent(field)`.
    - `manager`, `office` (the rep's regional office), `series` (product series), `sector` (account
      sector): case-insensitive exact values; a value no record has is `Inconsistent(field)`.
    - `stages`: stage keys or names (any of them); `status`: open (not closed), won, lost, or
      closed (won or lost), per `config/pipeline.yaml`.
    - `engaged_from/to`, `closed_from/to`: inclusive date bounds on engage_date / close_date;
      deals without that date are excluded once a bound is given. A range whose end is before its
      start is `Invalid(field of the end)`.
    - `has_account`: False only deals with no account attached, True only deals with one.
    - `rep_ids`: only deals of these reps: the caller's reading scope (`Caller.read_rep_ids`),
      set by the API from the credential, never from a query string; None = every rep.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rep: int | str | None = None
    manager: str | None = None
    office: str | None = None
    product: int | str | None = None
    series: str | None = None
    account: int | str | None = None
    sector: str | None = None
    has_account: bool | None = None
    stages: list[str] | None = Field(None, description="stage keys or names")
    status: FilterStatus | None = None
    engaged_from: dt.date | None = None
    engaged_to: dt.date | None = None
    closed_from: dt.date | None = None
    closed_to: dt.date | None = None
    rep_ids: frozenset[int] | None = Field(None, description="only deals of these reps (the caller's scope)")

    @field_validator("stages", mode="before")
    @classmethod
    def _one_stage(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


def deal_select(*columns: Any) -> Select[Any]:
    """`SELECT columns FROM deals` outer-joined to accounts, products and sales_reps, the joins
    that `deal_conditions` relies on."""
    return (
        select(*columns)
        .select_from(Deal)
        .outerjoin(Account, Deal.account_id == Account.id)
        .outerjoin(Product, Deal.product_id == Product.id)
        .outerjoin(SalesRep, Deal.rep_id == SalesRep.id)
    )


def status_condition(status: FilterStatus, pipeline: PipelineConfig | None = None) -> ColumnElement[bool]:
    """SQL condition for a deal status per the configured pipeline."""
    p = pipeline or load_pipeline()
    keys = {
        "open": p.open_keys,
        "won": [p.won_key],
        "lost": p.lost_keys,
        "closed": [p.won_key, *p.lost_keys],
    }[status]
    return Deal.stage.in_(keys)


def _ref(session: Session, model: Any, ref: int | str, field: str) -> int:
    try:
        return resolve_id(session, model, ref)
    except NotFound as exc:
        kind = "id" if isinstance(ref, int) else "named"
        raise Inconsistent(field, f"no {exc.entity} {kind} {ref!r}") from None
    except Invalid as exc:
        raise Inconsistent(field, exc.reason) from None


def _value(session: Session, col: Any, value: str, field: str, what: str) -> ColumnElement[bool]:
    cond: ColumnElement[bool] = func.lower(col) == value.strip().lower()
    if session.scalar(select(col).where(cond).limit(1)) is None:
        raise Inconsistent(field, f"no {what} {value!r}")
    return cond


def deal_conditions(session: Session, f: DealFilter) -> list[ColumnElement[bool]]:
    """SQL conditions of `f` for a query built with `deal_select`. Resolves names to ids first
    (one small query each); raises `Inconsistent(field, reason)` for an unknown name, value or
    stage and `Invalid(field, reason)` for a date range whose end is before its start."""
    pipeline = load_pipeline()
    conds: list[ColumnElement[bool]] = []
    if f.rep_ids is not None:
        conds.append(Deal.rep_id.in_(f.rep_ids))
    if f.rep is not None:
        conds.append(Deal.rep_id == _ref(session, SalesRep, f.rep, "rep"))
    if f.account is not None:
        conds.append(Deal.account_id == _ref(session, Account, f.account, "account"))
    if f.has_account is not None:
        conds.append(Deal.account_id.is_not(None) if f.has_account else Deal.account_id.is_(None))
    if f.product is not None:
        conds.append(Deal.product_id == _ref(session, Product, f.product, "product"))
    if f.manager is not None:
        conds.append(_value(session, SalesRep.manager, f.manager, "manager", "manager named"))
    if f.office is not None:
        conds.append(_value(session, SalesRep.regional_office, f.office, "office", "regional office"))
    if f.series is not None:
        conds.append(_value(session, Product.series, f.series, "series", "product series"))
    if f.sector is not None:
        conds.append(_value(session, Account.sector, f.sector, "sector", "accounts in sector"))
    if f.stages:
        keys = []
        for text in f.stages:
            stage = pipeline.resolve(text)
            if stage is None:
                known = ", ".join(s.key for s in pipeline.stages)
                raise Inconsistent("stages", f"unknown stage {text!r} (known: {known})")
            keys.append(stage.key)
        conds.append(Deal.stage.in_(keys))
    if f.status is not None:
        conds.append(status_condition(f.status, pipeline))
    for col, lo, hi, name in (
        (Deal.engage_date, f.engaged_from, f.engaged_to, "engaged"),
        (Deal.close_date, f.closed_from, f.closed_to, "closed"),
    ):
        if lo is not None and hi is not None and hi < lo:
            raise Invalid(f"{name}_to", f"{hi} is before {name}_from {lo}")
        if lo is not None:
            conds.append(col >= lo)
        if hi is not None:
            conds.append(col <= hi)
    return conds
