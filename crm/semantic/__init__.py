"""Questions over the whole CRM: the semantic layer (`layer`: entities, attributes, metrics, in
one place), the structured query a planner fills from its closed lists (`query`), and its SQL
(`sql`). See each module."""

from crm.semantic.layer import FIELDS, METRICS, describe
from crm.semantic.query import Condition, MetricCondition, Order, SemanticQuery
from crm.semantic.sql import ResultRow, SemanticResult, run_query, snap_values

__all__ = [
    "FIELDS",
    "METRICS",
    "Condition",
    "MetricCondition",
    "Order",
    "ResultRow",
    "SemanticQuery",
    "SemanticResult",
    "describe",
    "run_query",
    "snap_values",
]
