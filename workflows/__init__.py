"""Durable time-based work on Temporal: reminders that fire and escalate, the outbox's delivery,
the onboarding of a won deal, scheduled agents, and the dispatch of workflows the CRM asked for.

Workflow modules are deterministic (no I/O, no clocks but Temporal's); everything that touches the
database, SMTP or Redis is an activity (`workflows.activities`). `workflows.worker` runs both.
"""
