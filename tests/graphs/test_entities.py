"""Entity resolution (graphs/entities.py) against the Maven CRM export imported into the real
PostgreSQL of the test session."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from contracts import Entities
from crm.names import NameIndex
from graphs.entities import parse_period, resolve_entities
from tests.conftest import EVAL_DIR, MAVEN_DIR
from tools.names import name_index, names_read_once

TODAY = dt.date(2017, 12, 31)  # the Maven export's reference date


@pytest.fixture
def session(maven_db: Engine) -> Iterator[Session]:
    with Session(maven_db) as s:
        yield s


def _keys(entities: Entities) -> set[tuple[str, str]]:
    return {(e.kind, e.key) for e in entities.items}


def _csv(name: str) -> list[dict[str, str]]:
    with (MAVEN_DIR / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _expected_from_csv(message: str) -> set[tuple[str, str]]:
    """A naive oracle written from the raw export, independent of the index: every account,
    rep, manager and product whose full name appears in the message (as whole words), every
    sector followed by "sector", every regional office followed by "office"."""
    low = message.lower()

    def has(name: str) -> bool:
        return re.search(rf"(?<!\w){re.escape(name.lower())}(?!\w)", low) is not None

    out: set[tuple[str, str]] = set()
    for row in _csv("accounts.csv"):
        if has(row["account"]):
            out.add(("account", row["account"]))
        sector = row["sector"].replace("technolgy", "technology")
        if has(f"{sector} sector"):
            out.add(("sector", sector))
    for row in _csv("sales_teams.csv"):
        if has(row["sales_agent"]):
            out.add(("rep", row["sales_agent"]))
        if has(row["manager"]):
            out.add(("manager", row["manager"]))
        if has(f"{row['regional_office']} office") or has(f"{row['regional_office']} regional office"):
            out.add(("office", row["regional_office"]))
    for row in _csv("products.csv"):
        if has(row["product"]):
            out.add(("product", row["product"]))
    return out


DEV_QUESTIONS = [json.loads(line) for line in (EVAL_DIR / "crm_questions_dev.jsonl").open()]


def test_every_entity_of_the_dev_questions_is_found(session: Session) -> None:
    checked = 0
    for q in DEV_QUESTIONS:
        expected = _expected_from_csv(q["message"])
        got = resolve_entities(session, q["message"], None, today=TODAY)
        found = {k for k in _keys(got) if k[0] in {"account", "rep", "product", "sector", "office"}}
        found_named = found | {
            k for k in _keys(got) if k[0] == "manager" and k[1].lower() in q["message"].lower()
        }
        assert expected == found_named, (q["id"], q["message"], got.items)
        checked += len(expected)
        for e in got.items:
            if e.kind in ("account", "rep", "product"):
                assert e.id is not None, e
    assert checked >= 60  # nearly every dev question names something


def test_periods_of_the_dev_questions(session: Session) -> None:
    by_id = {q["id"]: q for q in DEV_QUESTIONS}
    got = resolve_entities(session, by_id["q001"]["message"], None, today=TODAY)
    assert got.period is not None
    assert (got.period.start, got.period.end, got.period.label) == ("2017-03-01", "2017-04-01", "March 2017")
    nov = resolve_entities(session, by_id["q047"]["message"], None, today=TODAY).period
    assert nov is not None and (nov.start, nov.end) == ("2017-11-01", "2017-12-01")
    # questions without a date get none
    assert resolve_entities(session, by_id["q016"]["message"], None, today=TODAY).period is None


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("what's kami bicknell's win rate?", {("rep", "Kami Bicknell")}),
        ("How is Bicknell doing this year?", {("rep", "Kami Bicknell")}),
        ("how many deals did kami close", {("rep", "Kami Bicknell")}),
        ("Revenue from xx holding and XX-ZOBAM", {("account", "Xx-holding"), ("account", "Xx-zobam")}),
        ("largest deal with DAMBASE", {("account", "dambase")}),
        ("total for gtxpro vs GTX Plus Pro", {("product", "GTX Pro"), ("product", "GTX Plus Pro")}),
        ("gtk500 revenue", {("product", "GTK 500")}),
        ("What do we know about Acme?", {("account", "Acme Corporation")}),
        ("Deals with the New York Inquirer", {("account", "The New York Inquirer")}),
        ("open deals with Vehement", {("account", "Vehement Capital Partners")}),
        ("Everything on Gekko & Co.", {("account", "Gekko & Co")}),
        ("How is Summer Sewald's team doing?", {("manager", "Summer Sewald")}),
        ("Which reps report to Rocco?", {("manager", "Rocco Neubert")}),
        ("who does carl lin report to", {("rep", "Carl Lin"), ("manager", "Summer Sewald")}),
        ("Who manages Anna Snelling?", {("rep", "Anna Snelling"), ("manager", "Dustin Brinkmann")}),
        ("win rate of the east office", {("office", "East")}),
        ("Top agent in the Central region", {("office", "Central")}),
        ("retail accounts with more than 1000 employees", {("sector", "retail")}),
        ("how many tech companies do we have", {("sector", "technology")}),
        ("status of 1c1i7a6r", {("deal", "1C1I7A6R")}),
        ("Move deal Z063OYW0 to negotiation", {("deal", "Z063OYW0"), ("stage", "negotiation")}),
        ("Mark opportunity HAXMC4IX as lost", {("deal", "HAXMC4IX"), ("stage", "lost")}),
        ("How many deals are in the engaging stage?", {("stage", "engaging")}),
        ("Which won deals closed in Q2?", {("stage", "won")}),
    ],
)
def test_new_phrasings(session: Session, message: str, expected: set[tuple[str, str]]) -> None:
    got = resolve_entities(session, message, None, today=TODAY)
    assert _keys(got) == expected, got.items


@pytest.mark.parametrize(
    "message",
    [
        "Hi there!",
        "Write a proposal for the client",  # "proposal" is not the stage here
        "How many deals has she won?",  # "won" is a verb here
        "See you this summer",  # a manager's first name, but an everyday word
        "What services do you offer?",  # a sector name without sector context
        "Let's head west after the meeting",
        "What can you do?",
    ],
)
def test_ordinary_words_are_not_entities(session: Session, message: str) -> None:
    assert resolve_entities(session, message, None, today=TODAY).items == []


def test_mentions_point_at_the_words_used(session: Session) -> None:
    got = resolve_entities(session, "What is Kami Bicknell's win rate with dambase?", None, today=TODAY)
    assert [(e.kind, e.mention) for e in got.items] == [("rep", "Kami Bicknell"), ("account", "dambase")]


def test_follow_up_with_a_pronoun_keeps_the_rep_and_adds_the_manager(session: Session) -> None:
    first = resolve_entities(session, "What is Kami Bicknell's win rate?", None, today=TODAY)
    follow = resolve_entities(session, "and his manager?", first, today=TODAY)
    assert [(e.kind, e.key) for e in follow.items] == [("rep", "Kami Bicknell"), ("manager", "Summer Sewald")]
    office = resolve_entities(session, "Which office is she in?", first, today=TODAY)
    assert ("office", "West") in _keys(office)


def test_what_about_replaces_the_named_kind_and_keeps_the_rest(session: Session) -> None:
    first = resolve_entities(
        session, "How many GTX Pro deals did Kami Bicknell win in March 2017?", None, today=TODAY
    )
    follow = resolve_entities(session, "What about Cassey Cress?", first, today=TODAY)
    assert [(e.kind, e.key) for e in follow.items] == [("rep", "Cassey Cress"), ("product", "GTX Pro")]
    assert follow.period == first.period


def test_that_account_and_them_refer_back(session: Session) -> None:
    first = resolve_entities(session, "How much revenue have we won from Hottechi?", None, today=TODAY)
    for msg in ("Draft a follow-up email to that account", "what about their open deals?", "Who owns them?"):
        assert _keys(resolve_entities(session, msg, first, today=TODAY)) == {("account", "Hottechi")}, msg


def _after(session: Session, previous: Entities, reply: str) -> Entities:
    """`previous` with the records `reply` named that it lacks, as the chat graph passes them."""
    said = resolve_entities(session, reply, None, today=TODAY)
    return previous.model_copy(update={"answered": [e for e in said.items if e.kind != "stage"]})


def test_a_follow_up_points_at_what_the_last_answer_named(session: Session) -> None:
    first = resolve_entities(session, "Who sold the most in the Central office?", None, today=TODAY)
    prev = _after(session, first, "Darcel Schlecht has the highest won revenue in the Central office.")
    # "that rep" is the rep of the answer, alone
    assert _keys(resolve_entities(session, "How many open deals does that rep have?", prev, today=TODAY)) == {
        ("rep", "Darcel Schlecht")
    }
    first = resolve_entities(session, "Which product sells best?", None, today=TODAY)
    prev = _after(session, first, "GTX Pro has the highest won revenue: $3,510,578.")
    assert _keys(resolve_entities(session, "and its list price?", prev, today=TODAY)) == {
        ("product", "GTX Pro")
    }
    # a person pronoun skips the answer's office for its person
    first = resolve_entities(session, "Where does Kami Bicknell work?", None, today=TODAY)
    prev = _after(session, first, "Kami Bicknell works in the West office; her manager is Summer Sewald.")
    follow = resolve_entities(session, "who else reports to her?", prev, today=TODAY)
    assert ("manager", "Summer Sewald") in _keys(follow)
    # "that office" points at the office alone, whoever brought it in
    first = resolve_entities(session, "Which office is Kami Bicknell in?", None, today=TODAY)
    assert _keys(resolve_entities(session, "How many reps does that office have?", first, today=TODAY)) == {
        ("office", "West")
    }


def test_which_of_them_chooses_among_the_records_the_answer_listed(session: Session) -> None:
    first = resolve_entities(session, "Which telecom accounts do we have?", None, today=TODAY)
    prev = _after(session, first, "The telecom accounts: Faxquote, Gogozoom and Initech.")
    follow = resolve_entities(session, "Which of them is the oldest?", prev, today=TODAY)
    assert [e.key for e in follow.of("account")] == ["Faxquote", "Gogozoom", "Initech"]
    # a later "that one" is the one the next answer named first
    prev = _after(
        session, follow, "Of those 3 accounts, Initech was founded first; the others: Faxquote, Gogozoom."
    )
    assert _keys(resolve_entities(session, "and that one's revenue?", prev, today=TODAY)) >= {
        ("account", "Initech")
    }


def test_a_message_ending_on_that_points_at_the_answers_record(session: Session) -> None:
    first = resolve_entities(session, "Which sector has the most accounts?", None, today=TODAY)
    prev = _after(session, first, "The retail sector has the most accounts: 17 accounts.")
    assert _keys(resolve_entities(session, "How many accounts is that?", prev, today=TODAY)) == {
        ("sector", "retail")
    }


def test_no_carry_without_a_reference(session: Session) -> None:
    first = resolve_entities(session, "How much revenue have we won from Hottechi?", None, today=TODAY)
    assert resolve_entities(session, "Thanks, that's all", first, today=TODAY).items == []
    assert _keys(resolve_entities(session, "Revenue from Silis?", first, today=TODAY)) == {
        ("account", "Silis")
    }


def test_previous_entities_may_come_back_from_the_checkpoint_as_a_dict(session: Session) -> None:
    first = resolve_entities(session, "Kami Bicknell's open deals", None, today=TODAY)
    follow = resolve_entities(session, "and her win rate?", first.model_dump(), today=TODAY)
    assert _keys(follow) == {("rep", "Kami Bicknell")}


@pytest.mark.parametrize(
    ("message", "start", "end"),
    [
        ("deals engaged in March 2017", "2017-03-01", "2017-04-01"),
        ("won in mar 2017?", "2017-03-01", "2017-04-01"),
        ("Q1 2017 revenue", "2017-01-01", "2017-04-01"),
        ("revenue for 2017 Q2", "2017-04-01", "2017-07-01"),
        ("first quarter of 2016", "2016-01-01", "2016-04-01"),
        ("win rate this quarter", "2017-10-01", "2018-01-01"),
        ("win rate last quarter", "2017-07-01", "2017-10-01"),
        ("deals closed last month", "2017-11-01", "2017-12-01"),
        ("forecast for next month", "2018-01-01", "2018-02-01"),
        ("how many deals in 2016", "2016-01-01", "2017-01-01"),
        ("lost in the last 90 days", "2017-10-03", "2018-01-01"),
        ("deals engaged in October", "2017-10-01", "2017-11-01"),
        ("from March to May 2017", "2017-03-01", "2017-06-01"),
        ("this year so far", "2017-01-01", "2018-01-01"),
        ("since June 2017", "2017-06-01", "2018-01-01"),
        ("won in the first half of 2016", "2016-01-01", "2016-07-01"),
        ("revenue in H2 2017", "2017-07-01", "2018-01-01"),
        ("deals closed in the second half", "2017-07-01", "2018-01-01"),
    ],
)
def test_parse_period(message: str, start: str, end: str) -> None:
    p = parse_period(message, TODAY)
    assert p is not None, message
    assert (p.start, p.end) == (start, end), p


@pytest.mark.parametrize(
    "message",
    [
        "May I ask something?",
        "stuck for more than 90 days",
        "accounts with 1,000 employees",
        "founded before 1990",
    ],
)
def test_no_period(message: str) -> None:
    assert parse_period(message, TODAY) is None


def test_index_reloads_after_the_crm_changes(session: Session, maven_db: Engine) -> None:
    before = name_index(session)
    assert name_index(session) is before  # cached while nothing changes
    with Session(maven_db) as s, s.begin():
        s.execute(text("INSERT INTO accounts (name, sector) VALUES ('Quuxcorp Industries', 'retail')"))
    try:
        got = resolve_entities(session, "What do we know about Quuxcorp Industries?", None, today=TODAY)
        assert _keys(got) == {("account", "Quuxcorp Industries")}
    finally:
        with Session(maven_db) as s, s.begin():
            s.execute(text("DELETE FROM accounts WHERE name = 'Quuxcorp Industries'"))
    assert isinstance(name_index(session), NameIndex)


def test_within_a_turn_the_names_version_is_read_once(session: Session, maven_db: Engine) -> None:
    with names_read_once():
        before = name_index(session)
        with Session(maven_db) as s, s.begin():
            s.execute(text("INSERT INTO accounts (name, sector) VALUES ('Quuxcorp Holdings', 'retail')"))
        try:
            assert name_index(session) is before  # the turn's first read stands for the turn
            with names_read_once():  # a new turn reads it again
                assert name_index(session) is not before
        finally:
            with Session(maven_db) as s, s.begin():
                s.execute(text("DELETE FROM accounts WHERE name = 'Quuxcorp Holdings'"))
