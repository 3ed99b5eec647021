"""Product-catalog and team-directory questions answered by rules (`tools.directory_facts`,
through `tools.account_facts.answer_fact`), on the small CRM of `tests/tools/conftest.py` plus, where
a test needs them, the product MG Special (MG series, $55) and the rep Dee Delta (Nat Boss, East,
no deals). Every figure below is worked out by hand from those records."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from contracts import Entities, EntityRef
from crm.db import session_scope
from crm.repository import create_product, create_rep
from crm.schemas import ProductCreate, SalesRepCreate
from guards.grounding import check_grounding
from tests.tools.conftest import CRM
from tests.tools.conftest import crm_data as crm_data
from tools.account_facts import answer_fact, safe_answer_fact
from tools.answers import Answer
from tools.directory_facts import is_directory_question
from tools.query_plan import masked


@pytest.fixture
def crm(crm_data: CRM, clean_db: Engine) -> CRM:
    """The fixture CRM with MG Special ($55) and Dee Delta (Nat Boss, East, no deal) added."""
    with session_scope(clean_db) as s:
        crm_data.product["MG Special"] = create_product(
            s, ProductCreate(name="MG Special", series="MG", list_price=55)
        ).id
        crm_data.rep["Dee Delta"] = create_rep(
            s, SalesRepCreate(name="Dee Delta", manager="Nat Boss", regional_office="East")
        ).id
    return crm_data


def _ask(engine: Engine, message: str, ents: Entities, rep_ids: frozenset[int] | None = None) -> Answer:
    with session_scope(engine) as s:
        answer = answer_fact(s, message, ents, rep_ids=rep_ids)
    assert answer is not None, message
    # every figure of the sentence is in its facts (what the grounding guard checks)
    names = ["GTX Basic", "GTX Pro", "MG Advanced", "MG Special"]
    issues = check_grounding(answer.draft, names, answer.facts, check_names=False, small_count_max=0)
    assert issues == [], (answer.draft, issues)
    return answer


def _office(key: str) -> EntityRef:
    return EntityRef(kind="office", key=key, mention=key)


# --- the catalog ------------------------------------------------------------------------------


def test_a_series_lists_its_products_with_their_prices(crm: CRM, clean_db: Engine) -> None:
    a = _ask(clean_db, "Which products make up the MG line?", Entities())
    assert a.draft == "The MG series has 2 products: MG Advanced ($3,393) and MG Special ($55)."
    assert a.names == ["MG Advanced", "MG Special"] and [s.kind for s in a.sources] == ["product"] * 2
    a = _ask(clean_db, "how many gtx products are there", Entities())
    assert a.draft.startswith("The GTX series has 2 products: GTX Basic ($550)")
    # a named product's series: "the same series as"
    a = _ask(
        clean_db, "What else is in the same series as MG Special?", crm.entities(("product", "MG Special"))
    )
    assert a.draft.startswith("The MG series has 2 products")


def test_the_catalog_and_its_series_are_counted(crm: CRM, clean_db: Engine) -> None:
    a = _ask(clean_db, "How many product families do we offer?", Entities())
    assert a.draft == "We have 2 product series: GTX (2 products) and MG (2 products)."
    a = _ask(clean_db, "What products do we sell?", Entities())
    assert a.draft.startswith("We have 4 products in 2 series: GTX Basic ($550), GTX Pro ($4,821)")
    assert a.facts[0]["products"] == 4 and a.facts[0]["series_count"] == 2


def test_a_products_price_and_series(crm: CRM, clean_db: Engine) -> None:
    a = _ask(clean_db, "What does GTX Pro go for at list?", crm.entities(("product", "GTX Pro")))
    assert a.draft == "GTX Pro is in the GTX series, with a list price of $4,821."
    a = _ask(clean_db, "Which family does MG Advanced belong to?", crm.entities(("product", "MG Advanced")))
    assert "in the MG series" in a.draft and a.sources[0].data["list_price"] == 3393.0


def test_cheapest_and_dearest_overall_and_within_a_series(crm: CRM, clean_db: Engine) -> None:
    a = _ask(clean_db, "What is our least expensive offering?", Entities())
    assert a.draft == "The cheapest product is MG Special ($55). (Compared across 4 products.)"
    a = _ask(clean_db, "Top priced item in the GTX series?", Entities())
    assert a.draft.startswith("The most expensive product in the GTX series is GTX Pro ($4,821).")
    a = _ask(clean_db, "cheapest and priciest MG products", Entities())
    assert a.draft.startswith(
        "The cheapest product in the MG series is MG Special ($55) "
        "and the most expensive is MG Advanced ($3,393)."
    )


def test_totals_and_averages_of_list_prices(crm: CRM, clean_db: Engine) -> None:
    a = _ask(clean_db, "Mean list price of the GTX series?", Entities())
    # (550 + 4,821) / 2
    assert a.draft.startswith("The average list price of the 2 products in the GTX series is $2,685.50")
    a = _ask(clean_db, "A buyer takes one of each MG product at list price: what's the bill?", Entities())
    assert "comes to $3,448 at list price" in a.draft  # 3,393 + 55
    ents = crm.entities(("product", "GTX Pro"), ("product", "GTX Basic"))
    a = _ask(clean_db, "What would 2 GTX Pro plus a GTX Basic cost at list price?", ents)
    assert a.draft == "At list price, 2 × GTX Pro ($4,821) and GTX Basic ($550) come to $10,192 in total."
    # two products named without a sum asked for: each one's price
    a = _ask(clean_db, "What do GTX Pro and GTX Basic go for at list?", ents)
    assert a.draft.startswith("GTX Pro is in the GTX series, with a list price of $4,821; GTX Basic is")


def test_two_products_compared_by_difference_and_ratio(crm: CRM, clean_db: Engine) -> None:
    ents = crm.entities(("product", "GTX Pro"), ("product", "MG Advanced"))
    a = _ask(clean_db, "By how much is GTX Pro pricier than MG Advanced?", ents)
    assert a.draft == "GTX Pro ($4,821) costs $1,428 more than MG Advanced ($3,393)."
    a = _ask(clean_db, "By how much does GTX Pro exceed MG Advanced in price?", ents)
    assert a.draft == "GTX Pro ($4,821) costs $1,428 more than MG Advanced ($3,393)."
    ents = crm.entities(("product", "GTX Basic"), ("product", "MG Advanced"))
    a = _ask(clean_db, "How much cheaper is GTX Basic than MG Advanced?", ents)
    assert a.draft == "GTX Basic ($550) costs $2,843 less than MG Advanced ($3,393)."
    ents = crm.entities(("product", "GTX Basic"), ("product", "GTX Pro"))
    a = _ask(clean_db, "GTX Pro is how many times the cost of GTX Basic?", ents)
    # 4,821 / 550 = 8.765...
    assert a.draft == "GTX Pro ($4,821) costs 8.77 times as much as GTX Basic ($550)."
    assert {"metric": "price_ratio", "value": 8.77, "of": "GTX Pro", "to": "GTX Basic"} in a.facts


# --- the team ---------------------------------------------------------------------------------


def test_reps_counted_in_all_per_office_and_in_an_office(crm: CRM, clean_db: Engine) -> None:
    a = _ask(clean_db, "How many salespeople are on the payroll?", Entities())
    assert a.draft == "We have 4 sales reps (East 2 and West 2): Ann Alpha, Bob Beta, Cy Gamma and Dee Delta."
    a = _ask(clean_db, "Rep headcount by office?", Entities())
    assert a.draft == "Sales reps per regional office: East 2 and West 2 (4 in total)."
    a = _ask(clean_db, "Who works in the West office?", Entities(items=[_office("West")]))
    assert a.draft == "The West office has 2 sales reps: Ann Alpha and Bob Beta."


def test_managers_counted_and_listed(crm: CRM, clean_db: Engine) -> None:
    a = _ask(clean_db, "How many managers do we have?", Entities())
    assert a.draft == "There are 2 managers: Mia Manager (2 reps) and Nat Boss (2 reps)."
    a = _ask(clean_db, "Who runs the East region?", Entities(items=[_office("East")]))
    assert a.draft == "There is 1 manager in the East office: Nat Boss (2 reps)."


def test_the_largest_and_smallest_team(crm_data: CRM, clean_db: Engine) -> None:
    a = _ask(clean_db, "Which manager leads the biggest team?", Entities())
    assert a.draft == "The largest team is Mia Manager's, with 2 sales reps. (Compared across 2 managers.)"
    a = _ask(clean_db, "Whose team has the fewest reps?", Entities())
    assert a.draft.startswith("The smallest team is Nat Boss's, with 1 sales rep.")


def test_a_tie_for_the_largest_team_names_every_manager(crm: CRM, clean_db: Engine) -> None:
    a = _ask(clean_db, "Which manager has the most reps?", Entities())
    assert a.draft.startswith(
        "2 managers share the largest team, 2 sales reps each: Mia Manager and Nat Boss."
    )


def test_a_reps_teammates_leave_the_rep_out(crm: CRM, clean_db: Engine) -> None:
    a = _ask(clean_db, "Who are Ann Alpha's colleagues?", crm.entities(("rep", "Ann Alpha")))
    assert a.draft == "Ann Alpha has 1 teammate under Mia Manager: Bob Beta."
    # the resolver adds the manager of "Cy Gamma's manager"; the question is still the teammates
    ents = crm.entities(("rep", "Cy Gamma"))
    ents.items.append(crm.ref("manager", "Nat Boss", mention="Cy Gamma's manager"))
    a = _ask(clean_db, "Who else reports to Cy Gamma's manager?", ents)
    assert a.draft == "Cy Gamma has 1 teammate under Nat Boss: Dee Delta."


def test_reps_without_any_deal(crm: CRM, clean_db: Engine) -> None:
    a = _ask(clean_db, "Which sales agents have never been assigned a deal?", Entities())
    assert a.draft == "Of the 4 sales reps, 1 has no deals at all: Dee Delta (Nat Boss, East)."
    a = _ask(
        clean_db,
        "Is anyone on Nat Boss's team without any opportunities?",
        crm.entities(("manager", "Nat Boss")),
    )
    assert a.draft == "Of Nat Boss's 2 reps, 1 has no deals at all: Dee Delta (East)."
    a = _ask(clean_db, "Any reps in the West office with zero deals?", Entities(items=[_office("West")]))
    assert a.draft == "Every one of the 2 reps in the West office has at least one deal."
    # a caller who reads Ann's deals only is answered over Ann alone
    a = _ask(clean_db, "Which reps have no deals?", Entities(), rep_ids=frozenset({crm.rep["Ann Alpha"]}))
    assert "whose deals you can see" in a.draft and "Dee Delta" not in a.draft


# --- what is left to other rules ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "refs"),
    [
        ("How many GTX Pro deals did we win?", [("product", "GTX Pro")]),
        ("Which product brought in the most revenue?", []),
        ("What's the average deal size for MG Advanced?", [("product", "MG Advanced")]),
        ("Which reps have no won deals?", [("stage", "won")]),
        ("Which rep closed the most deals?", []),
        ("Which products has Ann Alpha sold?", [("rep", "Ann Alpha")]),
        ("How many accounts are in retail?", [("sector", "retail")]),
        ("Who is Ann Alpha's manager?", [("rep", "Ann Alpha")]),
        ("What's the win rate of the West office?", [("office", "West")]),
        ("Which customers have no deals yet?", []),
        ("Which manager's team won the most deals?", []),
        # a price condition is not read by these rules: no answer rather than the whole catalog
        ("Which products cost more than $2,000?", []),
        ("List the products priced below 1000 dollars", []),
        # "a sales rep" is not the team asked to be listed
        ("What can you do for a sales rep like me?", []),
        # a follow-up about someone the resolver did not carry over
        ("And who manages him?", []),
    ],
)
def test_deal_and_account_questions_are_not_directory_questions(
    message: str, refs: list[tuple[str, str]]
) -> None:
    ents = Entities(items=[EntityRef(kind=k, key=v, id=i, mention=v) for i, (k, v) in enumerate(refs, 1)])  # type: ignore[arg-type]
    assert not is_directory_question(masked(message, ents), ents)


def test_directory_questions_are_recognised_from_the_masked_text(crm: CRM) -> None:
    ents = crm.entities(("product", "GTX Pro"), ("product", "GTX Basic"))
    assert is_directory_question(masked("How much more is GTX Pro than GTX Basic?", ents), ents)
    assert is_directory_question("which products are in the gtx series?", Entities())
    assert is_directory_question("how many sales reps do we have?", Entities())
    # a product's name cannot make a question about the catalog ("Pro Pricing" is masked)
    named = Entities(
        items=[EntityRef(kind="account", key="Pro Pricing Ltd", id=9, mention="Pro Pricing Ltd")]
    )
    assert not is_directory_question(masked("Tell me about Pro Pricing Ltd", named), named)


def test_an_existing_fact_still_takes_its_own_rule(crm: CRM, clean_db: Engine) -> None:
    # a manager's team and a rep's office stay with `account_facts`
    with session_scope(clean_db) as s:
        team = safe_answer_fact(s, "Who is on Mia Manager's team?", crm.entities(("manager", "Mia Manager")))
        office = safe_answer_fact(s, "Which office is Cy Gamma in?", crm.entities(("rep", "Cy Gamma")))
    assert team is not None and team.draft.startswith("Mia Manager manages 2 sales reps in the West office")
    assert office is not None and office.draft == "Cy Gamma works in the East regional office."


def test_which_of_several_named_accounts_is_first_on_an_attribute(crm_data: CRM, clean_db: Engine) -> None:
    # Acme 2,822 employees, Betaco 500, Gammaco 1,500
    ents = crm_data.entities(("account", "Betaco"), ("account", "Gammaco"), ("account", "Acme"))
    with session_scope(clean_db) as s:
        found = safe_answer_fact(s, "Which of them has the most employees?", ents)
        fewest = safe_answer_fact(s, "and which of those has the fewest staff?", ents)
    assert found is not None and found.draft.startswith(
        "Of those 3 accounts, Acme has the most employees (2,822)"
    )
    assert fewest is not None and "Betaco has the fewest employees (500)" in fewest.draft


def test_the_sector_with_the_most_accounts(crm_data: CRM, clean_db: Engine) -> None:
    # retail: Betaco and Gammaco; technology: Acme; software: Deltaco
    with session_scope(clean_db) as s:
        most = safe_answer_fact(s, "Which sector has the most accounts?", Entities())
    assert most is not None and most.draft.startswith("The retail sector has the most accounts: 2 accounts")


def test_accounts_compared_or_ranked_on_their_own_attributes(crm_data: CRM, clean_db: Engine) -> None:
    # Acme 2,822 employees, Betaco 500, Gammaco 1,500 (retail: Betaco, Gammaco)
    two = crm_data.entities(("account", "Betaco"), ("account", "Gammaco"))
    retail = crm_data.entities(("sector", "retail"))
    with session_scope(clean_db) as s:
        more = safe_answer_fact(s, "Which has more employees, Betaco or Gammaco?", two)
        top = safe_answer_fact(s, "Which retail company has the most employees?", retail)
        staff = safe_answer_fact(s, "What's the total number of sales reps in the company?", Entities())
        won = safe_answer_fact(s, "Which customer has the most revenue?", Entities())
    assert more is not None and "Gammaco has the most employees (1,500)" in more.draft
    assert (
        top is not None
        and top.draft == "Of the 2 accounts in the retail sector, Gammaco has the most employees (1,500)."
    )
    assert staff is not None and "3 sales reps" in staff.draft  # "the company" is ours, not an account
    assert won is None  # revenue from customers is the deal rules' (won revenue)


def test_the_sector_of_the_parent_in_context(crm_data: CRM, clean_db: Engine) -> None:
    # Acme (technology) is Betaco's parent; a follow-up carries Acme as "the parent"
    with session_scope(clean_db) as s:
        found = safe_answer_fact(
            s, "And which sector is the parent itself in?", crm_data.entities(("account", "Acme"))
        )
    assert found is not None and found.draft == "Acme is in the technology sector."


def test_two_sectors_compared_by_their_accounts(crm_data: CRM, clean_db: Engine) -> None:
    ents = crm_data.entities(("sector", "retail"), ("sector", "software"))
    with session_scope(clean_db) as s:
        found = safe_answer_fact(s, "Do we have more accounts in retail or in software?", ents)
    assert found is not None
    assert (
        found.draft
        == "The retail sector has 2 accounts and the software sector 1 account: retail has 1 account more."
    )
