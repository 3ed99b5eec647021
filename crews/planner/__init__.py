"""The query planner over the whole CRM (shared by the pipeline and discovery crews; it answers
no intent of its own): see `crews.planner.flow`."""

from crews.planner.flow import answer_over_crm

__all__ = ["answer_over_crm"]
