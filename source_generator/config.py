"""Typed generator settings: dirt rates (contract section 2), billing rates (1a), change rates, table mix."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace

DIRT_ENV = "MDP_GENERATOR_DIRT"


@dataclass(frozen=True)
class DirtRates:
    """Per-row probabilities of each dirt kind; the defaults are the contract's."""

    categorical_case: float = 0.20  # D1 (D2 and D3 synonyms happen within it)
    amount_format: float = 0.15  # D4
    amount_unparseable: float = 0.005  # D5
    amount_negative: float = 0.002  # D6
    duplicate_payment: float = 0.01  # D7
    orphan_payment: float = 0.005  # D8
    email_case: float = 0.10  # D9
    email_invalid: float = 0.02  # D10
    dob_non_iso: float = 0.30  # D11, unparseable values included
    dob_unparseable: float = 0.01  # D11, the part that no format can read
    discount_null: float = 0.10  # D12

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"dirt rate {code_of(f.name)} must be between 0 and 1, got {value}"
                )
        if self.dob_unparseable > self.dob_non_iso:
            raise ValueError("D11_unparseable cannot exceed D11 (unparseable dates are non-ISO)")
        exclusive = (
            self.amount_unparseable
            + self.amount_negative
            + self.duplicate_payment
            + self.orphan_payment
        )
        if exclusive > 1.0:
            raise ValueError("D5 + D6 + D7 + D8 cannot exceed 1: each payment gets at most one")
        if self.email_case + self.email_invalid > 1.0:
            raise ValueError("D9 + D10 cannot exceed 1: each email gets at most one")

    def with_overrides(self, overrides: Mapping[str, float]) -> DirtRates:
        """A copy with rates replaced, keyed by contract code (`D4`) or field name."""
        changes: dict[str, float] = {}
        for key, value in overrides.items():
            changes[field_of(key)] = float(value)
        return replace(self, **changes)


DIRT_CODES: dict[str, str] = {
    "D1": "categorical_case",
    "D4": "amount_format",
    "D5": "amount_unparseable",
    "D6": "amount_negative",
    "D7": "duplicate_payment",
    "D8": "orphan_payment",
    "D9": "email_case",
    "D10": "email_invalid",
    "D11": "dob_non_iso",
    "D11_UNPARSEABLE": "dob_unparseable",
    "D12": "discount_null",
}


def field_of(key: str) -> str:
    code = key.strip().upper()
    if code in DIRT_CODES:
        return DIRT_CODES[code]
    names = {f.name for f in fields(DirtRates)}
    if key.strip() in names:
        return key.strip()
    known = ", ".join(DIRT_CODES)
    raise ValueError(f"unknown dirt kind {key!r}; use one of {known}")


def code_of(name: str) -> str:
    for code, field_name in DIRT_CODES.items():
        if field_name == name:
            return code
    return name


def parse_overrides(items: Iterable[str]) -> dict[str, float]:
    """Parse `D4=0.3` items (comma-separated lists allowed) into {code: rate}."""
    result: dict[str, float] = {}
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"dirt rate {part!r} must look like D4=0.15")
            try:
                result[key.strip().upper()] = float(value)
            except ValueError:
                raise ValueError(f"dirt rate {part!r}: {value!r} is not a number") from None
            field_of(key)
    return result


def dirt_from_env(overrides: Iterable[str] = ()) -> DirtRates:
    """Contract defaults, then `MDP_GENERATOR_DIRT`, then explicit overrides (the CLI's --dirt)."""
    merged = parse_overrides([os.environ.get(DIRT_ENV, "")])
    merged.update(parse_overrides(overrides))
    return DirtRates().with_overrides(merged)


@dataclass(frozen=True)
class ChangeRates:
    """How much a cycle changes. Subscription changes scale with the time a cycle covers;
    email changes and soft deletes with the rows it inserts."""

    subscription_changes: float = 0.003  # share of subscriptions changed per simulated day
    reactivation: float = 0.2  # share of the inactive subscriptions picked that come back
    email_changes: float = 0.01
    soft_deletes: float = 0.002
    late_rows: float = 0.05  # share of new rows whose created_at is backdated
    late_max_hours: float = 72.0
    first_cycle_hours: float = 2.0  # the time a source's first cycle covers


@dataclass(frozen=True)
class BillingRates:
    """The billing of subscriptions (data contract section 1a); defaults are the contract's."""

    failure: float = 0.05  # a billing attempt fails
    # A dunning retry is an attempt too: None means it fails at `failure`, like any other.
    retry_failure: float | None = None
    refund: float = 0.02  # a succeeded payment is refunded within 30 days
    discount_share: float = 0.25  # subscriptions that have a discount
    max_discount: float = 0.30  # a discount is 1% to this share of the amount
    annual_share: float = 0.30  # new subscriptions billed annually

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"billing rate {f.name} must be between 0 and 1, got {value}")
        if self.max_discount > 0.30:
            raise ValueError(
                f"max_discount must be at most 0.30 (the contract's 0-30%), got {self.max_discount}"
            )

    @property
    def retry_failure_rate(self) -> float:
        """The share of dunning retries that fail: `retry_failure`, else the `failure` rate."""
        return self.failure if self.retry_failure is None else self.retry_failure


@dataclass(frozen=True)
class TableMix:
    """Share of a cycle's new rows per table; subscriptions take the remainder.

    Payments are not in the mix: they are the billing of subscriptions (section 1a).
    """

    # About one subscription per user. Each subscription also brings its first payment and a
    # billing ledger row, so subscriptions are the costliest rows to generate.
    users: float = 0.30
    banks: float = 0.20
    credit_cards: float = 0.25

    def split(self, rows: int) -> dict[str, int]:
        counts = {
            "users": round(rows * self.users),
            "banks": round(rows * self.banks),
            "credit_cards": round(rows * self.credit_cards),
        }
        if rows > 0 and counts["users"] == 0:
            counts["users"] = 1  # banks, cards and subscriptions need an owner
        counts["subscriptions"] = max(rows - sum(counts.values()), 0)
        return counts


@dataclass(frozen=True)
class GeneratorConfig:
    rows_per_cycle: int = 1000
    seed: int = 42
    dirt: DirtRates = field(default_factory=DirtRates)
    changes: ChangeRates = field(default_factory=ChangeRates)
    mix: TableMix = field(default_factory=TableMix)
    billing: BillingRates = field(default_factory=BillingRates)
    # New subscriptions start at instants spread over the cycle's window rather than at its
    # clock: for long cycles (the history's weeks), so renewals do not all fall on one instant.
    spread_starts: bool = False
