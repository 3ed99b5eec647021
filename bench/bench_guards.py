"""Benchmark: guard overhead per chat turn (validators that call no LLM), target <= 20 ms median.

    .venv/bin/python bench/bench_guards.py [--rounds N] [--json]

Runs `guards.check_reply` on realistic crew responses of every intent (a pipeline answer, an
account brief, a markdown table of stuck deals, next best actions, an onboarding plan, and a
closing email with a queued-email action and a 60% discount to cap; the pipeline answer carries a
typed output checked by `Guard.for_pydantic`), with a name index the size of
the Maven CRM (85 accounts, 42 reps and managers, 7 products, 8,800 deal ids; built from
shared/data/maven-crm when present, else synthetic names of the same counts). Prints the median
and p95 milliseconds per turn over all turns, per scenario, and per validator; the first call
(cold caches) is reported apart. The name index is built once, as the graph's caller does.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import BaseModel

from contracts import CrewResponse, ProposedAction
from guards import GuardContext, NameIndex, check_reply

MAVEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "maven-crm"
ADDRESS = "500 Market Street, Suite 100, San Francisco, CA 94105, USA"


def crm_names() -> list[str]:
    """Every name the CRM knows (Maven data, or synthetic names of the same counts)."""
    stages = ["Prospecting", "Engaging", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]
    if (MAVEN / "accounts.csv").exists():
        with (MAVEN / "accounts.csv").open() as f:
            accounts = list(csv.DictReader(f))
        with (MAVEN / "sales_teams.csv").open() as f:
            teams = list(csv.DictReader(f))
        with (MAVEN / "products.csv").open() as f:
            products = [r["product"] for r in csv.DictReader(f)]
        with (MAVEN / "sales_pipeline.csv").open() as f:
            deal_ids = [r["opportunity_id"] for r in csv.DictReader(f)]
        names: list[str] = [a["account"] for a in accounts] + [a["office_location"] for a in accounts]
        names += [a["sector"] for a in accounts]
        names += [t[k] for t in teams for k in ("sales_agent", "manager", "regional_office")]
        return names + products + deal_ids + stages + ["Lena Ortiz", "Dana Whitfield", "Tom Becker"]
    synthetic = [f"Account{i}" for i in range(85)] + [f"Rep{i} Person{i}" for i in range(42)]
    synthetic += [f"{i:04d}AB{i % 97:02d}" for i in range(8800)]
    synthetic += [
        "GTX Basic",
        "GTX Pro",
        "MG Special",
        "MG Advanced",
        "GTX Plus Pro",
        "GTX Plus Basic",
        "GTK 500",
    ]
    return synthetic + stages


class RepAnswer(BaseModel):
    """A typed crew output, so the schema validator (Guard.for_pydantic) is part of the turn."""

    rep: str
    won: int
    win_rate_percent: float
    answer: str


def scenarios() -> list[tuple[str, str, str, CrewResponse]]:
    """(name, intent, message, response) of realistic turns."""
    email = (
        "Subject: GTX Plus Pro for Cancity\n\nHi Lena,\n\nThanks for your time last week. As discussed, we "
        "can offer Cancity 60% off GTX Plus Pro (list price $5,482 per unit) if you sign this quarter. "
        "Our customers in retail typically roll out within 30 days.\n\nWould Thursday at 2pm work for a "
        "call?\n\nBest regards,\nDarcel Schlecht\nFlowstate Demo Hardware Inc."
    )
    rows = [
        {"deal": d, "account": a, "days": n}
        for d, a, n in [("EC4QE1BX", "Cancity", 211), ("Z063OYW0", "Isdom", 150), ("MV1LWRNH", "Codehow", 98)]
    ]
    return [
        (
            "pipeline answer",
            "pipeline",
            "What's Darcel Schlecht's win rate?",
            CrewResponse(
                reply=(
                    "Darcel Schlecht has a win rate of 63.1% on closed deals (349 won out of 553 closed), "
                    "worth $1,153,214 in won revenue. Darcel is one of the top performers in Melvin "
                    "Marxen's team in the Central office."
                ),
                data={"rep": "Darcel Schlecht", "won": 349, "win_rate_percent": 63.1, "answer": "63.1%"},
                facts=[
                    {
                        "kind": "rep_metrics",
                        "rep": "Darcel Schlecht",
                        "won": 349,
                        "lost": 204,
                        "closed": 553,
                        "win_rate": 0.6311,
                        "won_value": 1153214,
                        "manager": "Melvin Marxen",
                        "office": "Central",
                    }
                ],
            ),
        ),
        (
            "account brief",
            "discovery",
            "Research Betatech before my call tomorrow",
            CrewResponse(
                reply=(
                    "Betatech at a glance:\n- Sector: Medical\n- Location: Kenya\n- Employees: 1,185\n"
                    "- Revenue: $647.18M\n- Founded: 1986\n\nTalking points: ask about their expansion "
                    "plans and whether their MG Special units are due for replacement. Reach Tom Becker "
                    "at tom.becker@betatech.com."
                ),
                facts=[
                    {
                        "kind": "account",
                        "account": "Betatech",
                        "sector": "medical",
                        "employees": 1185,
                        "revenue_musd": 647.18,
                        "year_established": 1986,
                        "office_location": "Kenya",
                    }
                ],
            ),
        ),
        (
            "stuck deals table",
            "pipeline",
            "Which deals have been stuck in engaging for more than 90 days?",
            CrewResponse(
                reply=(
                    "I found 3 deals stuck in Engaging for more than 90 days:\n\n| Deal | Account | Days |\n"
                    "|---|---|---|\n| EC4QE1BX | Cancity | 211 |\n| Z063OYW0 | Isdom | 150 |\n"
                    "| MV1LWRNH | Codehow | 98 |"
                ),
                facts=[{"kind": "stuck_deals", "deals": rows}],
            ),
        ),
        (
            "next best actions",
            "nba",
            "Give me my top 3 actions for today",
            CrewResponse(
                reply=(
                    "Here are your top 3 actions for today:\n1. **Call Isdom** about deal Z063OYW0 - stuck "
                    "in Engaging for 150 days.\n2. **Send the GTX Pro proposal** to Cancity; they asked "
                    "about pricing last week.\n3. **Follow up with Codehow** within 2 days on MV1LWRNH.\n\n"
                    "Start with Isdom: it has the most value at risk ($4,514)."
                ),
                facts=[*rows, {"kind": "deal", "deal": "Z063OYW0", "value": 4514}],
            ),
        ),
        (
            "onboarding plan",
            "delivery",
            "We just won the Codehow deal, set up the onboarding project",
            CrewResponse(
                reply=(
                    "Onboarding plan for Codehow:\n\n**Week 1 - Kickoff**\n- Introductory call with the "
                    "Codehow IT lead\n- Confirm delivery address and installation window\n\n**Week 2 - "
                    "Installation**\n- Install and configure the GTX Basic units\n- Run acceptance tests\n\n"
                    "**Week 3 - Training & Handover**\n- Train end users\n- Hand over to Customer Success"
                ),
                facts=[{"kind": "deal", "deal": "MV1LWRNH", "account": "Codehow", "product": "GTX Basic"}],
                proposed_action=ProposedAction(
                    kind="create_task", summary="Create the Codehow onboarding tasks"
                ),
            ),
        ),
        (
            "closing email, 60% asked",
            "closing",
            "Draft an email offering Cancity 60% off GTX Plus Pro",
            CrewResponse(
                reply=email,
                facts=[
                    {"kind": "product", "product": "GTX Plus Pro", "list_price": 5482},
                    {"kind": "account", "account": "Cancity", "contact": "Lena Ortiz"},
                ],
                proposed_action=ProposedAction(
                    kind="queue_email",
                    summary="Email Lena Ortiz the GTX Plus Pro offer (60% off)",
                    params={
                        "to": "lena.ortiz@cancity.com",
                        "subject": "GTX Plus Pro for Cancity",
                        "body": email,
                    },
                ),
            ),
        ),
    ]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="turns per scenario (default 200)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    t0 = time.perf_counter()
    index = NameIndex.from_names(crm_names())
    build_ms = (time.perf_counter() - t0) * 1000
    cases = scenarios()

    def run(name: str, intent: str, message: str, response: CrewResponse) -> Any:
        context = GuardContext(
            output_model=RepAnswer if response.data else None,
            intent=intent,
            message=message,
            known_names=index,
            allowed_pii=["lena.ortiz@cancity.com"],
        )
        return check_reply(response, context)

    t0 = time.perf_counter()
    run(*cases[0])
    cold_ms = (time.perf_counter() - t0) * 1000

    per_turn: list[float] = []
    per_scenario: dict[str, list[float]] = {c[0]: [] for c in cases}
    per_validator: dict[str, list[float]] = {}
    decisions: dict[str, str] = {}
    for _ in range(args.rounds):
        for case in cases:
            t = time.perf_counter()
            outcome = run(*case)
            ms = (time.perf_counter() - t) * 1000
            per_turn.append(ms)
            per_scenario[case[0]].append(ms)
            decisions[case[0]] = outcome.decision
            for v in outcome.verdicts:
                per_validator.setdefault(v.validator, []).append(v.latency_ms)

    result: dict[str, Any] = {
        "turns": len(per_turn),
        "median_ms": round(statistics.median(per_turn), 3),
        "p95_ms": round(pct(per_turn, 0.95), 3),
        "cold_first_turn_ms": round(cold_ms, 1),
        "name_index_build_ms": round(build_ms, 1),
        "names_indexed": len(crm_names()),
        "per_scenario": {
            k: {
                "median_ms": round(statistics.median(v), 3),
                "p95_ms": round(pct(v, 0.95), 3),
                "decision": decisions[k],
            }
            for k, v in per_scenario.items()
        },
        "per_validator_median_ms": {k: round(statistics.median(v), 3) for k, v in per_validator.items()},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"guard overhead per turn: median {result['median_ms']:.2f} ms, p95 {result['p95_ms']:.2f} ms "
        f"over {result['turns']} turns (target <= 20 ms median)"
    )
    print(
        f"cold first turn {cold_ms:.1f} ms; name index of {result['names_indexed']} names built once in "
        f"{build_ms:.1f} ms"
    )
    for k, v in result["per_scenario"].items():
        print(f"  {k:<26} median {v['median_ms']:6.2f} ms  p95 {v['p95_ms']:6.2f} ms  ({v['decision']})")
    medians = result["per_validator_median_ms"].items()
    print("  per validator (median ms): " + ", ".join(f"{k} {v:.3f}" for k, v in medians))


if __name__ == "__main__":
    main()
