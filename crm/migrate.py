"""Schema migrations (Alembic) and the sync of configured pipeline stages into the database."""

from __future__ import annotations

from decimal import Decimal

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from config.files import PipelineConfig, load_pipeline
from config.settings import REPO_ROOT
from crm.db import make_engine, session_scope
from crm.models import Deal, PipelineStage


def alembic_config(url: str) -> Config:
    """Alembic's config for this repository with the target URL attached (see migrations/env.py)."""
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.attributes["url"] = url
    return cfg


def sync_pipeline_stages(session: Session, pipeline: PipelineConfig | None = None) -> None:
    """Upsert the stages of `config/pipeline.yaml` into `pipeline_stages`.

    A stage that left the YAML is deleted only if no deal uses it; otherwise ValueError names it,
    since dropping it would orphan those deals.
    """
    pipeline = pipeline or load_pipeline()
    for position, stage in enumerate(pipeline.stages):
        row = {
            "key": stage.key,
            "name": stage.name,
            "position": position,
            "probability": Decimal(str(stage.probability)),
            "is_closed": stage.closed,
            "is_won": stage.won,
        }
        stmt = insert(PipelineStage).values(**row)
        session.execute(stmt.on_conflict_do_update(index_elements=["key"], set_=row))
    keep = {s.key for s in pipeline.stages}
    for key in session.scalars(select(PipelineStage.key)).all():
        if key in keep:
            continue
        used = session.scalar(select(Deal.id).where(Deal.stage == key).limit(1))
        if used is not None:
            raise ValueError(f"stage {key!r} was removed from pipeline.yaml but deals still use it")
        session.execute(delete(PipelineStage).where(PipelineStage.key == key))


def upgrade(url: str, engine: Engine | None = None) -> None:
    """Apply all migrations to `url`, then sync the pipeline stages. Idempotent."""
    command.upgrade(alembic_config(url), "head")
    own = engine is None
    engine = engine or make_engine(url)
    try:
        with session_scope(engine) as session:
            sync_pipeline_stages(session)
    finally:
        if own:
            engine.dispose()
