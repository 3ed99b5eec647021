"""The crews' one door to the CRM: plain functions over a sync SQLAlchemy `Session` (lookups,
analytics, query planning and computed answers, lead scores, memory search, recommendations,
approved actions), and the CRM types they return, re-exported for the crews. Crews import no
`crm` module; tools import no crew."""
