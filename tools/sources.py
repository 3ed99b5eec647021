"""Citations: the CRM records a reply was grounded on, as `contracts.Source` (shown to the rep)."""

from __future__ import annotations

from typing import Any

from contracts import Source
from crm.schemas import AccountBrief, DealOut

__all__ = ["account_source", "deal_source", "metric_source"]


def deal_source(d: DealOut) -> Source:
    """A deal as a citation: id = opportunity id; data = account, product, rep, stage, ISO dates
    and value (USD)."""
    label = f"Deal {d.external_id}" + (f" ({d.account_name})" if d.account_name else "")
    return Source(
        kind="deal",
        id=d.external_id,
        label=label,
        data={
            "deal_id": d.id,
            "account": d.account_name,
            "product": d.product_name,
            "rep": d.rep_name,
            "stage": d.stage,
            "engage_date": d.engage_date.isoformat() if d.engage_date else None,
            "close_date": d.close_date.isoformat() if d.close_date else None,
            "value": d.value,
        },
    )


def account_source(a: AccountBrief, **data: Any) -> Source:
    """An account as a citation: id = database id; data = sector plus `data`."""
    return Source(kind="account", id=str(a.id), label=a.name, data={"sector": a.sector, **data})


def metric_source(name: str, label: str, value: Any, **data: Any) -> Source:
    """A computed figure as a citation: id = the metric's name; data = value plus `data`."""
    return Source(kind="metric", id=name, label=label, data={"value": value, **data})
