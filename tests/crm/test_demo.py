"""Demo seeding: deterministic, consistent, and only into an empty CRM."""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from collections.abc import Sequence

import pytest
from sqlalchemy import Engine, text

from crm.demo import generate_demo, seed_demo
from crm.embeddings import LocalE5Embedder
from crm.importer import import_export
from tests.conftest import DATA_TABLES, MAVEN_DIR

TODAY = dt.date(2026, 3, 16)
DUMPED = (
    "accounts",
    "contacts",
    "products",
    "sales_reps",
    "deals",
    "deal_stage_history",
    "reminders",
    "events",
    "documents",
)


class MemoE5(LocalE5Embedder):
    """The real local model, remembering vectors of texts it has seen: re-seeding the same demo
    then costs no model time (embedding 50 notes takes 1-3 s on 2 cores)."""

    def __init__(self) -> None:
        super().__init__()
        self.memo: dict[str, list[float]] = {}

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        self.memo.update(zip(todo, super().embed_documents(todo), strict=True))
        return [self.memo[t] for t in texts]


@pytest.fixture(scope="module")
def embedder() -> MemoE5:
    return MemoE5()


def dump(engine: Engine) -> dict[str, list[str]]:
    """Every row of every seeded table as text, in id order."""
    with engine.connect() as conn:
        return {
            t: list(conn.execute(text(f"SELECT x::text FROM {t} x ORDER BY id")).scalars()) for t in DUMPED
        }


def truncate(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE"))


def test_seed_is_deterministic_and_realistic(clean_db: Engine, embedder: MemoE5) -> None:
    counts = seed_demo(clean_db, seed=42, today=TODAY, embedder=embedder)
    assert counts == {
        "accounts": 25,
        "contacts": 60,
        "products": 6,
        "sales_reps": 10,
        "deals": 300,
        "deal_stage_history": counts["deal_stage_history"],
        "reminders": 6,
        "documents": 50,
        "events": 51,
    }
    first = dump(clean_db)
    assert {t: len(rows) for t, rows in first.items() if t != "deal_stage_history"} == {
        k: v for k, v in counts.items() if k != "deal_stage_history"
    }

    with clean_db.connect() as conn:
        stages: Counter[str] = Counter(
            dict(conn.execute(text("SELECT stage, count(*) FROM deals GROUP BY stage")).tuples().all())
        )
        assert set(stages) == {
            "prospecting",
            "engaging",
            "qualified",
            "proposal",
            "negotiation",
            "won",
            "lost",
        }
        assert all(n >= 10 for n in stages.values())
        # closed won near list price, lost worth 0, dates in order, closed deals have a close date
        bad = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE d.stage = 'won' AND (d.value < 0.85 * p.list_price"
                "   OR d.value > 1.1 * p.list_price OR d.close_date IS NULL)),"
                " count(*) FILTER (WHERE d.stage = 'lost' AND (d.value <> 0 OR d.close_date IS NULL)),"
                " count(*) FILTER (WHERE d.stage NOT IN ('won','lost') AND d.close_date IS NOT NULL),"
                " count(*) FILTER (WHERE d.close_date > :today OR d.engage_date > :today)"
                " FROM deals d JOIN products p ON p.id = d.product_id"
            ),
            {"today": TODAY},
        ).one()
        assert tuple(bad) == (0, 0, 0, 0)
        # the history of every deal is a path ending in its current stage, in time order
        paths = conn.execute(
            text(
                "SELECT d.stage, array_agg(h.to_stage ORDER BY h.changed_at),"
                " array_agg(h.from_stage ORDER BY h.changed_at) FROM deals d"
                " JOIN deal_stage_history h ON h.deal_id = d.id GROUP BY d.id, d.stage"
            )
        ).all()
        assert len(paths) == 300
        order = ["prospecting", "engaging", "qualified", "proposal", "negotiation"]
        for stage, to_stages, from_stages in paths:
            assert to_stages[-1] == stage and to_stages[0] == "prospecting" and from_stages[0] is None
            assert from_stages[1:] == to_stages[:-1]
            opens = [s for s in to_stages if s in order]
            assert opens == order[: len(opens)]
            if stage == "won":
                assert to_stages == [*order, "won"]
        # a few subsidiaries, contacts with e-mail and phone, reps in 3 offices with managers
        assert conn.scalar(text("SELECT count(*) FROM accounts WHERE parent_account_id IS NOT NULL")) >= 3
        assert (
            conn.scalar(
                text("SELECT count(*) FROM contacts WHERE email LIKE '%@%.example' AND phone IS NOT NULL")
            )
            == 60
        )
        offices = conn.execute(
            text("SELECT regional_office, count(DISTINCT manager) FROM sales_reps GROUP BY 1")
        ).all()
        assert len(offices) == 3 and all(n == 1 for _, n in offices)
        assert conn.scalar(text("SELECT count(*) FROM documents WHERE embedding IS NOT NULL")) == 50
        names = set(conn.execute(text("SELECT name FROM accounts")).scalars())
    with (MAVEN_DIR / "accounts.csv").open(encoding="utf-8") as fh:
        assert names.isdisjoint({r["account"] for r in csv.DictReader(fh)})

    truncate(clean_db)
    assert seed_demo(clean_db, seed=42, today=TODAY, embedder=embedder) == counts
    assert dump(clean_db) == first

    assert generate_demo(7, TODAY).deals != generate_demo(42, TODAY).deals


def test_seed_refuses_a_crm_with_data(clean_db: Engine, embedder: MemoE5) -> None:
    for seed_sql in (
        "INSERT INTO accounts (name) VALUES ('Someone Else Inc')",
        "INSERT INTO deals (external_id, stage) VALUES ('X-1', 'prospecting')",
        "INSERT INTO products (name) VALUES ('Widget')",
    ):
        truncate(clean_db)
        with clean_db.begin() as conn:
            conn.execute(text(seed_sql))
        before = dump(clean_db)
        assert seed_demo(clean_db, seed=2, today=TODAY, embedder=embedder) == {}
        assert dump(clean_db) == before
        assert sum(len(rows) for rows in before.values()) == 1

    truncate(clean_db)
    import_export(clean_db, MAVEN_DIR)
    assert seed_demo(clean_db, embedder=embedder) == {}
    with clean_db.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM deals WHERE external_id LIKE 'DEMO-%'")) == 0
        assert conn.scalar(text("SELECT count(*) FROM documents")) == 0
