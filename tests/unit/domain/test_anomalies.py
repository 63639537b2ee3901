"""Anomaly flags learned from the pair's own order history (domain/anomalies.py)."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commerce_sync.domain.anomalies import (
    CHECKS,
    AnomalyFlag,
    OrderHistory,
    anomaly_flags,
    anomaly_flags_both_ways,
    anomaly_score,
    needs_approval,
)
from commerce_sync.domain.models import Address, Customer, Order, OrderLine, Origin
from commerce_sync.domain.pair_rules import AnomalyRules

EMAIL = "zed.private@example.org"
PII = [
    EMAIL,
    "zed.private",
    "Zed Privatename",
    "17 Secretlane Rd",
    "Flat 9",
    "Hiddenville",
    "99999",
    "+1 555 0100",
]


def address(country: str) -> Address:
    return Address(
        name="Zed Privatename",
        line1="17 Secretlane Rd",
        line2="Flat 9",
        city="Hiddenville",
        postal_code="99999",
        country=country,
        phone="+1 555 0100",
    )


def make_order(
    total: str | Decimal = "100.00",
    *,
    lines: list[tuple[str, int]] | None = None,
    billing: str = "US",
    shipping: str = "US",
    method: str = "",
) -> Order:
    return Order(
        origin=Origin(system="kentico", external_id="7"),
        number="7",
        placed_at=datetime(2026, 1, 10, tzinfo=UTC),
        currency="USD",
        customer=Customer(email=EMAIL, first_name="Zed", last_name="Privatename"),
        billing_address=address(billing),
        shipping_address=address(shipping),
        lines=[
            OrderLine(sku=sku, quantity=quantity, unit_price=Decimal("1.00"))
            for sku, quantity in (lines or [("A", 1)])
        ],
        shipping_method=method,
        total=Decimal(total),
    )


def rules(**changes: object) -> AnomalyRules:
    return AnomalyRules.model_validate(changes)


def flags_of(
    order: Order,
    history: OrderHistory,
    anomaly_rules: AnomalyRules | None = None,
    *,
    is_new_customer: bool = False,
) -> dict[str, AnomalyFlag]:
    found = anomaly_flags(order, history, anomaly_rules or rules(), is_new_customer=is_new_customer)
    assert len({flag.check for flag in found}) == len(found)  # one flag per check
    return {flag.check: flag for flag in found}


def spread(count: int, low: int = 60, width: int = 50) -> list[Decimal]:
    """`count` store totals spread evenly over low..low+width-1."""
    return [Decimal(low + index % width) for index in range(count)]


def flag(check: str, score: float) -> AnomalyFlag:
    return AnomalyFlag(check=check, score=score, reason="")


# -- total_vs_store ----------------------------------------------------------------------


def test_a_total_far_above_the_store_is_flagged_with_its_figures() -> None:
    history = OrderHistory(store_totals=spread(412))
    found = flags_of(make_order("2400.00"), history)["total_vs_store"]
    logs = [math.log(float(total)) for total in spread(412)]
    centre = math.log(float(statistics.median(spread(412))))
    scale = 1.4826 * statistics.median([abs(value - centre) for value in logs])
    assert found.score == round((math.log(2400) - centre) / scale / 6.0, 2)
    assert found.score > 1
    assert found.reason.startswith("total 2400.00 USD is 28.6x this store's median order (")
    assert "84.00 over 412 orders; usual up to " in found.reason


def test_a_total_within_the_store_spread_is_not_flagged() -> None:
    history = OrderHistory(store_totals=spread(412))
    assert "total_vs_store" not in flags_of(make_order("150.00"), history)


def test_low_totals_are_not_flagged() -> None:
    history = OrderHistory(store_totals=spread(412))
    assert flags_of(make_order("0.50"), history) == {}
    assert flags_of(make_order("0.00"), history) == {}
    assert flags_of(make_order("-20.00"), history) == {}


def test_too_little_store_history_is_silent() -> None:
    history = OrderHistory(store_totals=[Decimal("10.00")] * 19)
    assert flags_of(make_order("99999.00"), history) == {}


def test_total_vs_store_can_be_turned_off() -> None:
    history = OrderHistory(store_totals=spread(412))
    assert flags_of(make_order("2400.00"), history, rules(total_vs_store=None)) == {}


def test_all_equal_totals_floor_the_spread_at_ten_percent() -> None:
    history = OrderHistory(store_totals=[Decimal("100.00")] * 20)
    found = flags_of(make_order("200.00"), history)["total_vs_store"]
    assert found.score == round(math.log(2) / math.log(1.1) / 6.0, 2) == 1.21
    assert found.reason == (
        "total 200.00 USD is 2.0x this store's median order "
        "(100.00 over 20 orders; usual up to 177.16)"
    )
    # the median itself, and anything at or below it, is not unusual
    assert flags_of(make_order("100.00"), history) == {}


def test_totals_at_or_below_zero_are_not_learned_from() -> None:
    learned = [Decimal("100.00")] * 19
    ignored = [Decimal("0.00"), Decimal("-50.00"), Decimal("0")]
    history = OrderHistory(store_totals=learned + ignored)
    assert flags_of(make_order("900.00"), history) == {}  # 19 learned: too little
    history = OrderHistory(store_totals=[*learned, Decimal("100.00"), *ignored])
    found = flags_of(make_order("900.00"), history)["total_vs_store"]
    assert "(100.00 over 20 orders;" in found.reason


def test_amounts_beyond_a_floats_range_are_weighed_without_error() -> None:
    """Logs are taken in floats; an amount a float cannot hold goes through Decimal."""
    totals = [*spread(30), Decimal("1E-400")]
    found = flags_of(make_order("1E+400"), OrderHistory(store_totals=totals))["total_vs_store"]
    logs = [float(total.ln()) for total in totals]
    centre = float(statistics.median(totals).ln())
    scale = 1.4826 * statistics.median([abs(value - centre) for value in logs])
    assert found.score == round((float(Decimal("1E+400").ln()) - centre) / scale / 6.0, 2)
    assert 1000 < found.score < 1_000_000  # ln(1E+400) is 921: a finite, absurd score
    assert "over 31 orders" in found.reason
    history = OrderHistory(store_totals=totals)
    assert "total_vs_store" not in flags_of(make_order("1E-400"), history)


# -- total_vs_customer -------------------------------------------------------------------


def test_a_total_far_above_the_customers_own_is_flagged() -> None:
    history = OrderHistory(customer_totals=[Decimal("50.00"), Decimal("60.00"), Decimal("55.00")])
    found = flags_of(make_order("900.00"), history)["total_vs_customer"]
    assert found.score >= 1
    assert found.reason.startswith(
        "total 900.00 USD is 16.4x this customer's median order (55.00 over 3 orders;"
    )


def test_customer_totals_near_their_usual_are_not_flagged() -> None:
    history = OrderHistory(customer_totals=[Decimal("50.00"), Decimal("60.00"), Decimal("55.00")])
    assert flags_of(make_order("65.00"), history) == {}


def test_too_few_customer_orders_are_silent() -> None:
    history = OrderHistory(customer_totals=[Decimal("50.00"), Decimal("60.00")])
    assert flags_of(make_order("900.00"), history) == {}


def test_total_vs_customer_can_be_turned_off() -> None:
    history = OrderHistory(customer_totals=[Decimal("50.00")] * 5)
    assert flags_of(make_order("900.00"), history, rules(total_vs_customer=None)) == {}


def test_all_equal_customer_totals_do_not_divide_by_zero() -> None:
    history = OrderHistory(customer_totals=[Decimal("50.00")] * 5)
    found = flags_of(make_order("100.00"), history)["total_vs_customer"]
    # twice the usual against a customer's floor of a 25% spread: ln 2 / ln 1.25 / 6
    assert found.score == 0.52


# -- sku_quantity ------------------------------------------------------------------------


def test_a_quantity_far_above_the_skus_usual_is_flagged() -> None:
    history = OrderHistory(sku_quantities={"WIDGET-1": [1, 2, 3] * 19})
    order = make_order(lines=[("WIDGET-1", 20), ("OTHER", 1), ("WIDGET-1", 22)])
    found = flags_of(order, history)["sku_quantity"]
    assert found.score == round((42 - 2) / 1.4826 / 6.0, 2)
    assert found.reason == "42 x WIDGET-1 where orders usually take 1-3 (median 2 over 57 orders)"


def test_usual_quantities_are_not_flagged() -> None:
    history = OrderHistory(sku_quantities={"WIDGET-1": [1, 2, 3] * 19})
    assert flags_of(make_order(lines=[("WIDGET-1", 5)]), history) == {}
    assert flags_of(make_order(lines=[("WIDGET-1", 1)]), history) == {}


def test_too_few_orders_of_a_sku_are_silent() -> None:
    history = OrderHistory(sku_quantities={"WIDGET-1": [1] * 9})
    assert flags_of(make_order(lines=[("WIDGET-1", 500)]), history) == {}


def test_sku_quantity_can_be_turned_off() -> None:
    history = OrderHistory(sku_quantities={"WIDGET-1": [1] * 20})
    order = make_order(lines=[("WIDGET-1", 500)])
    assert flags_of(order, history, rules(sku_quantity=None)) == {}


def test_a_sku_always_bought_alike_floors_the_spread_at_one_unit() -> None:
    history = OrderHistory(sku_quantities={"W": [1] * 10})
    found = flags_of(make_order(lines=[("W", 5)]), history)["sku_quantity"]
    assert found.score == round(4 / 6.0, 2)
    assert found.reason == "5 x W where orders usually take 1-2 (median 1 over 10 orders)"
    assert flags_of(make_order(lines=[("W", 3)]), history) == {}  # 0.33: under report_from


def test_only_the_worst_sku_is_flagged_and_counts_the_others() -> None:
    history = OrderHistory(sku_quantities={"A": [1] * 10, "B": [1] * 10, "C": [1] * 10})
    order = make_order(lines=[("A", 10), ("B", 30), ("C", 2)])
    found = anomaly_flags(order, history, rules(), is_new_customer=False)
    assert [f.check for f in found] == ["sku_quantity"]
    assert found[0].score == round(29 / 6.0, 2)
    assert found[0].reason.startswith("30 x B where")
    assert found[0].reason.endswith(", and 1 other SKU is also over its usual quantity")


# -- rare_route --------------------------------------------------------------------------


def test_a_never_seen_route_abroad_scores_two() -> None:
    history = OrderHistory(orders_billed_in_country=412, orders_on_route=0)
    found = flags_of(make_order(billing="US", shipping="NG"), history)["rare_route"]
    assert found.score == 2.0
    assert found.reason == (
        "billed in US, shipped to NG: 0 of 412 earlier orders billed in US went to NG "
        "(under 2% is rare)"
    )


def test_a_route_seen_once_in_a_big_history_still_waits() -> None:
    history = OrderHistory(orders_billed_in_country=607, orders_on_route=1)
    assert flags_of(make_order(billing="US", shipping="NG"), history)["rare_route"].score == 2.0


def test_a_route_at_the_limit_scores_one_and_twice_as_common_half() -> None:
    order = make_order(billing="US", shipping="GB")
    at_limit = OrderHistory(orders_billed_in_country=100, orders_on_route=2)
    assert flags_of(order, at_limit)["rare_route"].score == 1.0
    twice = OrderHistory(orders_billed_in_country=100, orders_on_route=4)
    assert flags_of(order, twice)["rare_route"].score == 0.5
    usual = OrderHistory(orders_billed_in_country=100, orders_on_route=5)  # US -> CA, say
    assert flags_of(order, usual) == {}


def test_rare_route_needs_two_countries_and_enough_history() -> None:
    never = OrderHistory(orders_billed_in_country=412, orders_on_route=0)
    assert flags_of(make_order(billing="US", shipping="US"), never) == {}
    short = OrderHistory(orders_billed_in_country=19, orders_on_route=0)
    assert flags_of(make_order(billing="US", shipping="NG"), short) == {}


def test_rare_route_can_be_turned_off() -> None:
    history = OrderHistory(orders_billed_in_country=412, orders_on_route=0)
    order = make_order(billing="US", shipping="NG")
    assert flags_of(order, history, rules(rare_route_share=None)) == {}


# -- shared_address ----------------------------------------------------------------------


def test_many_other_emails_at_the_address_are_flagged() -> None:
    found = flags_of(make_order(), OrderHistory(other_emails_at_address=4))["shared_address"]
    assert found.score == 1.33
    assert found.reason == (
        "5 different e-mails ordered to this address in the last 30 days, this one included "
        "(limit 3)"
    )


def test_few_other_emails_at_the_address_are_not_reported() -> None:
    assert flags_of(make_order(), OrderHistory(other_emails_at_address=1)) == {}
    everything = rules(report_from=0)
    found = flags_of(make_order(), OrderHistory(other_emails_at_address=1), everything)
    assert found["shared_address"].reason.startswith("2 different e-mails ordered to this address")
    assert flags_of(make_order(), OrderHistory(), everything) == {}  # a score of 0 never flags


def test_shared_address_can_be_turned_off() -> None:
    history = OrderHistory(other_emails_at_address=40)
    assert flags_of(make_order(), history, rules(max_emails_per_address=None)) == {}


# -- first_order_express -----------------------------------------------------------------


EXPRESS = rules(first_order_express_over=Decimal("500"))


@pytest.mark.parametrize("method", ["UPS Next Day Air", "EXPRESS", "FedEx priority overnight"])
def test_a_new_customers_express_first_order_over_the_limit_asks(method: str) -> None:
    order = make_order("950.00", method=method)
    found = flags_of(order, OrderHistory(), EXPRESS, is_new_customer=True)["first_order_express"]
    assert found.score == 1.0
    assert f'"{method}"' in found.reason
    assert "950.00 USD" in found.reason and "500.00 USD" in found.reason


def test_first_order_express_needs_all_its_conditions() -> None:
    history = OrderHistory()
    express = make_order("950.00", method="Express")
    assert flags_of(express, history, EXPRESS, is_new_customer=False) == {}
    standard = make_order("950.00", method="Standard Ground")
    assert flags_of(standard, history, EXPRESS, is_new_customer=True) == {}
    at_limit = make_order("500.00", method="Express")
    assert flags_of(at_limit, history, EXPRESS, is_new_customer=True) == {}
    assert flags_of(express, history, rules(), is_new_customer=True) == {}  # off by default


# -- reporting, ordering, score ------------------------------------------------------------


def test_flags_under_report_from_are_left_out() -> None:
    history = OrderHistory(other_emails_at_address=2)  # 0.67
    assert "shared_address" in flags_of(make_order(), history)
    assert flags_of(make_order(), history, rules(report_from=0.7)) == {}


def test_flags_come_highest_score_first_ties_by_check_name() -> None:
    history = OrderHistory(
        store_totals=[Decimal("100.00")] * 20,
        orders_billed_in_country=412,
        orders_on_route=0,
        other_emails_at_address=2,
    )
    order = make_order("200.00", billing="US", shipping="NG", method="Express")
    express = rules(first_order_express_over=Decimal("150"))
    found = anomaly_flags(order, history, express, is_new_customer=True)
    assert [(f.check, f.score) for f in found] == [
        ("rare_route", 2.0),
        ("total_vs_store", 1.21),
        ("first_order_express", 1.0),
        ("shared_address", 0.67),
    ]
    assert anomaly_score(found) == 4.88


def test_anomaly_score_adds_the_flags_up() -> None:
    assert anomaly_score([]) == 0.0
    assert anomaly_score([flag("rare_route", 0.5), flag("shared_address", 0.5)]) == 1.0
    three = [flag("a", 0.33), flag("b", 0.33), flag("c", 0.34)]
    assert anomaly_score(three) == 1.0


def test_needs_approval_at_the_threshold() -> None:
    half = [flag("rare_route", 0.5)]
    assert not needs_approval(half, rules())
    assert needs_approval([*half, flag("shared_address", 0.5)], rules())
    assert needs_approval(half, rules(approve_at=0.5))
    assert not needs_approval([], rules())


def test_disabled_rules_flag_nothing() -> None:
    history = OrderHistory(
        store_totals=[Decimal("100.00")] * 20,
        orders_billed_in_country=412,
        other_emails_at_address=9,
    )
    order = make_order("5000.00", billing="US", shipping="NG", method="Express")
    disabled = rules(enabled=False, first_order_express_over=Decimal("1"))
    assert anomaly_flags(order, history, disabled, is_new_customer=True) == []


def test_reasons_name_neither_the_email_nor_the_address() -> None:
    history = OrderHistory(
        store_totals=spread(50),
        customer_totals=[Decimal("50.00")] * 3,
        sku_quantities={"A": [1] * 10},
        orders_billed_in_country=50,
        other_emails_at_address=5,
    )
    order = make_order("5000.00", lines=[("A", 40)], shipping="NG", method="Express")
    found = anomaly_flags(order, history, EXPRESS, is_new_customer=True)
    # (a customer with 3 earlier orders is measured against their own: no store-wide flags)
    newcomer = history.model_copy(update={"customer_totals": []})
    found += anomaly_flags(order, newcomer, EXPRESS, is_new_customer=True)
    assert sorted({f.check for f in found}) == sorted(CHECKS)
    for each in found:
        for secret in PII:
            assert secret not in each.reason


# -- properties ----------------------------------------------------------------------------

amounts = st.decimals(
    min_value=Decimal("-10"), max_value=Decimal("100000"), places=2, allow_nan=False
)
positive_amounts = st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2, allow_nan=False
)
quantities = st.lists(st.integers(min_value=-1, max_value=1000), max_size=30)
countries = st.sampled_from(["US", "GB", "NG"])
rule_sets = st.sampled_from(
    [
        rules(),
        rules(report_from=0),
        rules(report_from=0, min_history=3, min_sku_orders=3, approve_at=0.01),
        rules(first_order_express_over=Decimal("0"), report_from=1.5),
        rules(total_vs_store=0.5, total_vs_customer=50, sku_quantity=0.1, rare_route_share=0.9),
    ]
)


@st.composite
def histories(draw: st.DrawFn) -> OrderHistory:
    return OrderHistory(
        store_totals=draw(st.lists(amounts, max_size=60)),
        customer_totals=draw(st.lists(amounts, max_size=8)),
        sku_quantities=draw(st.dictionaries(st.sampled_from(["A", "B", "C"]), quantities)),
        orders_billed_in_country=draw(st.integers(min_value=0, max_value=500)),
        orders_on_route=draw(st.integers(min_value=0, max_value=500)),
        other_emails_at_address=draw(st.integers(min_value=0, max_value=12)),
    )


@st.composite
def orders(draw: st.DrawFn) -> Order:
    lines = draw(
        st.lists(
            st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(min_value=1, max_value=2000)),
            min_size=1,
            max_size=4,
        )
    )
    return make_order(
        draw(amounts),
        lines=lines,
        billing=draw(countries),
        shipping=draw(countries),
        method=draw(st.sampled_from(["", "Standard", "Express", "next-day air"])),
    )


@settings(max_examples=100, deadline=None)
@given(orders(), histories(), rule_sets, st.booleans())
def test_flags_are_deterministic_finite_and_reported_in_order(
    order: Order, history: OrderHistory, anomaly_rules: AnomalyRules, new: bool
) -> None:
    found = anomaly_flags(order, history, anomaly_rules, is_new_customer=new)
    again = anomaly_flags(order, history, anomaly_rules, is_new_customer=new)
    assert [f.model_dump() for f in found] == [f.model_dump() for f in again]
    for each in found:
        assert each.check in CHECKS
        assert math.isfinite(each.score)
        assert each.score >= anomaly_rules.report_from
        assert each.score > 0
        assert each.score == round(each.score, 2)
        assert EMAIL not in each.reason and "Secretlane" not in each.reason
    assert found == sorted(found, key=lambda f: (-f.score, f.check))
    assert math.isfinite(anomaly_score(found))


@settings(max_examples=100, deadline=None)
@given(orders(), histories(), rule_sets)
def test_both_ways_at_once_are_the_flags_of_a_returning_and_of_a_new_customer(
    order: Order, history: OrderHistory, anomaly_rules: AnomalyRules
) -> None:
    returning, new = anomaly_flags_both_ways(order, history, anomaly_rules)
    assert returning == anomaly_flags(order, history, anomaly_rules, is_new_customer=False)
    assert new == anomaly_flags(order, history, anomaly_rules, is_new_customer=True)


def test_both_ways_differ_only_by_a_new_customers_express_first_order() -> None:
    history = OrderHistory(store_totals=spread(50), orders_billed_in_country=50)
    order = make_order("5000.00", shipping="NG", method="Express")
    returning, new = anomaly_flags_both_ways(order, history, EXPRESS)
    assert "total_vs_store" in {flag.check for flag in returning}
    assert [flag for flag in new if flag.check != "first_order_express"] == returning
    assert "first_order_express" in {flag.check for flag in new}


@settings(max_examples=100, deadline=None)
@given(st.lists(positive_amounts, min_size=3, max_size=60), histories(), rule_sets)
def test_a_total_at_the_store_median_is_never_flagged(
    totals: list[Decimal], history: OrderHistory, anomaly_rules: AnomalyRules
) -> None:
    learned = history.model_copy(update={"store_totals": totals})
    order = make_order(statistics.median(totals))
    found = anomaly_flags(order, learned, anomaly_rules, is_new_customer=False)
    assert "total_vs_store" not in {f.check for f in found}


def test_a_customer_with_a_history_is_measured_against_it_not_the_store() -> None:
    trade = OrderHistory(
        store_totals=[Decimal("20.00")] * 50,
        customer_totals=[Decimal("400.00"), Decimal("450.00"), Decimal("500.00")],
        sku_quantities={"A": [1] * 50},
    )
    order = make_order("480.00", lines=[("A", 40)])
    assert flags_of(order, trade) == {}  # their usual: neither total nor quantity stands out
    first_time = trade.model_copy(update={"customer_totals": [Decimal("400.00")]})
    assert {"total_vs_store", "sku_quantity"} <= set(flags_of(order, first_time))
