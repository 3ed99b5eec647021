"""crm.repository against the real database: CRUD, pagination, the stage-move rules, the logs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm import repository as repo
from crm.errors import Conflict, Invalid, NotFound
from crm.filters import DealFilter
from crm.models import DealStageHistory, Event
from crm.schemas import (
    AccountCreate,
    AccountUpdate,
    ContactCreate,
    ContactUpdate,
    DealCreate,
    DealUpdate,
    EventCreate,
    ProductCreate,
    ProductUpdate,
    RecommendationCreate,
    RecommendationUpdate,
    ReminderCreate,
    ReminderUpdate,
    SalesRepCreate,
    SalesRepUpdate,
)

TODAY = dt.date(2024, 5, 10)


@pytest.fixture
def s(clean_db: Engine) -> Iterator[Session]:
    with Session(clean_db) as session:
        yield session
        session.rollback()


@pytest.fixture
def refs(s: Session) -> dict[str, int]:
    """An account, a product and a rep to hang deals on."""
    acc = repo.create_account(s, AccountCreate(name="Cancity", sector="retail"))
    prod = repo.create_product(s, ProductCreate(name="GTX Pro", series="GTX", list_price=4821))
    rep = repo.create_rep(
        s, SalesRepCreate(name="Darcel Schlecht", manager="Rocco Neubert", regional_office="Central")
    )
    return {"account": acc.id, "product": prod.id, "rep": rep.id}


def events(s: Session, kind: str) -> list[Event]:
    return list(s.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


# --- accounts, contacts, products, reps ------------------------------------------------------


def test_account_crud_and_rules(s: Session) -> None:
    parent = repo.create_account(s, AccountCreate(name="Inity", sector="software", revenue_musd=123.45))
    assert parent.revenue_musd == 123.45 and parent.parent_name is None
    child = repo.create_account(s, AccountCreate(name="dambase", parent_account_id=parent.id))
    assert repo.get_account(s, child.id).parent_name == "Inity"
    with pytest.raises(Conflict, match="already exists"):
        repo.create_account(s, AccountCreate(name="INITY"))  # names are unique in any case
    with pytest.raises(Invalid) as err:
        repo.create_account(s, AccountCreate(name="Orphan", parent_account_id=999))
    assert err.value.field == "parent_account_id"
    with pytest.raises(Invalid, match="ancestor"):
        repo.update_account(s, parent.id, AccountUpdate(parent_account_id=child.id))  # a cycle
    with pytest.raises(Invalid) as err:
        repo.update_account(s, parent.id, AccountUpdate(name=None))
    assert err.value.field == "name"
    updated = repo.update_account(s, child.id, AccountUpdate(sector="technology"))
    assert (updated.sector, updated.name, updated.parent_account_id) == ("technology", "dambase", parent.id)
    with pytest.raises(NotFound, match="account 999 not found"):
        repo.get_account(s, 999)
    with pytest.raises(NotFound):
        repo.update_account(s, 999, AccountUpdate(sector="x"))


def test_pagination_is_stable_and_counts_all(s: Session) -> None:
    for name in ["Echo", "alpha", "Delta", "Charlie", "Bravo"]:
        repo.create_account(s, AccountCreate(name=name, sector="retail" if name != "Echo" else "media"))
    page = repo.list_accounts(s, limit=2, offset=2)
    assert (page.total, page.limit, page.offset) == (5, 2, 2)
    assert [a.name for a in page.items] == ["Charlie", "Delta"]
    everything = [a.name for off in (0, 2, 4) for a in repo.list_accounts(s, limit=2, offset=off).items]
    assert everything == ["alpha", "Bravo", "Charlie", "Delta", "Echo"]
    assert repo.list_accounts(s, sector="RETAIL").total == 4
    assert [a.name for a in repo.list_accounts(s, q="ELT").items] == ["Delta"]
    with pytest.raises(Invalid) as err:
        repo.list_accounts(s, limit=0)
    assert err.value.field == "limit"


def test_contacts_products_reps(s: Session, refs: dict[str, int]) -> None:
    c = repo.create_contact(
        s,
        ContactCreate(
            account_id=refs["account"], first_name="Ada", last_name="Byron", email="ada@cancity.com"
        ),
    )
    assert c.account_name == "Cancity"
    with pytest.raises(Conflict, match="email"):
        repo.create_contact(s, ContactCreate(first_name="A", last_name="B", email="ADA@cancity.com"))
    with pytest.raises(Invalid) as err:
        repo.create_contact(s, ContactCreate(account_id=999, first_name="A", last_name="B"))
    assert err.value.field == "account_id"
    assert repo.update_contact(s, c.id, ContactUpdate(title="CTO")).title == "CTO"
    assert repo.list_contacts(s, account_id=refs["account"], q="byr").total == 1

    assert repo.update_product(s, refs["product"], ProductUpdate(list_price=5000.5)).list_price == 5000.5
    with pytest.raises(Conflict):
        repo.create_product(s, ProductCreate(name="gtx pro"))
    assert repo.list_products(s, series="gtx").total == 1

    rep = repo.update_rep(s, refs["rep"], SalesRepUpdate(email="darcel@example.com"))
    assert (rep.email, rep.manager) == ("darcel@example.com", "Rocco Neubert")
    with pytest.raises(Conflict):
        repo.create_rep(s, SalesRepCreate(name="darcel schlecht"))
    assert repo.list_reps(s, office="central", manager="rocco neubert").total == 1
    with pytest.raises(NotFound, match="sales rep 999 not found"):
        repo.get_rep(s, 999)


# --- deals and the stage rules -------------------------------------------------------------


def test_create_deal_writes_history_and_event(s: Session, refs: dict[str, int]) -> None:
    deal = repo.create_deal(
        s, DealCreate(account_id=refs["account"], rep_id=refs["rep"], created_by="darcel")
    )
    assert deal.stage == "prospecting" and deal.status == "open" and deal.stage_name == "Prospecting"
    assert deal.external_id.startswith("FS-")
    assert (deal.account_name, deal.rep_name, deal.product_name) == ("Cancity", "Darcel Schlecht", None)
    (h,) = repo.deal_history(s, deal.id)
    assert (h.from_stage, h.to_stage, h.changed_by) == (None, "prospecting", "darcel")
    (ev,) = events(s, "deal.created")
    assert ev.deal_id == deal.id and ev.account_id == refs["account"]
    with pytest.raises(Conflict, match="external_id"):
        repo.create_deal(s, DealCreate(external_id=deal.external_id))
    with pytest.raises(Invalid) as err:
        repo.create_deal(s, DealCreate(product_id=999))
    assert err.value.field == "product_id"
    with pytest.raises(Invalid) as err:
        repo.create_deal(s, DealCreate(stage="limbo"))
    assert err.value.field == "stage"
    # entering a stage at creation follows its entry rules too
    with pytest.raises(Conflict, match="requires account, product"):
        repo.create_deal(s, DealCreate(stage="proposal"))
    engaged = repo.create_deal(s, DealCreate(stage="Engaging"), today=TODAY)
    assert engaged.engage_date == TODAY


def test_move_through_the_pipeline(s: Session, refs: dict[str, int]) -> None:
    deal = repo.create_deal(s, DealCreate(rep_id=refs["rep"]))
    moved = repo.move_deal_stage(s, deal.id, "engaging", "darcel", "first call", today=TODAY)
    assert (moved.stage, moved.engage_date) == ("engaging", TODAY)  # engaging fills engage_date
    with pytest.raises(Conflict, match="already in stage Engaging"):
        repo.move_deal_stage(s, deal.id, "engaging")
    with pytest.raises(Conflict, match="requires account"):
        repo.move_deal_stage(s, deal.id, "qualified")
    assert repo.get_deal(s, deal.id).stage == "engaging"  # nothing changed by the refused move
    repo.update_deal(s, deal.id, DealUpdate(account_id=refs["account"]))
    repo.move_deal_stage(s, deal.id, "Qualified")
    with pytest.raises(Conflict, match="requires product"):
        repo.move_deal_stage(s, deal.id, "proposal")
    repo.update_deal(s, deal.id, DealUpdate(product_id=refs["product"]))
    repo.move_deal_stage(s, deal.id, "proposal")
    # won needs an explicit close value: no guessing from the list price
    with pytest.raises(Conflict, match="requires value"):
        repo.move_deal_stage(s, deal.id, "won", today=TODAY)
    won = repo.move_deal_stage(
        s, deal.id, "Closed Won", "darcel", value=4500, today=TODAY + dt.timedelta(days=3)
    )
    assert (won.status, won.value, won.close_date) == ("won", 4500.0, TODAY + dt.timedelta(days=3))

    history = repo.deal_history(s, deal.id)
    assert [(h.from_stage, h.to_stage) for h in history] == [
        (None, "prospecting"),
        ("prospecting", "engaging"),
        ("engaging", "qualified"),
        ("qualified", "proposal"),
        ("proposal", "won"),
    ]
    assert history[1].note == "first call" and history[1].changed_by == "darcel"
    moves = events(s, "deal.stage_changed")
    assert len(moves) == 4
    assert moves[0].payload == {
        "from": "prospecting",
        "to": "engaging",
        "note": "first call",
        "set": {"engage_date": TODAY.isoformat()},
        "previous": {"engage_date": None},
    }
    assert moves[-1].payload["set"] == {"value": 4500.0, "close_date": "2024-05-13"}
    assert moves[-1].actor == "darcel"


def test_closed_deals_reopen_only_explicitly(s: Session, refs: dict[str, int]) -> None:
    deal = repo.create_deal(
        s, DealCreate(account_id=refs["account"], stage="engaging", value=900), today=TODAY
    )
    lost = repo.move_deal_stage(s, deal.id, "lost", note="budget cut", today=TODAY)
    assert (lost.status, lost.value, lost.close_date) == ("lost", 0.0, TODAY)  # a lost deal's value is 0
    with pytest.raises(Conflict, match="reopen=true"):
        repo.move_deal_stage(s, deal.id, "engaging")
    reopened = repo.move_deal_stage(s, deal.id, "engaging", "darcel", "back in play", reopen=True)
    assert (reopened.status, reopened.close_date, reopened.value) == ("open", None, None)
    history = [(h.from_stage, h.to_stage) for h in repo.deal_history(s, deal.id)]
    assert history[-2:] == [("engaging", "lost"), ("lost", "engaging")]
    with pytest.raises(Invalid) as err:
        repo.move_deal_stage(s, deal.id, "negotiation", close_date=TODAY)
    assert err.value.field == "close_date"


def test_update_deal_rules(s: Session, refs: dict[str, int]) -> None:
    deal = repo.create_deal(
        s, DealCreate(account_id=refs["account"], stage="engaging", engage_date=dt.date(2024, 1, 1))
    )
    with pytest.raises(Invalid) as err:
        repo.update_deal(s, deal.id, DealUpdate(engage_date=None))  # engaging requires it
    assert err.value.field == "engage_date"
    with pytest.raises(Invalid) as err:
        repo.update_deal(s, deal.id, DealUpdate(close_date=dt.date(2024, 2, 1)))  # open deals have none
    assert err.value.field == "close_date"
    with pytest.raises(Invalid) as err:
        repo.update_deal(s, deal.id, DealUpdate(rep_id=12345))
    assert err.value.field == "rep_id"
    updated = repo.update_deal(s, deal.id, DealUpdate(value=1234.5, product_id=refs["product"]))
    assert (updated.value, updated.product_name) == (1234.5, "GTX Pro")
    (ev,) = events(s, "deal.updated")
    assert ev.payload["changes"]["value"] == [None, 1234.5]
    won = repo.move_deal_stage(s, deal.id, "won", value=1000, close_date=dt.date(2024, 3, 1))
    assert won.close_date == dt.date(2024, 3, 1)
    with pytest.raises(Invalid, match="before engage_date"):
        repo.update_deal(s, deal.id, DealUpdate(close_date=dt.date(2023, 12, 1)))
    with pytest.raises(NotFound, match="deal 999 not found"):
        repo.update_deal(s, 999, DealUpdate(value=1))
    with pytest.raises(NotFound):
        repo.move_deal_stage(s, 999, "won")
    with pytest.raises(NotFound):
        repo.deal_history(s, 999)


def test_list_deals_filters_sorting_paging(s: Session, refs: dict[str, int]) -> None:
    other = repo.create_account(s, AccountCreate(name="Xx-holding"))
    for i, (acc, value) in enumerate([(refs["account"], 300), (other.id, 100), (refs["account"], None)]):
        repo.create_deal(
            s,
            DealCreate(
                external_id=f"D{i}",
                account_id=acc,
                rep_id=refs["rep"],
                stage="engaging",
                engage_date=dt.date(2017, 3, 1 + i),
                value=value,
            ),
        )
    repo.move_deal_stage(s, 1, "lost", today=dt.date(2017, 4, 1))
    assert repo.list_deals(s, DealFilter(account="cancity")).total == 2
    assert repo.list_deals(s, DealFilter(account="xx holding")).total == 1
    assert repo.list_deals(s, DealFilter(rep=refs["rep"], status="open")).total == 2
    assert repo.list_deals(s, DealFilter(stages=["lost"])).items[0].external_id == "D0"
    assert repo.list_deals(s, DealFilter(engaged_from=dt.date(2017, 3, 2))).total == 2
    by_value = repo.list_deals(s, sort="-value")
    assert [d.external_id for d in by_value.items] == ["D1", "D0", "D2"]  # 100, 0 (lost), no value last
    page = repo.list_deals(s, limit=1, offset=1)
    assert (page.total, [d.external_id for d in page.items]) == (3, ["D1"])
    with pytest.raises(Invalid) as err:
        repo.list_deals(s, DealFilter(account="Nope"))
    assert err.value.field == "account" and "Nope" in str(err.value)
    with pytest.raises(Invalid) as err:
        repo.list_deals(s, sort="luck")
    assert err.value.field == "sort"


# --- reminders, recommendations, events ----------------------------------------------------


def test_reminders(s: Session, refs: dict[str, int]) -> None:
    deal = repo.create_deal(s, DealCreate(account_id=refs["account"]))
    due = dt.datetime(2024, 6, 1, 9, tzinfo=dt.UTC)
    r = repo.create_reminder(
        s, ReminderCreate(rep_id=refs["rep"], deal_id=deal.id, due_at=due, message="call")
    )
    assert (r.status, r.account_id, r.escalation_level) == ("pending", refs["account"], 0)
    later = repo.create_reminder(s, ReminderCreate(due_at=due + dt.timedelta(days=1), message="email"))
    assert [x.id for x in repo.list_reminders(s).items] == [r.id, later.id]
    done = repo.update_reminder(s, r.id, ReminderUpdate(status="done"))
    assert done.status == "done"
    assert repo.list_reminders(s, status="pending").total == 1
    assert repo.list_reminders(s, due_before=due + dt.timedelta(hours=1)).total == 1
    (ev,) = events(s, "reminder.status_changed")
    assert ev.payload == {"reminder_id": r.id, "from": "pending", "to": "done"}
    with pytest.raises(Invalid) as err:
        repo.create_reminder(s, ReminderCreate(deal_id=999, due_at=due, message="x"))
    assert err.value.field == "deal_id"
    with pytest.raises(Invalid):
        repo.update_reminder(s, r.id, ReminderUpdate(message=None))
    with pytest.raises(NotFound):
        repo.get_reminder(s, 999)


def test_recommendations(s: Session, refs: dict[str, int]) -> None:
    low = repo.create_recommendation(s, RecommendationCreate(rep_id=refs["rep"], action="a", reason="r"))
    high = repo.create_recommendation(
        s,
        RecommendationCreate(
            account_id=refs["account"], action="b", reason="r", priority=5, sources={"deal": 1}
        ),
    )
    assert [x.id for x in repo.list_recommendations(s).items] == [high.id, low.id]
    accepted = repo.update_recommendation(s, high.id, RecommendationUpdate(status="accepted"), actor="darcel")
    assert accepted.status == "accepted" and accepted.sources == {"deal": 1}
    assert repo.list_recommendations(s, status="open").total == 1
    (ev,) = events(s, "recommendation.status_changed")
    assert (ev.actor, ev.payload["to"]) == ("darcel", "accepted")


def test_events(s: Session, refs: dict[str, int]) -> None:
    deal = repo.create_deal(s, DealCreate(account_id=refs["account"]))
    repo.move_deal_stage(s, deal.id, "engaging")
    note = repo.append_event(
        s, EventCreate(kind="chat.turn", thread_id="t-1", account_id=refs["account"], payload={"q": "hi"})
    )
    assert note.payload == {"q": "hi"}
    newest_first = repo.list_events(s)
    assert [e.kind for e in newest_first.items] == ["chat.turn", "deal.stage_changed", "deal.created"]
    assert repo.list_events(s, kind="deal.*").total == 2
    assert repo.list_events(s, thread_id="t-1").items[0].id == note.id
    assert repo.list_events(s, deal_id=deal.id).total == 2
    with pytest.raises(Invalid) as err:
        repo.append_event(s, EventCreate(kind="x", deal_id=999))
    assert err.value.field == "deal_id"
    assert s.scalar(select(DealStageHistory.id).where(DealStageHistory.deal_id == deal.id).limit(1))
