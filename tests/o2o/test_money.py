"""Money: integer minor units, formatting, and half-up commission whose parts add up."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.template import Context, Template
from hypothesis import given
from hypothesis import strategies as st

from o2o.money import Money, basis_points_of, format_money

amounts = st.integers(min_value=0, max_value=10**12)
rates = st.integers(min_value=0, max_value=10_000)  # 0 % .. 100 %


@pytest.mark.parametrize(
    "amount, currency, text",
    [
        (0, "KRW", "₩0"),
        (1200, "KRW", "₩1,200"),
        (1234567, "KRW", "₩1,234,567"),
        (-3500, "KRW", "-₩3,500"),
        (123456, "USD", "$1,234.56"),
        (5, "USD", "$0.05"),
        (-105, "EUR", "-€1.05"),
        (1000, "JPY", "¥1,000"),
    ],
)
def test_format_money(amount, currency, text):
    assert format_money(amount, currency) == text


def test_format_money_defaults_to_won():
    assert format_money(1500) == "₩1,500"
    assert str(Money(1500)) == "₩1,500"


def test_won_template_filter_formats_and_is_quiet_on_junk():
    template = Template(
        "{% load money %}[{{ a|won }}][{{ b|won }}][{{ c|won }}][{{ d|won:'USD' }}]"
    )
    html = template.render(Context({"a": 1200, "b": None, "c": "abc", "d": 250}))
    assert html == "[₩1,200][][][$2.50]"


@pytest.mark.parametrize(
    "amount, bps, expected",
    [
        (10_000, 1_000, 1_000),  # 10 % of 10 000
        (1_005, 1_000, 101),  # 100.5 rounds up
        (1_004, 1_000, 100),  # 100.4 rounds down
        (15, 5_000, 8),  # 7.5 rounds up
        (25, 5_000, 13),  # 12.5 rounds up, where banker's rounding would give 12
        (1, 4_999, 0),  # 0.4999 rounds down
        (1, 5_000, 1),  # 0.5 rounds up
        (0, 1_000, 0),
        (999, 0, 0),
        (999, 10_000, 999),
    ],
)
def test_basis_points_of_rounds_half_up(amount, bps, expected):
    assert basis_points_of(amount, bps) == expected


@pytest.mark.parametrize("amount, bps", [(-1, 100), (100, -1)])
def test_basis_points_of_refuses_negatives(amount, bps):
    with pytest.raises(ValueError):
        basis_points_of(amount, bps)


@given(gross=amounts, bps=rates)
def test_basis_points_of_matches_decimal_half_up(gross, bps):
    exact = Decimal(gross) * Decimal(bps) / Decimal(10_000)
    assert basis_points_of(gross, bps) == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@given(gross=amounts, bps=rates, currency=st.sampled_from(["KRW", "USD", "EUR", "JPY"]))
def test_commission_and_vendor_share_add_up_to_gross(gross, bps, currency):
    # Given a gross amount and a commission rate
    total = Money(gross, currency)
    # When the commission is taken and the vendor gets the rest
    commission = Money(basis_points_of(gross, bps), currency)
    vendor_share = total - commission
    # Then neither part is negative and together they are exactly the gross
    assert 0 <= commission.amount <= gross
    assert vendor_share.amount >= 0
    assert commission + vendor_share == total


@pytest.mark.parametrize("amount", [1.5, "100", True, None])
def test_money_takes_only_integers(amount):
    with pytest.raises(TypeError):
        Money(amount)


def test_money_refuses_unknown_currencies_and_mixing():
    with pytest.raises(ValueError):
        Money(1, "XYZ")
    with pytest.raises(ValueError):
        Money(1, "KRW") + Money(1, "USD")
    with pytest.raises(ValueError):
        Money(1, "KRW") - 1
