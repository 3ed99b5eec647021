"""Build Flowstate's held-out evaluation sets from the raw Maven CRM data.

Usage: ``python eval/build_heldout.py [--data DIR] [--out DIR]``. ``--data`` defaults to
``../shared/data/maven-crm`` relative to the repository root, ``--out`` to this folder. Writes four
JSON-lines files, deterministically (fixed ids, lines sorted by id, keys sorted):

- ``questions_heldout.jsonl``: ``{"id", "family", "message", "intent", "answer", "kind", "tolerance"?}``
  in the line format of ``shared/eval/crm_questions_dev.jsonl``. ``kind`` = number | percent (in
  percentage points) | text (the reply names one of the strings) | set (the reply names every string).
- ``intents_heldout.jsonl``: ``{"id", "message", "intent"}``.
- ``multiturn_heldout.jsonl``: ``{"id", "turns": [{"message", "answer", "kind", "tolerance"?}, ...]}``.
- ``actions_heldout.jsonl``: ``{"id", "message", "history"?, "today"?, "expect": {"kind", "params"},
  "state"}``.

Every expected answer is computed here from the CSVs, next to the question's wording; nothing is typed
in by hand. Only the standard library is used (no Flowstate imports): the sets must not be shaped by
the implementation they judge.

Data conventions (shared/eval/README.md): pipeline product ``GTXPro`` is ``GTX Pro``; sector
``technolgy`` is ``technology``; win rate = won / (won + lost) in percent; open = Prospecting +
Engaging; revenue = close_value of Won deals; cycle = close_date - engage_date in days. A deal
belongs to a period by its close_date when the question is about winning, losing or closing, and by
its engage_date when it is about engaging.

"Now" is the data's own latest close date (``NOW``, 2017-12-31): "this quarter" is the quarter that
holds NOW (2017 Q4), "last quarter" the one before it (2017 Q3), "last month" the calendar month
before NOW's month (November 2017).

The sets are frozen once committed: never edit them (or this script) to fit the system.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "maven-crm"

PRODUCT_FIX = {"GTXPro": "GTX Pro"}
SECTOR_FIX = {"technolgy": "technology"}
OPEN = ("Prospecting", "Engaging")
MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Account:
    name: str
    sector: str
    year: int
    revenue: float  # millions of USD
    employees: int
    location: str
    parent: str  # "" when none


@dataclass(frozen=True)
class Deal:
    oid: str
    rep: str
    product: str
    account: str  # "" when none
    stage: str  # Prospecting | Engaging | Won | Lost
    engage: dt.date | None
    close: dt.date | None
    value: float  # 0 for open and lost deals

    @property
    def won(self) -> bool:
        return self.stage == "Won"

    @property
    def lost(self) -> bool:
        return self.stage == "Lost"

    @property
    def open(self) -> bool:
        return self.stage in OPEN

    @property
    def closed(self) -> bool:
        return self.stage in ("Won", "Lost")

    @property
    def cycle(self) -> int:
        assert self.engage is not None and self.close is not None
        return (self.close - self.engage).days


@dataclass(frozen=True)
class Data:
    accounts: dict[str, Account]
    prices: dict[str, float]  # product -> list price (USD)
    series: dict[str, str]  # product -> series
    manager: dict[str, str]  # rep -> manager
    office: dict[str, str]  # rep -> regional office
    deals: list[Deal]

    @property
    def now(self) -> dt.date:
        return max(d.close for d in self.deals if d.close is not None)


def _date(text: str) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def load(data_dir: Path) -> Data:
    """The four CSVs of ``data_dir``, with the spelling fixes applied."""
    accounts = {
        r["account"]: Account(
            name=r["account"],
            sector=SECTOR_FIX.get(r["sector"], r["sector"]),
            year=int(r["year_established"]),
            revenue=float(r["revenue"]),
            employees=int(r["employees"]),
            location=r["office_location"],
            parent=r["subsidiary_of"],
        )
        for r in _rows(data_dir / "accounts.csv")
    }
    products = _rows(data_dir / "products.csv")
    teams = _rows(data_dir / "sales_teams.csv")
    deals = [
        Deal(
            oid=r["opportunity_id"],
            rep=r["sales_agent"],
            product=PRODUCT_FIX.get(r["product"], r["product"]),
            account=r["account"],
            stage=r["deal_stage"],
            engage=_date(r["engage_date"]),
            close=_date(r["close_date"]),
            value=float(r["close_value"] or 0),
        )
        for r in _rows(data_dir / "sales_pipeline.csv")
    ]
    return Data(
        accounts=accounts,
        prices={r["product"]: float(r["sales_price"]) for r in products},
        series={r["product"]: r["series"] for r in products},
        manager={r["sales_agent"]: r["manager"] for r in teams},
        office={r["sales_agent"]: r["regional_office"] for r in teams},
        deals=deals,
    )


# --------------------------------------------------------------------------------------------------
# Metrics (all over an iterable of deals)


def n_won(deals: Iterable[Deal]) -> int:
    return sum(d.won for d in deals)


def n_lost(deals: Iterable[Deal]) -> int:
    return sum(d.lost for d in deals)


def n_open(deals: Iterable[Deal]) -> int:
    return sum(d.open for d in deals)


def revenue(deals: Iterable[Deal]) -> float:
    return sum(d.value for d in deals if d.won)


def win_rate(deals: Iterable[Deal]) -> float:
    """won / (won + lost) in percent, rounded to 0.1."""
    ds = list(deals)
    won, lost = n_won(ds), n_lost(ds)
    assert won + lost > 0, "win rate of no closed deal"
    return round(100 * won / (won + lost), 1)


def avg(values: Iterable[float]) -> float:
    vs = list(values)
    assert vs, "average of nothing"
    return round(sum(vs) / len(vs), 2)


def in_period(day: dt.date | None, start: dt.date, end: dt.date) -> bool:
    """``start <= day <= end`` (inclusive); False for no date."""
    return day is not None and start <= day <= end


def quarter(year: int, q: int) -> tuple[dt.date, dt.date]:
    start = dt.date(year, 3 * q - 2, 1)
    end = (dt.date(year + (q == 4), (3 * q) % 12 + 1, 1)) - dt.timedelta(days=1)
    return start, end


def month(year: int, m: int) -> tuple[dt.date, dt.date]:
    end = dt.date(year + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)
    return dt.date(year, m, 1), end


def year_span(year: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, 1, 1), dt.date(year, 12, 31)


def quarter_of(day: dt.date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def top(scores: Mapping[str, float], n: int = 1, *, lowest: bool = False) -> list[str]:
    """The ``n`` best keys (highest, or lowest); asserts that the cut is not a tie, so a question
    built on it has one right answer."""
    ranked = sorted(scores.items(), key=lambda kv: (kv[1] if lowest else -kv[1], kv[0]))
    assert len(ranked) >= n, "not enough candidates"
    if len(ranked) > n:
        assert ranked[n - 1][1] != ranked[n][1], f"tie at rank {n}: {ranked[n - 1]} vs {ranked[n]}"
    return [k for k, _ in ranked[:n]]


def nth(scores: Mapping[str, float], n: int) -> str:
    """The key ranked ``n``-th from the top (``n`` >= 2: use `top` for the first), with no tie on
    either side."""
    assert n >= 2
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    assert ranked[n - 2][1] != ranked[n - 1][1] != ranked[n][1], f"tie around rank {n}"
    return ranked[n - 1][0]


def larger(a: str, va: float, b: str, vb: float) -> str:
    """The name with the larger value; asserts no tie."""
    assert va != vb, f"tie between {a} and {b}"
    return a if va > vb else b


# --------------------------------------------------------------------------------------------------
# Question records


Line = dict[str, Any]


def number(value: float, tol: float = 0) -> dict[str, Any]:
    return {"answer": round(value, 2), "kind": "number", "tolerance": tol}


def percent(value: float, tol: float = 0.5) -> dict[str, Any]:
    return {"answer": round(value, 1), "kind": "percent", "tolerance": tol}


def text(*names: str) -> dict[str, Any]:
    assert names and all(names)
    return {"answer": list(names), "kind": "text"}


def members(names: Iterable[str]) -> dict[str, Any]:
    ns = sorted(set(names))
    assert ns, "empty set answer"
    return {"answer": ns, "kind": "set"}


class Family:
    """Collects the questions of one family under ids ``h-<code>-NN`` (numbered in order)."""

    def __init__(self, name: str, code: str) -> None:
        self.name = name
        self.code = code
        self.lines: list[Line] = []

    def add(self, message: str, answer: dict[str, Any], intent: str = "pipeline") -> None:
        line = {
            "id": f"h-{self.code}-{len(self.lines) + 1:02d}",
            "family": self.name,
            "message": message,
            "intent": intent,
            **answer,
        }
        self.lines.append(line)


# --------------------------------------------------------------------------------------------------
# Families


def accounts_family(d: Data) -> Family:
    f = Family("accounts", "acc")
    acc = d.accounts
    f.add("In what year was Kan-code established?", number(acc["Kan-code"].year))
    f.add("What's the headcount at Ganjaflex?", number(acc["Ganjaflex"].employees))
    f.add(
        "What is Hottechi's annual revenue, in millions of dollars?",
        number(acc["Hottechi"].revenue, 0.5),
    )
    # The data spells the country "Philipines"; either spelling is a right answer.
    assert acc["Bioholding"].location == "Philipines"
    f.add("Which country is Bioholding based in?", text("Philipines", "Philippines"))
    f.add("What is the parent company of Gogozoom?", text(acc["Gogozoom"].parent))
    f.add(
        "How many subsidiaries does Acme Corporation own?",
        number(sum(a.parent == "Acme Corporation" for a in acc.values())),
    )
    f.add(
        "Which of our medical accounts are located outside the United States?",
        members(a.name for a in acc.values() if a.sector == "medical" and a.location != "United States"),
    )
    f.add(
        "How many of our accounts were founded before 1990?",
        number(sum(a.year < 1990 for a in acc.values())),
    )
    fin = {a.name: a.employees for a in acc.values() if a.sector == "finance"}
    f.add("Which finance company in our book has the most employees?", text(*top(fin)))
    f.add(
        "Do we have any accounts in Germany? Name them.",
        members(a.name for a in acc.values() if a.location == "Germany"),
    )
    f.add(
        "Add up the employees of all our entertainment-sector accounts: what's the total?",
        number(sum(a.employees for a in acc.values() if a.sector == "entertainment")),
    )
    f.add(
        "What is the average annual revenue (in $M) of our technology accounts?",
        number(avg(a.revenue for a in acc.values() if a.sector == "technology"), 0.5),
    )
    f.add(
        "Which account was established most recently?",
        text(*top({a.name: a.year for a in acc.values()})),
    )
    sibling_parent = acc["Faxquote"].parent
    f.add(
        "Faxquote belongs to a group: which other accounts share its parent company?",
        members(a.name for a in acc.values() if a.parent == sibling_parent and a.name != "Faxquote"),
    )
    f.add(
        "How many accounts in our CRM are a subsidiary of another company?",
        number(sum(bool(a.parent) for a in acc.values())),
    )
    f.add(
        "List the retail accounts with fewer than 500 employees.",
        members(a.name for a in acc.values() if a.sector == "retail" and a.employees < 500),
    )
    return f


def products_family(d: Data) -> Family:
    f = Family("products", "prd")
    p, s = d.prices, d.series
    f.add("What's the list price of one GTX Plus Pro?", number(p["GTX Plus Pro"]))
    f.add("Which product series does the GTK 500 belong to?", text(s["GTK 500"]))
    f.add("Which products make up the MG series?", members(k for k, v in s.items() if v == "MG"))
    f.add("How many products are in the GTX line?", number(sum(v == "GTX" for v in s.values())))
    f.add("What is our most expensive product?", text(*top(p)))
    f.add(
        "Which GTX product has the lowest list price?",
        text(*top({k: v for k, v in p.items() if s[k] == "GTX"}, lowest=True)),
    )
    f.add(
        "How much more does a GTX Pro cost than a GTX Basic at list price, in dollars?",
        number(p["GTX Pro"] - p["GTX Basic"]),
    )
    f.add(
        "What's the average list price across the GTX series?",
        number(avg(v for k, v in p.items() if s[k] == "GTX"), 0.5),
    )
    f.add(
        "How many of our products list above $1,000?",
        number(sum(v > 1000 for v in p.values())),
    )
    f.add("Which products are priced under $1,000?", members(k for k, v in p.items() if v < 1000))
    f.add(
        "How many times the price of an MG Advanced is a GTK 500? Give the ratio.",
        number(p["GTK 500"] / p["MG Advanced"], 0.05),
    )
    f.add(
        "A customer buys one of each MG product at list price: what's the bill?",
        number(sum(v for k, v in p.items() if s[k] == "MG")),
    )
    f.add("What is the second most expensive product we sell?", text(nth(p, 2)))
    f.add("How many product series do we have?", number(len(set(s.values()))))
    return f


def team_family(d: Data) -> Family:
    f = Family("team", "team")
    mgr, off = d.manager, d.office
    teams: dict[str, list[str]] = {}
    for rep, m in mgr.items():
        teams.setdefault(m, []).append(rep)
    mgr_office = {m: off[reps[0]] for m, reps in teams.items()}
    assert all(len({off[r] for r in reps}) == 1 for reps in teams.values())
    active = {x.rep for x in d.deals}
    f.add("Cecily Lampkin sits in which regional office?", text(off["Cecily Lampkin"]))
    f.add("How many sales agents report to Cara Losch?", number(len(teams["Cara Losch"])))
    f.add(
        "Who are the managers in the West office?", members(m for m, o in mgr_office.items() if o == "West")
    )
    f.add(
        "How many sales agents work out of the East office?", number(sum(o == "East" for o in off.values()))
    )
    f.add("List everyone on Dustin Brinkmann's team.", members(teams["Dustin Brinkmann"]))
    f.add("Which regional office is Melvin Marxen's team part of?", text(mgr_office["Melvin Marxen"]))
    f.add("How many sales managers do we have in total?", number(len(teams)))
    f.add("Which sales agents have never been assigned a single deal?", members(set(mgr) - active))
    f.add("What's the total number of sales agents in the company?", number(len(mgr)))
    f.add(
        "Which manager has the smallest team?",
        text(*top({m: len(r) for m, r in teams.items()}, lowest=True)),
    )
    f.add(
        "Who are Kami Bicknell's teammates under the same manager (not counting her)?",
        members(r for r in teams[mgr["Kami Bicknell"]] if r != "Kami Bicknell"),
    )
    f.add(
        "How many reps in the Central office have at least one deal in the pipeline?",
        number(sum(o == "Central" and r in active for r, o in off.items())),
    )
    f.add(
        "Which of Summer Sewald's reps have no deals at all?",
        members(r for r in teams["Summer Sewald"] if r not in active),
    )
    f.add(
        "How many managers run teams in the Central office?",
        number(sum(o == "Central" for o in mgr_office.values())),
    )
    return f


def deal_filters_family(d: Data) -> Family:
    f = Family("deal_filters", "flt")
    acc, ds = d.accounts, d.deals

    def sector(x: Deal) -> str:
        return acc[x.account].sector if x.account else ""

    f.add(
        "How many deals have we won with accounts in the medical sector?",
        number(n_won(x for x in ds if sector(x) == "medical")),
    )
    f.add(
        "How many open deals are there on MG-series products?",
        number(n_open(x for x in ds if d.series[x.product] == "MG")),
    )
    f.add(
        "How many of the West office's deals are sitting in the Engaging stage?",
        number(sum(x.stage == "Engaging" and d.office[x.rep] == "West" for x in ds)),
    )
    f.add(
        "How many deals have we lost with accounts headquartered outside the United States?",
        number(n_lost(x for x in ds if x.account and acc[x.account].location != "United States")),
    )
    f.add(
        "What is the total won revenue from the subsidiaries of Sonron?",
        number(revenue(x for x in ds if x.account and acc[x.account].parent == "Sonron"), 1),
    )
    f.add("How many GTK 500 deals ended up lost?", number(n_lost(x for x in ds if x.product == "GTK 500")))
    f.add(
        "How many GTX Plus Pro deals did Cara Losch's team win?",
        number(n_won(x for x in ds if x.product == "GTX Plus Pro" and d.manager[x.rep] == "Cara Losch")),
    )
    f.add(
        "How much revenue have we won from technology-sector accounts?",
        number(revenue(x for x in ds if sector(x) == "technology"), 1),
    )
    f.add(
        "How many deals with accounts founded before 1990 are still in Engaging?",
        number(sum(x.stage == "Engaging" and bool(x.account) and acc[x.account].year < 1990 for x in ds)),
    )
    f.add("How many deals in the pipeline have no account attached?", number(sum(not x.account for x in ds)))
    f.add(
        "How many GTX Pro deals are still at the Prospecting stage?",
        number(sum(x.product == "GTX Pro" and x.stage == "Prospecting" for x in ds)),
    )
    f.add(
        "What's the won revenue from accounts with more than 10,000 employees?",
        number(revenue(x for x in ds if x.account and acc[x.account].employees > 10000), 1),
    )
    f.add(
        "How many retail-sector deals did Summer Sewald's reps lose?",
        number(n_lost(x for x in ds if sector(x) == "retail" and d.manager[x.rep] == "Summer Sewald")),
    )
    f.add(
        "What's the total won value of GTX-series deals closed by the Central office?",
        number(revenue(x for x in ds if d.series[x.product] == "GTX" and d.office[x.rep] == "Central"), 1),
    )
    return f


def aggregates_family(d: Data) -> Family:
    f = Family("aggregates", "agg")
    ds = d.deals
    f.add(
        "Of the deals Moses Frase has closed, what share did he win?",
        percent(win_rate(x for x in ds if x.rep == "Moses Frase")),
    )
    f.add(
        "What's our win rate on GTX Basic deals?",
        percent(win_rate(x for x in ds if x.product == "GTX Basic")),
    )
    f.add(
        "What is the win rate with software-sector accounts?",
        percent(win_rate(x for x in ds if x.account and d.accounts[x.account].sector == "software")),
    )
    f.add(
        "What percentage of all deals in the pipeline are still open?",
        percent(100 * n_open(ds) / len(ds)),
    )
    f.add(
        "What's the average value of the deals we've won with Kan-code?",
        number(avg(x.value for x in ds if x.won and x.account == "Kan-code"), 1),
    )
    f.add(
        "On average, how many days pass between engaging and closing a won GTK 500 deal?",
        number(avg(x.cycle for x in ds if x.won and x.product == "GTK 500"), 0.5),
    )
    f.add("What is the total value of every deal we've ever won?", number(revenue(ds), 1))
    f.add(
        "What percentage of our total won revenue comes from GTX Plus Pro?",
        percent(100 * revenue(x for x in ds if x.product == "GTX Plus Pro") / revenue(ds)),
    )
    f.add(
        "What's the win rate for Celia Rouche's team?",
        percent(win_rate(x for x in ds if d.manager[x.rep] == "Celia Rouche")),
    )
    f.add(
        "How long, on average, did our lost deals take from engagement to close, in days?",
        number(avg(x.cycle for x in ds if x.lost), 0.5),
    )
    f.add(
        "Counting open deals too, what percentage of all Hottechi deals were lost?",
        percent(
            100 * n_lost(x for x in ds if x.account == "Hottechi") / sum(x.account == "Hottechi" for x in ds)
        ),
    )
    f.add(
        "How many deals has Anna Snelling handled in total, all stages?",
        number(sum(x.rep == "Anna Snelling" for x in ds)),
    )
    f.add(
        "How many deals has Rocco Neubert's team lost?",
        number(n_lost(x for x in ds if d.manager[x.rep] == "Rocco Neubert")),
    )
    f.add(
        "What's the mean won deal value across all products?",
        number(avg(x.value for x in ds if x.won), 1),
    )
    return f


def rankings_family(d: Data) -> Family:
    f = Family("rankings", "rnk")
    ds, acc = d.deals, d.accounts

    def by(
        key: Callable[[Deal], str], metric: Callable[[list[Deal]], float], keep: Callable[[Deal], bool]
    ) -> dict[str, float]:
        groups: dict[str, list[Deal]] = {}
        for x in ds:
            if keep(x):
                groups.setdefault(key(x), []).append(x)
        return {k: metric(v) for k, v in groups.items()}

    def every(x: Deal) -> bool:
        return True

    def has_account(x: Deal) -> bool:
        return bool(x.account)

    won_count = by(lambda x: x.rep, lambda v: n_won(v), every)
    f.add("Who are the top 3 sales agents by number of deals won?", members(top(won_count, 3)))
    closed_acc = by(lambda x: x.account, lambda v: sum(y.closed for y in v), has_account)
    acc_rate = by(
        lambda x: x.account, lambda v: win_rate(v), lambda x: bool(x.account) and closed_acc[x.account] >= 60
    )
    f.add(
        "Among accounts with at least 60 closed deals, which has the lowest win rate?",
        text(*top(acc_rate, lowest=True)),
    )
    acc_rev = by(lambda x: x.account, lambda v: revenue(v), has_account)
    f.add("Which account has brought us the second-most won revenue?", text(nth(acc_rev, 2)))
    f.add(
        "Which product has the fewest won deals?",
        text(*top(by(lambda x: x.product, lambda v: n_won(v), every), lowest=True)),
    )
    f.add(
        "Which sector generated the most won revenue?",
        text(*top(by(lambda x: acc[x.account].sector, lambda v: revenue(v), has_account))),
    )
    f.add(
        "Which regional office has the weakest win rate?",
        text(*top(by(lambda x: d.office[x.rep], lambda v: win_rate(v), every), lowest=True)),
    )
    f.add(
        "Name the two accounts with the most open deals right now.",
        members(top(by(lambda x: x.account, lambda v: n_open(v), has_account), 2)),
    )
    f.add(
        "On Cara Losch's team, which rep has the best win rate?",
        text(*top(by(lambda x: x.rep, lambda v: win_rate(v), lambda x: d.manager[x.rep] == "Cara Losch"))),
    )
    f.add(
        "Whose team brought in the least won revenue, which manager?",
        text(*top(by(lambda x: d.manager[x.rep], lambda v: revenue(v), every), lowest=True)),
    )
    f.add(
        "Which sales agent has the longest average sales cycle on won deals?",
        text(*top(by(lambda x: x.rep, lambda v: avg(y.cycle for y in v), lambda x: x.won))),
    )
    f.add(
        "Excluding the United States, which country's accounts have brought in the most won revenue?",
        text(
            *top(
                by(
                    lambda x: acc[x.account].location,
                    lambda v: revenue(v),
                    lambda x: bool(x.account) and acc[x.account].location != "United States",
                )
            )
        ),
    )
    f.add(
        "Which product has the highest win rate?",
        text(*top(by(lambda x: x.product, lambda v: win_rate(v), every))),
    )
    f.add(
        "Which 3 sales agents (with at least one deal) have the lowest won revenue?",
        members(top(by(lambda x: x.rep, lambda v: revenue(v), every), 3, lowest=True)),
    )
    f.add(
        "Which account has the second-highest number of lost deals?",
        text(nth(by(lambda x: x.account, lambda v: n_lost(v), has_account), 2)),
    )
    return f


def comparisons_family(d: Data) -> Family:
    f = Family("comparisons", "cmp")
    ds, acc = d.deals, d.accounts

    def rep_won(r: str) -> int:
        return n_won(x for x in ds if x.rep == r)

    f.add(
        "Who has won more deals, Anna Snelling or Cassey Cress? Just give me the name.",
        text(larger("Anna Snelling", rep_won("Anna Snelling"), "Cassey Cress", rep_won("Cassey Cress"))),
    )
    east = revenue(x for x in ds if d.office[x.rep] == "East")
    west = revenue(x for x in ds if d.office[x.rep] == "West")
    f.add("Which office has won more revenue, East or West?", text(larger("East", east, "West", west)))
    gp = win_rate(x for x in ds if x.product == "GTX Pro")
    ms = win_rate(x for x in ds if x.product == "MG Special")
    assert ms > gp
    f.add(
        "By how many percentage points is MG Special's win rate higher than GTX Pro's?",
        percent(ms - gp),
    )
    kc = revenue(x for x in ds if x.account == "Kan-code")
    kx = revenue(x for x in ds if x.account == "Konex")
    f.add("How much more won revenue has Kan-code brought in than Konex, in dollars?", number(kc - kx, 1))
    f.add(
        "Which has more employees, Initech or Xx-holding?",
        text(larger("Initech", acc["Initech"].employees, "Xx-holding", acc["Xx-holding"].employees)),
    )
    zot, kon = acc["Zotware"].year, acc["Konex"].year
    assert zot != kon
    f.add("Which was founded earlier, Zotware or Konex?", text("Zotware" if zot < kon else "Konex"))
    ent = sum(a.sector == "entertainment" for a in acc.values())
    fin = sum(a.sector == "finance" for a in acc.values())
    f.add(
        "Do we have more accounts in entertainment or in finance? Answer with the sector.",
        text(larger("entertainment", ent, "finance", fin)),
    )
    q2 = n_won(x for x in ds if in_period(x.close, *quarter(2017, 2)))
    q3 = n_won(x for x in ds if in_period(x.close, *quarter(2017, 3)))
    f.add(
        "How many more deals did we win in Q3 2017 than in Q2 2017 (Q3 minus Q2)?",
        number(q3 - q2),
    )
    bf = win_rate(x for x in ds if x.rep == "Boris Faz")
    rc = win_rate(x for x in ds if x.rep == "Reed Clapper")
    f.add(
        "Boris Faz or Reed Clapper: who closes at the higher win rate?",
        text(larger("Boris Faz", bf, "Reed Clapper", rc)),
    )
    gpa = avg(x.value for x in ds if x.won and x.product == "GTX Pro")
    mga = avg(x.value for x in ds if x.won and x.product == "MG Advanced")
    assert gpa > mga
    f.add(
        "How much larger is the average won GTX Pro deal than the average won MG Advanced deal?",
        number(gpa - mga, 1),
    )
    cc = n_open(x for x in ds if x.account == "Cancity")
    ch = n_open(x for x in ds if x.account == "Codehow")
    f.add(
        "Which account has more open deals, Cancity or Codehow?", text(larger("Cancity", cc, "Codehow", ch))
    )
    mm = revenue(x for x in ds if d.manager[x.rep] == "Melvin Marxen")
    db = revenue(x for x in ds if d.manager[x.rep] == "Dustin Brinkmann")
    f.add(
        "Whose team has won more revenue: Melvin Marxen's or Dustin Brinkmann's? Name the manager.",
        text(larger("Melvin Marxen", mm, "Dustin Brinkmann", db)),
    )
    rt = revenue(x for x in ds if x.account and acc[x.account].sector == "retail")
    sw = revenue(x for x in ds if x.account and acc[x.account].sector == "software")
    assert rt > sw
    f.add(
        "How much more won revenue has the retail sector brought in than the software sector?",
        number(rt - sw, 1),
    )
    return f


def periods_family(d: Data) -> Family:
    f = Family("periods", "per")
    ds, now = d.deals, d.now
    assert now == dt.date(2017, 12, 31), "the wording below assumes the data ends on 2017-12-31"
    this_q = quarter(*quarter_of(now))
    y, q = quarter_of(now)
    last_q = quarter(y, q - 1) if q > 1 else quarter(y - 1, 4)
    last_m = month(now.year, now.month - 1) if now.month > 1 else month(now.year - 1, 12)

    def won_in(span: tuple[dt.date, dt.date]) -> list[Deal]:
        return [x for x in ds if x.won and in_period(x.close, *span)]

    f.add("How many deals did we win in Q1 2017?", number(len(won_in(quarter(2017, 1)))))
    f.add("What was our won revenue in June 2017?", number(revenue(won_in(month(2017, 6))), 1))
    f.add(
        "How many deals were lost in December 2017?",
        number(sum(x.lost and in_period(x.close, *month(2017, 12)) for x in ds)),
    )
    f.add(
        "What was the win rate for deals that closed in the second quarter of 2017?",
        percent(win_rate(x for x in ds if in_period(x.close, *quarter(2017, 2)))),
    )
    f.add(
        "How many deals did we engage during 2016?",
        number(sum(in_period(x.engage, *year_span(2016)) for x in ds)),
    )
    f.add("How much revenue did we win last quarter?", number(revenue(won_in(last_q)), 1))
    f.add(
        "How many deals closed this quarter, won or lost?",
        number(sum(x.closed and in_period(x.close, *this_q) for x in ds)),
    )
    by_month = {MONTHS[m - 1]: revenue(won_in(month(2017, m))) for m in range(1, 13)}
    f.add("Which month of 2017 had the highest won revenue?", text(*top(by_month)))
    f.add(
        "How many GTX Pro deals did we win in the first half of 2017?",
        number(sum(x.product == "GTX Pro" for x in won_in((dt.date(2017, 1, 1), dt.date(2017, 6, 30))))),
    )
    f.add(
        "How much did we win from Kan-code in Q4 2017?",
        number(revenue(x for x in won_in(quarter(2017, 4)) if x.account == "Kan-code"), 1),
    )
    f.add(
        "How many deals did Darcel Schlecht win in September 2017?",
        number(sum(x.rep == "Darcel Schlecht" for x in won_in(month(2017, 9)))),
    )
    f.add(
        "Of the deals we engaged in Q1 2017, how many are still open?",
        number(sum(x.open and in_period(x.engage, *quarter(2017, 1)) for x in ds)),
    )
    f.add(
        "What was the average sales cycle, in days, of deals won in Q4 2017?",
        number(avg(x.cycle for x in won_in(quarter(2017, 4))), 0.5),
    )
    f.add("How many deals did we win last month?", number(len(won_in(last_m))))
    return f


def combinations_family(d: Data) -> Family:
    f = Family("combinations", "cmb")
    ds, acc = d.deals, d.accounts

    def of(account: str) -> list[Deal]:
        return [x for x in ds if x.account == account]

    f.add(
        "Which telecommunications accounts founded after 1995 have a lost deal?",
        members(
            a.name
            for a in acc.values()
            if a.sector == "telecommunications" and a.year > 1995 and n_lost(of(a.name)) > 0
        ),
    )
    f.add(
        "Which medical accounts with more than 1,000 employees have given us over $120,000 in won revenue?",
        members(
            a.name
            for a in acc.values()
            if a.sector == "medical" and a.employees > 1000 and revenue(of(a.name)) > 120000
        ),
    )
    f.add(
        "Which retail accounts based outside the United States have at least one open deal?",
        members(
            a.name
            for a in acc.values()
            if a.sector == "retail" and a.location != "United States" and n_open(of(a.name)) > 0
        ),
    )
    east = sorted(r for r, o in d.office.items() if o == "East")
    east_rates = {
        r: win_rate(x for x in ds if x.rep == r) for r in east if any(x.rep == r and x.closed for x in ds)
    }
    assert all(v != 65.0 for v in east_rates.values())
    f.add(
        "Which East-office reps have a win rate above 65%?",
        members(r for r, v in east_rates.items() if v > 65),
    )
    f.add(
        "How many accounts established before 1990 have won at least one GTK 500 deal with us?",
        number(
            sum(
                a.year < 1990 and any(x.won and x.product == "GTK 500" for x in of(a.name))
                for a in acc.values()
            )
        ),
    )
    f.add(
        "How many subsidiary accounts have brought in more than $150,000 of won revenue each?",
        number(sum(bool(a.parent) and revenue(of(a.name)) > 150000 for a in acc.values())),
    )
    f.add(
        "Which software accounts have more than 10 open deals?",
        members(a.name for a in acc.values() if a.sector == "software" and n_open(of(a.name)) > 10),
    )
    overall = win_rate(ds)
    fin_rates = {a.name: win_rate(of(a.name)) for a in acc.values() if a.sector == "finance"}
    assert all(v != overall for v in fin_rates.values())
    f.add(
        "Which finance accounts have a win rate below the company-wide win rate?",
        members(k for k, v in fin_rates.items() if v < overall),
    )
    f.add(
        "How many accounts with annual revenue above $1,000M had no lost deal in December 2017?",
        number(
            sum(
                a.revenue > 1000
                and not any(x.lost and in_period(x.close, *month(2017, 12)) for x in of(a.name))
                for a in acc.values()
            )
        ),
    )
    f.add(
        "Which sales agents have ever closed a GTK 500 deal as won?",
        members(x.rep for x in ds if x.won and x.product == "GTK 500"),
    )
    f.add(
        "How many accounts based outside the United States have a win rate above 65%?",
        number(sum(a.location != "United States" and win_rate(of(a.name)) > 65 for a in acc.values())),
    )
    f.add(
        "Which West-office reps have won more than 140 deals yet have fewer than 100 still open?",
        members(
            r
            for r, o in d.office.items()
            if o == "West"
            and n_won(x for x in ds if x.rep == r) > 140
            and n_open(x for x in ds if x.rep == r) < 100
        ),
    )
    f.add(
        "Which entertainment accounts founded before 1995 have more than $100,000 in won revenue?",
        members(
            a.name
            for a in acc.values()
            if a.sector == "entertainment" and a.year < 1995 and revenue(of(a.name)) > 100000
        ),
    )
    f.add(
        "How many accounts without a parent company have more than 5,000 employees and no won GTK 500 deal?",
        number(
            sum(
                not a.parent
                and a.employees > 5000
                and not any(x.won and x.product == "GTK 500" for x in of(a.name))
                for a in acc.values()
            )
        ),
    )
    return f


def questions(d: Data) -> list[Line]:
    families = [
        accounts_family(d),
        products_family(d),
        team_family(d),
        deal_filters_family(d),
        aggregates_family(d),
        rankings_family(d),
        comparisons_family(d),
        periods_family(d),
        combinations_family(d),
    ]
    return [line for fam in families for line in fam.lines]


# --------------------------------------------------------------------------------------------------
# Intents: routing labels only (no data needed). Boundaries: figures about deals and stage moves =
# pipeline, even when an account is named; researching or qualifying an account or lead = discovery;
# writing to a buyer before the signature = closing; work after a win = delivery; "what should I do"
# = nba; small talk and anything outside the CRM = general.

INTENTS: list[tuple[str, str]] = [
    (
        "discovery",
        "Before my meeting with Rangreen, pull together a briefing on who they are and how they're organised",
    ),
    (
        "discovery",
        "I met the CFO of a 200-person logistics firm at a conference. Do they look like a fit for us?",
    ),
    ("discovery", "Dig into Mathtouch for me: size, ownership, anything useful"),
    ("discovery", "Find finance companies with more than 5,000 staff that we could go after"),
    ("discovery", "How qualified is the Plexzap lead? Budget yes, authority unclear, no timeline."),
    ("discovery", "Look up the background on Zencorporation ahead of my call"),
    ("discovery", "Which of the new inbound leads match our ideal customer profile?"),
    ("closing", "Write Labdrill's procurement lead a note pushing for signature before quarter end"),
    ("closing", "Put together a quote for Ron-tech: 40 units of GTX Plus Basic"),
    ("closing", "Statholdings says they'll only sign with 25% off. What do I counter with?"),
    ("closing", "Help me reply to Sonron, they think the GTK 500 is overkill for them"),
    ("closing", "Draft a cold email introducing MG Advanced to the IT director at Finhigh"),
    ("closing", "Can you rewrite my proposal for Dontechi so it sounds less pushy?"),
    ("closing", "Opentech's legal team wants net-90 payment terms. How do I negotiate that?"),
    ("delivery", "Condax signed yesterday, kick off their implementation plan"),
    ("delivery", "Plan the GTX Pro installation for Golddex over the next six weeks, they're a customer now"),
    ("delivery", "Who on our side owns the remaining onboarding tasks for Scotfind?"),
    ("delivery", "Write a handover summary for the customer success team now that the Konex deal is signed"),
    ("delivery", "Draft the kickoff agenda for our first meeting with Funholding as a new customer"),
    ("delivery", "Which rollout milestones for Green-Plus are running late?"),
    ("pipeline", "How much did Rangreen spend with us in 2017?"),
    ("pipeline", "Bump the open Doncon MG Advanced opportunity up to the proposal stage"),
    ("pipeline", "What did Statholdings' win rate look like last year?"),
    ("pipeline", "number of zoomit deals still in engaging?"),
    ("pipeline", "how many deals did we lose in november"),
    ("pipeline", "Give me the average cycle length for MG Special deals"),
    ("pipeline", "Close out Treequote's deal CX0SXNCN as lost, they went with a competitor"),
    ("pipeline", "yo what's our total won $$ so far this year"),
    ("nba", "I've got an hour free this afternoon, what's the most valuable thing I could do?"),
    ("nba", "Which of my engaging deals should I push on first?"),
    ("nba", "Anything I should be doing about Initech right now?"),
    ("nba", "What's my plan for tomorrow morning?"),
    ("nba", "Are there accounts where we could cross-sell MG Advanced?"),
    ("nba", "Which stalled deals deserve a nudge, and how should I nudge them?"),
    ("general", "hey, how's your day going?"),
    ("general", "Can you recommend a good sci-fi novel for the weekend?"),
    ("general", "What's the weather like in Chicago today?"),
    ("general", "Who won the football World Cup in 2018?"),
    ("general", "Cheers, you've been really helpful"),
    ("general", "Translate 'thank you' into German"),
]


def intents() -> list[Line]:
    return [{"id": f"hi-{i + 1:02d}", "message": m, "intent": k} for i, (k, m) in enumerate(INTENTS)]


# --------------------------------------------------------------------------------------------------
# Multi-turn conversations: each later turn needs the earlier ones (a pronoun, "and for X?", "what
# about 2017?").


def turn(message: str, answer: dict[str, Any]) -> dict[str, Any]:
    return {"message": message, **answer}


def conversations(d: Data) -> list[Line]:
    ds, acc = d.deals, d.accounts
    convs: list[list[dict[str, Any]]] = []

    def won17(product: str) -> int:
        return sum(x.won and x.product == product and in_period(x.close, *year_span(2017)) for x in ds)

    convs.append(
        [
            turn("How many GTX Basic deals did we win in 2017?", number(won17("GTX Basic"))),
            turn("and for MG Special?", number(won17("MG Special"))),
        ]
    )
    boss = d.manager["Rosalina Dieter"]
    convs.append(
        [
            turn("Which office does Rosalina Dieter work in?", text(d.office["Rosalina Dieter"])),
            turn("Who manages her?", text(boss)),
            turn(
                "How many reps are on that manager's team?",
                number(sum(m == boss for m in d.manager.values())),
            ),
        ]
    )
    telecom = {a.name: a.employees for a in acc.values() if a.sector == "telecommunications"}
    biggest = top(telecom)[0]
    convs.append(
        [
            turn("Which telecommunications accounts do we have?", members(telecom)),
            turn("Which of them has the most employees?", text(biggest)),
            turn(
                "How much revenue have we won from that one?",
                number(revenue(x for x in ds if x.account == biggest), 1),
            ),
        ]
    )
    convs.append(
        [
            turn(
                "What was our win rate for deals closed in Q3 2017?",
                percent(win_rate(x for x in ds if in_period(x.close, *quarter(2017, 3)))),
            ),
            turn("and in Q1?", percent(win_rate(x for x in ds if in_period(x.close, *quarter(2017, 1))))),
        ]
    )
    cc17 = [x for x in ds if x.rep == "Cassey Cress" and in_period(x.close, *year_span(2017))]
    convs.append(
        [
            turn("How many deals did Cassey Cress win in 2017?", number(n_won(cc17))),
            turn("And how many did she lose that year?", number(n_lost(cc17))),
            turn("So what's her 2017 win rate?", percent(win_rate(cc17))),
        ]
    )
    central = top({r: n_won(x for x in ds if x.rep == r) for r, o in d.office.items() if o == "Central"})[0]
    convs.append(
        [
            turn("Who has won the most deals in the Central office?", text(central)),
            turn(
                "How many open deals does that rep have?", number(n_open(x for x in ds if x.rep == central))
            ),
        ]
    )
    convs.append(
        [
            turn(
                "How many open deals does Melvin Marxen's team have?",
                number(n_open(x for x in ds if d.manager[x.rep] == "Melvin Marxen")),
            ),
            turn("And Cara Losch's?", number(n_open(x for x in ds if d.manager[x.rep] == "Cara Losch"))),
        ]
    )
    mga = avg(x.value for x in ds if x.won and x.product == "MG Advanced")
    assert mga < d.prices["MG Advanced"]
    convs.append(
        [
            turn("What's the list price of MG Advanced?", number(d.prices["MG Advanced"])),
            turn("And the average value of the MG Advanced deals we've won?", number(mga, 1)),
            turn(
                "So how far below list is that on average, in dollars?",
                number(d.prices["MG Advanced"] - mga, 1),
            ),
        ]
    )
    convs.append(
        [
            turn(
                "How many deals did we engage in 2017?",
                number(sum(in_period(x.engage, *year_span(2017)) for x in ds)),
            ),
            turn("what about 2016?", number(sum(in_period(x.engage, *year_span(2016)) for x in ds))),
        ]
    )
    parent = acc["Vehement Capital Partners"].parent
    convs.append(
        [
            turn("What's the parent company of Vehement Capital Partners?", text(parent)),
            turn(
                "What other subsidiaries does it have?",
                members(
                    a.name
                    for a in acc.values()
                    if a.parent == parent and a.name != "Vehement Capital Partners"
                ),
            ),
            turn("And which sector is the parent itself in?", text(acc[parent].sector)),
        ]
    )

    def konex(q: int) -> float:
        return revenue(x for x in ds if x.account == "Konex" and in_period(x.close, *quarter(2017, q)))

    convs.append(
        [
            turn("How much revenue did we win with Konex in Q2 2017?", number(konex(2), 1)),
            turn("And in Q3?", number(konex(3), 1)),
        ]
    )
    rocco = [r for r, m in d.manager.items() if m == "Rocco Neubert"]
    rocco_best = top({r: n_won(x for x in ds if x.rep == r) for r in rocco})[0]
    convs.append(
        [
            turn("List the reps on Rocco Neubert's team.", members(rocco)),
            turn("Which of them has won the most deals?", text(rocco_best)),
            turn("What's that rep's win rate?", percent(win_rate(x for x in ds if x.rep == rocco_best))),
        ]
    )
    convs.append(
        [
            turn(
                "What's the win rate on GTK 500 deals?",
                percent(win_rate(x for x in ds if x.product == "GTK 500")),
            ),
            turn(
                "and for GTX Plus Basic?", percent(win_rate(x for x in ds if x.product == "GTX Plus Basic"))
            ),
        ]
    )
    convs.append(
        [
            turn(
                "How many lost deals does Kary Hendrixson have?",
                number(n_lost(x for x in ds if x.rep == "Kary Hendrixson")),
            ),
            turn("What about Zane Levy?", number(n_lost(x for x in ds if x.rep == "Zane Levy"))),
        ]
    )
    big_retail = {a.name: a.year for a in acc.values() if a.sector == "retail" and a.employees > 5000}
    convs.append(
        [
            turn("Which retail accounts have more than 5,000 employees?", members(big_retail)),
            turn("Which of them was founded first?", text(*top(big_retail, lowest=True))),
        ]
    )

    def kan(product: str) -> int:
        return n_won(x for x in ds if x.account == "Kan-code" and x.product == product)

    convs.append(
        [
            turn("How many GTX Plus Pro deals has Kan-code signed with us?", number(kan("GTX Plus Pro"))),
            turn("And how many MG Special?", number(kan("MG Special"))),
        ]
    )
    oct17 = revenue(x for x in ds if x.won and in_period(x.close, *month(2017, 10)))
    sep17 = revenue(x for x in ds if x.won and in_period(x.close, *month(2017, 9)))
    assert sep17 > oct17
    convs.append(
        [
            turn("What was our won revenue in October 2017?", number(oct17, 1)),
            turn("How much lower was that than September?", number(sep17 - oct17, 1)),
        ]
    )
    sector_count = Counter(a.sector for a in acc.values())
    big_sector = top(dict(sector_count))[0]
    convs.append(
        [
            turn("Which sector has the most accounts?", text(big_sector)),
            turn("How many accounts is that?", number(sector_count[big_sector])),
            turn(
                "How many of those are based outside the United States?",
                number(sum(a.sector == big_sector and a.location != "United States" for a in acc.values())),
            ),
        ]
    )
    gk_office = d.office["Garret Kinder"]
    convs.append(
        [
            turn("Which office is Garret Kinder in?", text(gk_office)),
            turn(
                "How many managers does that office have?",
                number(len({m for r, m in d.manager.items() if d.office[r] == gk_office})),
            ),
        ]
    )
    hot = top({p: n_open(x for x in ds if x.product == p) for p in d.prices})[0]
    convs.append(
        [
            turn("Which product has the most open deals?", text(hot)),
            turn("What's its list price?", number(d.prices[hot])),
        ]
    )
    return [{"id": f"hm-{i + 1:02d}", "turns": t} for i, t in enumerate(convs)]


# --------------------------------------------------------------------------------------------------
# Actions: requests a rep approves. Kinds and parameter names are those of the action contract
# (move_stage: deal, stage key, value, note; create_reminder: due_at, message; create_task: tasks
# [{title, due}]; queue_email: to, subject, body; accept_discount: percent, requested_percent).
# Every move is of an Engaging deal that has an account, so the move is valid. Relative dates are
# counted from the line's "today" (TODAY, a Wednesday, so "next Tuesday" has one reading). A date
# without a time falls due at 09:00.

TODAY = dt.date(2026, 12, 2)
STAGES = {"qualified", "proposal", "negotiation", "won", "lost"}


def at(day: dt.date, hour: int = 9, minute: int = 0) -> str:
    return dt.datetime.combine(day, dt.time(hour, minute)).isoformat(timespec="minutes")


def next_weekday(day: dt.date, weekday: int) -> dt.date:
    """The first ``weekday`` (Monday = 0) strictly after ``day``."""
    return day + dt.timedelta(days=(weekday - day.weekday() - 1) % 7 + 1)


def actions(d: Data) -> list[Line]:
    assert TODAY.weekday() == 2, "the wording below assumes TODAY is a Wednesday"
    engaging = sorted((x for x in d.deals if x.stage == "Engaging" and x.account), key=lambda x: x.oid)
    open_pairs = Counter((x.account, x.product) for x in d.deals if x.open and x.account)
    used: set[str] = set()

    def by_id() -> Deal:
        deal = next(x for x in engaging if x.oid not in used)
        used.add(deal.oid)
        return deal

    def by_pair() -> Deal:
        """An Engaging deal that is the only open deal of its account and product."""
        deal = next(x for x in engaging if x.oid not in used and open_pairs[(x.account, x.product)] == 1)
        used.add(deal.oid)
        return deal

    lines: list[Line] = []

    def add(message: str, expect: dict[str, Any], state: dict[str, Any], **extra: Any) -> None:
        if expect["kind"] == "move_stage":
            assert expect["params"]["stage"] in STAGES
        lines.append(
            {"id": f"ha-{len(lines) + 1:02d}", "message": message, "expect": expect, "state": state, **extra}
        )

    def move(deal: Deal, stage: str, **params: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        expect = {"kind": "move_stage", "params": {"deal": deal.oid, "stage": stage, **params}}
        state: dict[str, Any] = {"deal": deal.oid, "stage": stage}
        if "value" in params:
            state["value"] = params["value"]
        return expect, state

    # Stage moves, in many phrasings.
    x = by_id()
    add(f"Move deal {x.oid} to Qualified.", *move(x, "qualified"))
    x = by_pair()
    add(
        f"Push the open {x.account} {x.product} opportunity forward to the proposal stage",
        *move(x, "proposal"),
    )
    x = by_id()
    add(f"{x.oid} is in negotiation now, please update it", *move(x, "negotiation"))
    x = by_id()
    price = d.prices[x.product]
    add(f"We won {x.oid}! Final value ${price:,.0f}.", *move(x, "won", value=price))
    x = by_pair()
    add(f"Close the open {x.account} {x.product} deal as won at 4,750 dollars", *move(x, "won", value=4750))
    x = by_id()
    add(
        f"Mark {x.oid} as lost, the customer picked a competitor",
        *move(x, "lost", note="the customer picked a competitor"),
    )
    x = by_pair()
    add(
        f"{x.account} cancelled their budget, so close their open {x.product} deal as lost",
        *move(x, "lost", note="budget cancelled"),
    )
    x = by_id()
    add("Move it to negotiation", *move(x, "negotiation"), history=[f"What's the status of deal {x.oid}?"])
    x = by_pair()
    signed = round(0.95 * d.prices[x.product])  # 5% under list: a plausible signed value
    add(
        f"ok mark that one won, they signed for {signed:,}",
        *move(x, "won", value=signed),
        history=[f"Show me the open {x.product} deal with {x.account}"],
    )
    x = by_id()
    add(f"Can you advance {x.oid} from Engaging to Qualified?", *move(x, "qualified"))
    x = by_id()
    add(f"Lost: {x.oid}. Reason: no budget until 2028.", *move(x, "lost", note="no budget until 2028"))

    # Reminders: absolute and relative dates and times.
    x = by_id()
    due = at(dt.date(2027, 1, 15))
    add(
        f"Remind me on 2027-01-15 to check in with {x.account} about {x.oid}",
        {"kind": "create_reminder", "params": {"deal": x.oid, "due_at": due}},
        {"reminder_due": due, "deal": x.oid},
    )
    due = at(TODAY + dt.timedelta(days=1), 15)
    add(
        "Set a reminder for tomorrow at 3pm to call Zoomit's buyer",
        {"kind": "create_reminder", "params": {"due_at": due}},
        {"reminder_due": due},
        today=TODAY.isoformat(),
    )
    x = by_id()
    due = at(TODAY + dt.timedelta(days=3))
    add(
        f"Ping me in 3 days about the {x.oid} paperwork",
        {"kind": "create_reminder", "params": {"deal": x.oid, "due_at": due}},
        {"reminder_due": due, "deal": x.oid},
        today=TODAY.isoformat(),
    )
    due = at(next_weekday(TODAY, 1), 10)
    add(
        "Remind me next Tuesday at 10 to send Silis the revised quote",
        {"kind": "create_reminder", "params": {"due_at": due}},
        {"reminder_due": due},
        today=TODAY.isoformat(),
    )
    x = by_id()
    due = at(dt.date(2027, 1, 20), 14, 30)
    add(
        f"Reminder on 20 January 2027 at 14:30: follow up on {x.oid}",
        {"kind": "create_reminder", "params": {"deal": x.oid, "due_at": due}},
        {"reminder_due": due, "deal": x.oid},
    )

    # Tasks.
    add(
        "Create a task to prepare the Konmatfix demo, due 2027-02-03",
        {
            "kind": "create_task",
            "params": {"tasks": [{"title": "Prepare the Konmatfix demo", "due": "2027-02-03"}]},
        },
        {"task_due": ["2027-02-03"]},
    )
    friday = TODAY + dt.timedelta(days=4 - TODAY.weekday())
    add(
        "Add a task for me: send the security questionnaire to Hatfan by Friday",
        {
            "kind": "create_task",
            "params": {
                "tasks": [{"title": "Send the security questionnaire to Hatfan", "due": friday.isoformat()}]
            },
        },
        {"task_due": [friday.isoformat()]},
        today=TODAY.isoformat(),
    )
    x = by_id()
    add(
        f"Make two tasks for deal {x.oid}: book the site visit by 2027-01-08 "
        "and send the pricing sheet by 2027-01-12",
        {
            "kind": "create_task",
            "params": {
                "deal": x.oid,
                "tasks": [
                    {"title": "Book the site visit", "due": "2027-01-08"},
                    {"title": "Send the pricing sheet", "due": "2027-01-12"},
                ],
            },
        },
        {"task_due": ["2027-01-08", "2027-01-12"], "deal": x.oid},
    )
    x = by_id()
    add(
        "Add a task on that deal to confirm the delivery address by 2027-01-05",
        {
            "kind": "create_task",
            "params": {
                "deal": x.oid,
                "tasks": [{"title": "Confirm the delivery address", "due": "2027-01-05"}],
            },
        },
        {"task_due": ["2027-01-05"], "deal": x.oid},
        history=[f"Tell me about deal {x.oid}"],
    )

    # Emails (queued to the outbox).
    add(
        "Email maria.lopez@example.com with the subject 'Next steps' and say the contract goes out Monday",
        {"kind": "queue_email", "params": {"to": "maria.lopez@example.com", "subject": "Next steps"}},
        {"email_to": "maria.lopez@example.com", "email_subject": "Next steps"},
    )
    x = by_id()
    add(
        f"Send an email to procurement@example.org about deal {x.oid}, subject 'Updated quote', "
        "saying the quote now includes installation",
        {
            "kind": "queue_email",
            "params": {"deal": x.oid, "to": "procurement@example.org", "subject": "Updated quote"},
        },
        {"email_to": "procurement@example.org", "email_subject": "Updated quote", "deal": x.oid},
    )
    add(
        "Queue a thank-you email to tom.becker@example.com for today's Initech meeting, "
        "subject 'Thanks for your time'",
        {
            "kind": "queue_email",
            "params": {"to": "tom.becker@example.com", "subject": "Thanks for your time"},
        },
        {"email_to": "tom.becker@example.com", "email_subject": "Thanks for your time"},
    )
    x = by_id()
    add(
        "Email ops@example.net a short update on it, subject 'Status update'",
        {
            "kind": "queue_email",
            "params": {"deal": x.oid, "to": "ops@example.net", "subject": "Status update"},
        },
        {"email_to": "ops@example.net", "email_subject": "Status update", "deal": x.oid},
        history=[f"What's the status of deal {x.oid}?"],
    )

    # Discounts (all within the sales policy's maximum).
    x = by_id()
    add(
        f"Approve a 10% discount on {x.oid}",
        {"kind": "accept_discount", "params": {"deal": x.oid, "percent": 10}},
        {"deal": x.oid, "discount_percent": 10},
    )
    x = by_pair()
    add(
        f"{x.account} asked for 15% off the open {x.product} deal, give them 12%",
        {"kind": "accept_discount", "params": {"deal": x.oid, "percent": 12, "requested_percent": 15}},
        {"deal": x.oid, "discount_percent": 12},
    )
    x = by_id()
    add(
        f"Go ahead and accept the 5% discount they asked for on deal {x.oid}",
        {"kind": "accept_discount", "params": {"deal": x.oid, "percent": 5}},
        {"deal": x.oid, "discount_percent": 5},
    )

    # Ambiguous: the right outcome is a clarifying question, and nothing changes.
    add("Move the deal to negotiation", {"kind": "clarify"}, {})
    crowded = sorted(
        a for a, n in Counter(x.account for x in d.deals if x.open and x.account).items() if n >= 10
    )[0]
    add(f"Mark the {crowded} deal as won", {"kind": "clarify"}, {})
    add("Set a reminder to call them", {"kind": "clarify"}, {})
    return lines


# --------------------------------------------------------------------------------------------------
# Output


FILES: dict[str, Callable[[Data], list[Line]]] = {
    "questions_heldout.jsonl": questions,
    "intents_heldout.jsonl": lambda d: intents(),
    "multiturn_heldout.jsonl": conversations,
    "actions_heldout.jsonl": actions,
}


def render(lines: list[Line]) -> str:
    """One JSON object a line, sorted by id, keys sorted: the same data gives the same bytes."""
    ids = [line["id"] for line in lines]
    assert len(ids) == len(set(ids)), "duplicate id"
    return "".join(
        json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n"
        for line in sorted(lines, key=lambda x: x["id"])
    )


def build(data_dir: Path, out_dir: Path) -> dict[str, int]:
    """Write every set into ``out_dir``; returns {file name: line count}."""
    d = load(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, make in FILES.items():
        lines = make(d)
        (out_dir / name).write_text(render(lines), encoding="utf-8")
        counts[name] = len(lines)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the Maven CRM CSVs")
    parser.add_argument("--out", type=Path, default=HERE, help="folder the jsonl files are written to")
    args = parser.parse_args(argv)
    for name, n in build(args.data, args.out).items():
        print(f"{name}: {n} lines")


if __name__ == "__main__":
    main()
