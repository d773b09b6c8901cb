"""The contract oracle's reading of D4/D5 amounts, on the contract's examples and the edges."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.contract_marts import parse_amount


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The contract's own examples (section 2, D4).
        ("12.50", "12.50"),
        ("$12.50", "12.50"),
        (" 12.50 ", "12.50"),
        ("USD 12.50", "12.50"),
        ("12,50", "12.50"),
        # A comma before one final digit is the decimal point too.
        ("12,5", "12.50"),
        ("1200", "1200.00"),
        # Spaces go wherever they are; the currency code is read in any case.
        ("1 250.00", "1250.00"),
        ("usd12.50", "12.50"),
        ("USD $ 12.50", "12.50"),
        # Negative amounts parse (D6 rejects them later).
        ("-12.50", "-12.50"),
        ("$-0.01", "-0.01"),
        ("-12,5", "-12.50"),
        # numeric(12,2): half-up (away from zero) to the cent, ten digits before the point.
        ("12.505", "12.51"),
        ("12.504", "12.50"),
        ("-12.505", "-12.51"),
        ("0.005", "0.01"),
        ("9999999999.99", "9999999999.99"),
    ],
)
def test_parseable_amounts(text: str, expected: str) -> None:
    value = parse_amount(text)
    assert value == Decimal(expected)
    assert value is not None and value.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "text",
    [
        # The contract's D5 examples.
        "N/A",
        "",
        None,
        # Only spaces and nothing else.
        "   ",
        "$",
        "USD",
        # USD and $ only where they lead.
        "12.50$",
        "12.50 USD",
        "$USD12.50",
        "-$12.50",
        # A comma is a decimal point only before 1-2 final digits; no thousands separators.
        "12,500",
        "1,234.56",
        "1.234,56",
        # Only spaces are stripped, not other white space.
        "\t12.50",
        "12.50\n",
        # Plain decimal notation only.
        "1e3",
        "+12.50",
        ".50",
        "12.",
        "NaN",
        "Infinity",
        "1_000",
        "\uff11\uff12.50",  # full-width digits
        # Too large for numeric(12,2), before or after rounding.
        "10000000000.00",
        "9999999999.995",
    ],
)
def test_unparseable_amounts(text: str | None) -> None:
    assert parse_amount(text) is None
