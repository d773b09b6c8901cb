"""The dirt kinds D1-D12 of the data contract, each a small function of one seeded random generator."""

from __future__ import annotations

import random
from datetime import date

# Synonyms a dirty value may use before its case and spacing are changed (D2, D3).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "cancelled": ("canceled", "cancelled"),
    "annual": ("annual", "yearly"),
}

UNPARSEABLE_AMOUNTS: tuple[str | None, ...] = ("N/A", "", None)
UNPARSEABLE_DATES: tuple[str, ...] = ("unknown", "N/A", "", "99.99.9999", "not given")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def recase(rng: random.Random, value: str) -> str:
    """A case and spacing variant of `value` that `lower(trim(x))` does not leave unchanged (D1)."""
    r = rng.random()
    if value.upper() != value.lower():
        if r < 0.3:
            return value.upper()
        if r < 0.55:
            return value[:1].upper() + value[1:]
        if r < 0.7:
            return value.title() + " "
    if r < 0.85:
        return " " + value + " "
    return value + "  "


def categorical(rng: random.Random, value: str) -> str:
    """A D1 variant of a canonical categorical value, sometimes through a synonym (D2, D3)."""
    synonyms = SYNONYMS.get(value)
    if synonyms:
        base = synonyms[rng.randrange(len(synonyms))]
        if base != value and rng.random() < 0.3:
            return base  # the plain synonym (`canceled`, `yearly`) is dirt too
        return recase(rng, base)
    return recase(rng, value)


def plain_amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def formatted_amount(rng: random.Random, cents: int) -> str:
    """A non-plain but parseable amount (D4)."""
    plain = plain_amount(cents)
    r = rng.random()
    if r < 0.25:
        return "$" + plain
    if r < 0.5:
        return " " + plain + " "
    if r < 0.75:
        return "USD " + plain
    return f"{cents // 100},{cents % 100:02d}"


def dirty_email(rng: random.Random, email: str) -> str:
    """Upper case or padded (D9); still valid once lowered and trimmed."""
    r = rng.random()
    if r < 0.4:
        return email.upper()
    if r < 0.7:
        return " " + email + " "
    return email[:1].upper() + email[1:] + " "


def invalid_email(rng: random.Random, email: str) -> str:
    """An email without `@` (D10)."""
    return email.replace("@", (" at ", "", ".", "#")[rng.randrange(4)])


def non_iso_date(rng: random.Random, day: date, unreadable: bool) -> str:
    """`day` in a non-ISO format of D11, or (when `unreadable`) text that no format can read."""
    if unreadable:
        return UNPARSEABLE_DATES[rng.randrange(len(UNPARSEABLE_DATES))]
    # Epoch seconds only after 1970, so every epoch value stays a plain run of digits.
    choices = 3 if day.year >= 1970 else 2
    k = rng.randrange(choices)
    if k == 0:
        return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"
    if k == 1:
        return f"{day.day:02d}.{day.month:02d}.{day.year:04d}"
    return str((day.toordinal() - _EPOCH_ORDINAL) * 86400)
